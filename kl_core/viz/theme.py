"""The shared look of every figure: transparent backgrounds, neutral grids, compact float32 arrays.

Backgrounds are transparent and grid lines are translucent grey, so one figure reads on both a
light and a dark page (the host, e.g. Streamlit, picks the font colour).
"""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go

__all__ = ["GRID_COLOR", "TRANSPARENT", "style", "style_layout", "compact", "typed_array"]

TRANSPARENT = "rgba(0,0,0,0)"
GRID_COLOR = "rgba(128,128,128,0.22)"
ZERO_COLOR = "rgba(128,128,128,0.45)"


AXIS_STYLE = {"gridcolor": GRID_COLOR, "zerolinecolor": ZERO_COLOR, "linecolor": GRID_COLOR}


def _figure_style(height: int, bottom: int) -> dict:
    return {
        "height": height,
        "paper_bgcolor": TRANSPARENT,
        "plot_bgcolor": TRANSPARENT,
        "margin": {"l": 60, "r": 30, "t": 70, "b": bottom},
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.06,
            "xanchor": "left",
            "x": 0.0,
            "bgcolor": TRANSPARENT,
        },
        "hovermode": "closest",
    }


def style(fig: go.Figure, *, height: int, bottom: int = 40) -> go.Figure:
    """Apply the shared look to ``fig`` in place and return it.

    Args:
        fig: the figure to style.
        height: figure height in pixels.
        bottom: bottom margin in pixels (animated figures need room for the slider).
    """
    fig.update_layout(**_figure_style(height, bottom))
    fig.update_xaxes(**AXIS_STYLE)
    fig.update_yaxes(**AXIS_STYLE)
    return fig


def style_layout(layout: dict, *, height: int, bottom: int = 40) -> dict:
    """:func:`style` for a plain layout dict, in place (no plotly validation: for large figures
    assembled as dicts). Returns ``layout``."""
    for key, value in _figure_style(height, bottom).items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key].update(value)
        else:
            layout[key] = value
    for key in layout:
        if key.startswith(("xaxis", "yaxis")):
            layout[key].update(AXIS_STYLE)
    return layout


def compact(a: np.ndarray) -> np.ndarray:
    """``a`` as float32: plotly ships it as a base64 typed array at half the bytes of float64.

    Values beyond float32's range (a huge early loss or penalty) are clipped to it, never inf.
    """
    limit = float(np.finfo(np.float32).max)
    return np.ascontiguousarray(np.clip(np.asarray(a, dtype=float), -limit, limit), dtype=np.float32)


def typed_array(a: np.ndarray) -> dict:
    """:func:`compact` ``a`` as plotly's typed-array spec ``{"dtype": "f4", "bdata": base64}``.

    The same JSON plotly writes for a float32 array, built directly: plotly passes such a dict
    through without converting or validating it, which for the hundreds of arrays in an
    animation's frames saves most of the figure's build time.
    """
    return {"dtype": "f4", "bdata": base64.b64encode(compact(a).tobytes()).decode("ascii")}
