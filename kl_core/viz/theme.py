"""The shared look of every figure: transparent backgrounds, neutral grids, compact float32 arrays.

Backgrounds are transparent and grid lines are translucent grey, so one figure reads on both a
light and a dark page (the host, e.g. Streamlit, picks the font colour).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

__all__ = ["GRID_COLOR", "TRANSPARENT", "style", "compact"]

TRANSPARENT = "rgba(0,0,0,0)"
GRID_COLOR = "rgba(128,128,128,0.22)"
ZERO_COLOR = "rgba(128,128,128,0.45)"


def style(fig: go.Figure, *, height: int, bottom: int = 40) -> go.Figure:
    """Apply the shared look to ``fig`` in place and return it.

    Args:
        fig: the figure to style.
        height: figure height in pixels.
        bottom: bottom margin in pixels (animated figures need room for the slider).
    """
    fig.update_layout(
        height=height,
        paper_bgcolor=TRANSPARENT,
        plot_bgcolor=TRANSPARENT,
        margin=dict(l=60, r=30, t=70, b=bottom),
        legend=dict(orientation="h", yanchor="bottom", y=1.06, xanchor="left", x=0.0, bgcolor=TRANSPARENT),
        hovermode="closest",
    )
    fig.update_xaxes(gridcolor=GRID_COLOR, zerolinecolor=ZERO_COLOR, linecolor=GRID_COLOR)
    fig.update_yaxes(gridcolor=GRID_COLOR, zerolinecolor=ZERO_COLOR, linecolor=GRID_COLOR)
    return fig


def compact(a: np.ndarray) -> np.ndarray:
    """``a`` as float32: plotly ships it as a base64 typed array at half the bytes of float64.

    Values beyond float32's range (a huge early loss or penalty) are clipped to it, never inf.
    """
    limit = float(np.finfo(np.float32).max)
    return np.ascontiguousarray(np.clip(np.asarray(a, dtype=float), -limit, limit), dtype=np.float32)
