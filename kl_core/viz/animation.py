"""Play / Pause / speed buttons and a frame slider that run a plotly animation in the browser.

Everything lives in the figure's layout, so the browser plays the frames with no server round
trips. Frames are drawn with ``redraw: False``: plotly then restyles only the traces a frame
names, which keeps even sixty frames of sixteen curves smooth.
"""

from __future__ import annotations

from collections.abc import Sequence

from kl_core.viz.theme import TEXT_COLOR

__all__ = ["SPEEDS", "CONTROLS_MARGIN", "animation_controls"]

SPEEDS = (0.5, 1.0, 2.0)  # playback speed buttons, as multiples of the base frame duration
CONTROLS_OFFSET = 60  # pixels from the plot area down to the buttons: room for the bottom axis' ticks and title
CONTROLS_HEIGHT = 120  # pixels the buttons and the slider need below that
CONTROLS_MARGIN = CONTROLS_OFFSET + CONTROLS_HEIGHT  # the bottom margin a figure with default controls needs
MAX_STEP_LABELS = 12  # with more frames the slider's tick labels would overlap; only the current value shows
NEUTRAL_TEXT = TEXT_COLOR  # the frame label and slider ticks: the host's strong text grey (WCAG AA on light and dark)
BUTTON_BG = "#F0F2F6"  # the buttons are their own light surface on either page ...
BUTTON_TEXT = "#262730"  # ... with dark text on it (13:1)


def _animate_args(frame_ms: float) -> dict:
    return {
        "frame": {"duration": frame_ms, "redraw": False},
        "transition": {"duration": 0},
        "mode": "immediate",
        "fromcurrent": True,
    }


def animation_controls(
    names: Sequence[str],
    labels: Sequence[str],
    *,
    prefix: str,
    frame_ms: int = 80,
    active: int | None = None,
    offset: int = CONTROLS_OFFSET,
) -> dict:
    """Layout entries (``sliders``, ``updatemenus``) that animate the frames called ``names``.

    The controls sit below the plots: one row of buttons (Play, Pause, 0.5×, 1×, 2×), the slider
    under it. They are placed in pixels below the plot area, so the figure's bottom margin must
    be at least ``offset + CONTROLS_HEIGHT`` (``CONTROLS_MARGIN`` at the default offset).

    Args:
        names: the frame names, in playing order.
        labels: the slider's label for each frame.
        prefix: shown before the current label (e.g. ``"step "``).
        frame_ms: milliseconds per frame at 1× speed.
        active: the slider's initial position (default: the last frame, which the figure's
            initial data shows).
        offset: pixels between the bottom of the plot area and the buttons (room for the
            bottom axis' tick labels and title).

    Returns:
        ``{"sliders": [...], "updatemenus": [...]}`` for ``fig.update_layout(**...)``.

    Examples:
        >>> controls = animation_controls(["0", "10"], ["0", "10"], prefix="step ")
        >>> [b["label"] for b in controls["updatemenus"][0]["buttons"]]
        ['Play', 'Pause', '0.5×', '1×', '2×']
    """
    if len(names) != len(labels):
        raise ValueError(f"Length mismatch: {len(names)} frame names, {len(labels)} labels")
    if not names:
        raise ValueError("an animation needs at least one frame")
    if not (isinstance(frame_ms, (int, float)) and frame_ms > 0):
        raise ValueError(f"frame_ms must be > 0, got {frame_ms!r}")
    active = len(names) - 1 if active is None else active
    jump = {"frame": {"duration": 0, "redraw": False}, "transition": {"duration": 0}, "mode": "immediate"}
    many = len(names) > MAX_STEP_LABELS
    slider = {
        "active": active,
        "steps": [{"method": "animate", "label": label, "args": [[name], jump]} for name, label in zip(names, labels)],
        "currentvalue": {"prefix": prefix, "visible": True, "xanchor": "left", "font": {"color": NEUTRAL_TEXT}},
        # transparent tick labels when they would overlap; the current value above still names the frame
        "font": {"color": "rgba(0,0,0,0)" if many else NEUTRAL_TEXT, "size": 10},
        "x": 0.0,
        "len": 1.0,
        "y": 0.0,
        "yanchor": "top",
        "pad": {"t": offset + 35, "b": 0},
        "transition": {"duration": 0},
    }
    buttons = {
        "type": "buttons",
        "direction": "left",
        "showactive": False,
        "bgcolor": BUTTON_BG,
        "bordercolor": "#808495",
        "font": {"color": BUTTON_TEXT},
        "x": 0.0,
        "y": 0.0,
        "xanchor": "left",
        "yanchor": "top",
        "pad": {"t": offset, "r": 0},
        "buttons": [
            # None animates all frames; fromcurrent resumes where a pause or the slider left off
            {"label": "Play", "method": "animate", "args": [None, _animate_args(frame_ms)]},
            # animating to [None] with zero duration is plotly's documented way to pause
            {"label": "Pause", "method": "animate", "args": [[None], jump]},
        ]
        + [{"label": f"{s:g}×", "method": "animate", "args": [None, _animate_args(frame_ms / s)]} for s in SPEEDS],
    }
    return {"sliders": [slider], "updatemenus": [buttons]}
