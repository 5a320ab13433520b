"""The shared look of every figure: transparent backgrounds, neutral grids, readable text, compact float32 arrays.

Backgrounds are transparent and grid lines are translucent grey, so one figure reads on both a
light and a dark page. Text is drawn in :data:`TEXT_COLOR`, Streamlit's stand-in for its strong
body grey, which its frontend swaps for the theme's own colour (``#262730`` light, ``#FAFAFA`` dark):
Streamlit's default figure text (``#808495`` on white, 3.7:1) is below WCAG AA's 4.5:1. Outside
Streamlit (exports, static pages on white) the stand-in is itself near black. :func:`contrast_ratio`
is WCAG 2's formula, for the tests that check every text colour against its background.
"""

from __future__ import annotations

import base64
import copy
import functools
import re

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "GRID_COLOR",
    "FAINT_ALPHA",
    "FAINT_WIDTH",
    "TRANSPARENT",
    "TEXT_COLOR",
    "HOSTS",
    "style",
    "style_layout",
    "compact",
    "typed_array",
    "relative_luminance",
    "contrast_ratio",
    "text_on",
    "host_color",
]

TRANSPARENT = "rgba(0,0,0,0)"
# Streamlit's placeholder for its "gray90" (streamlit/elements/lib/streamlit_plotly_theme.py, GRAY_90):
# its frontend replaces it in the figure's JSON with the theme's strong text grey
TEXT_COLOR = "#000037"
# the page each host draws a transparent figure on, and what it makes of TEXT_COLOR (Streamlit 1.67's
# light and dark themes: bgColor, gray90 / gray10); "export" is a PNG/SVG/HTML export on white
HOSTS: dict[str, dict[str, str]] = {
    "light": {"background": "#FFFFFF", TEXT_COLOR: "#262730"},
    "dark": {"background": "#0E1117", TEXT_COLOR: "#FAFAFA"},
    "export": {"background": "#FFFFFF", TEXT_COLOR: TEXT_COLOR},
}
GRID_COLOR = "rgba(128,128,128,0.22)"
ZERO_COLOR = "rgba(128,128,128,0.45)"
# the faint lines of starts 1.. (and other context curves): enough of the role colour to read on a dark page
FAINT_ALPHA = 0.75
FAINT_WIDTH = 1.5


# tick labels and axis titles say their colour: Streamlit's template would give them its faint grey
TOP_MARGIN = 70  # pixels above the plots: the legend and the panel titles
TITLE_LINE_PX = 22  # a line of a panel title (16 px text)

AXIS_STYLE = {
    "gridcolor": GRID_COLOR,
    "zerolinecolor": ZERO_COLOR,
    "linecolor": GRID_COLOR,
    "tickfont": {"color": TEXT_COLOR},
    # Streamlit's template sets the title 24-32 px off the ticks, into the next row's title: keep it close
    "title": {"font": {"color": TEXT_COLOR}, "standoff": 6},
}


def _figure_style(height: int, bottom: int, title_lines: int = 1) -> dict:
    # the legend sits above the panel titles: its bottom this many pixels above the plots
    plot_px = max(height - TOP_MARGIN - bottom, 50)
    gap = TITLE_LINE_PX * title_lines + 10
    return {
        "height": height,
        "paper_bgcolor": TRANSPARENT,
        "plot_bgcolor": TRANSPARENT,
        "margin": {"l": 60, "r": 30, "t": TOP_MARGIN, "b": bottom},
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.0 + gap / plot_px,
            "xanchor": "left",
            "x": 0.0,
            "bgcolor": TRANSPARENT,
        },
        "hovermode": "closest",
        "font": {"color": TEXT_COLOR},
    }


def style(fig: go.Figure, *, height: int, bottom: int = 40, title_lines: int = 1) -> go.Figure:
    """Apply the shared look to ``fig`` in place and return it.

    Args:
        fig: the figure to style.
        height: figure height in pixels.
        bottom: bottom margin in pixels (animated figures need room for the slider).
        title_lines: lines of the tallest panel title: the legend goes above them.
    """
    fig.update_layout(**_figure_style(height, bottom, title_lines))
    fig.update_xaxes(**AXIS_STYLE)
    fig.update_yaxes(**AXIS_STYLE)
    for annotation in fig.layout.annotations:  # subplot titles; an annotation that chose its colour keeps it
        if annotation.font.color is None:
            annotation.font.color = TEXT_COLOR
    return fig


def style_layout(layout: dict, *, height: int, bottom: int = 40, title_lines: int = 1) -> dict:
    """:func:`style` for a plain layout dict, in place (no plotly validation: for large figures
    assembled as dicts). Returns ``layout``."""
    for key, value in _figure_style(height, bottom, title_lines).items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key].update(value)
        else:
            layout[key] = value
    for key in layout:
        if key.startswith(("xaxis", "yaxis")):
            _merge_into(layout[key], AXIS_STYLE)
    for annotation in layout.get("annotations", []):  # subplot titles
        annotation.setdefault("font", {}).setdefault("color", TEXT_COLOR)
    return layout


def _merge_into(target: dict, settings: dict) -> None:
    """``settings`` laid over ``target`` in place, dict into dict (an axis' own title text stays)."""
    for key, value in settings.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value) if isinstance(value, dict) else value


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


# -- WCAG 2 contrast --------------------------------------------------------------------------------


def _rgb(color: str) -> tuple[float, float, float, float]:
    """(r, g, b, alpha) of ``#RGB``, ``#RRGGBB``, ``rgb(...)`` or ``rgba(...)``; r, g, b in 0..255."""
    text = color.strip().lower() if isinstance(color, str) else ""
    if text in ("white", "black"):
        return (255.0, 255.0, 255.0, 1.0) if text == "white" else (0.0, 0.0, 0.0, 1.0)
    if text.startswith("#") and len(text) in (4, 7):
        h = text[1:] if len(text) == 7 else "".join(c + c for c in text[1:])
        try:
            return float(int(h[0:2], 16)), float(int(h[2:4], 16)), float(int(h[4:6], 16)), 1.0
        except ValueError:
            pass
    match = re.fullmatch(r"rgba?\(([^)]*)\)", text)
    if match:
        parts = [float(v) for v in match.group(1).split(",")]
        if len(parts) in (3, 4):
            return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 1.0
    raise ValueError(f"colour must be '#RRGGBB', '#RGB', 'rgb(r,g,b)', 'rgba(r,g,b,a)', white or black, got {color!r}")


def _over(color: str, background: str) -> tuple[float, float, float]:
    """``color`` composited over the opaque ``background`` (alpha blending in sRGB, as browsers do)."""
    r, g, b, a = _rgb(color)
    br, bg, bb, _ = _rgb(background)
    return r * a + br * (1 - a), g * a + bg * (1 - a), b * a + bb * (1 - a)


def relative_luminance(color: str, background: str = "#FFFFFF") -> float:
    """WCAG 2 relative luminance of ``color`` (a translucent one seen over ``background``), in [0, 1].

    Examples:
        >>> relative_luminance("#FFFFFF"), relative_luminance("#000000")
        (1.0, 0.0)
    """

    def linear(channel: float) -> float:  # WCAG 2.x: sRGB to linear light
        c = channel / 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = _over(color, background)
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio (L1 + 0.05) / (L2 + 0.05) of text on an opaque background, in [1, 21].

    Examples:
        >>> round(contrast_ratio("#000000", "#FFFFFF"), 1)
        21.0
        >>> round(contrast_ratio("#808495", "#FFFFFF"), 1)  # Streamlit's default figure text: below AA's 4.5
        3.7
    """
    lum_bg = relative_luminance(background)
    lum_fg = relative_luminance(foreground, background)
    high, low = max(lum_fg, lum_bg), min(lum_fg, lum_bg)
    return (high + 0.05) / (low + 0.05)


@functools.lru_cache(maxsize=4096)  # a heatmap asks for every cell of every frame, from a few hundred colours
def text_on(background: str, *, page: str = "#FFFFFF") -> str:
    """Black or white, whichever contrasts more with ``background`` (seen over ``page`` if translucent).

    For text drawn on a coloured cell (a heatmap value), whose colour the cell decides, not the page.

    Examples:
        >>> text_on("#0072B2"), text_on("#F0E442")
        ('#FFFFFF', '#000000')
    """
    r, g, b = _over(background, page)
    solid = f"rgb({r:.0f},{g:.0f},{b:.0f})"
    return "#000000" if contrast_ratio("#000000", solid) >= contrast_ratio("#FFFFFF", solid) else "#FFFFFF"


def host_color(color: str | None, host: str) -> str:
    """What ``host`` (a key of :data:`HOSTS`) draws for a figure colour: TEXT_COLOR becomes its text grey,
    a transparent or missing background its page."""
    palette = HOSTS[host]
    if color is None or color == TRANSPARENT:
        return palette["background"]
    return palette.get(color.upper() if color.startswith("#") else color, color)
