"""Exporters for the lab's figures: standalone HTML and div snippets, PNG/SVG stills, GIF/MP4 animations.

Every export can carry a title and a caption (``title=``, ``caption=``: drawn above and below the
figure, and the HTML page's ``<title>``); :func:`scenario_labels` writes both from a lab scenario,
so a file says what it shows and with which settings.

HTML keeps the animation interactive (Play, Pause, speed, the step slider) and needs nothing but
a browser: ``to_html`` inlines plotly.js (~4.7 MB, plays offline from a file), ``to_div`` is the
light snippet for a page that loads plotly.js itself.

Stills and movies are rendered by kaleido (the system chromium). A still shows the figure as it
is first displayed, which for the lab animations is the last frame (the fitted students); pass
``frame=`` to pick another. Raster images drop the Play buttons and step slider (they do nothing
in an image) and the room below the plots they needed, and get an opaque background (``background``)
so the text reads on a slide. A GIF/MP4 is every animation frame (or ``max_frames`` of them, evenly
spaced with both ends) rendered so and assembled by imageio; one kaleido browser renders all of them
(0.2-0.5 s per frame after a 2-10 s start; :func:`render_session` shares one browser across exports).

Examples:
    >>> import plotly.graph_objects as go
    >>> fig = go.Figure(go.Scatter(y=[0, 1]), frames=[go.Frame(data=[go.Scatter(y=[1, 0])], name="1")])
    >>> '<script src="https://cdn.plot.ly' in to_html(fig)
    False
    >>> [len(f["data"]) for f in frame_figures(fig)]
    [1]
"""

from __future__ import annotations

import html as html_text
import os
import tempfile
import textwrap
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from kl_core.viz.animation import CONTROLS_HEIGHT
from kl_core.viz.colors import label_for
from kl_core.viz.theme import TEXT_COLOR

if TYPE_CHECKING:
    from kl_core.scenario import Scenario

__all__ = [
    "FORMATS",
    "DEFAULT_WIDTH",
    "to_html",
    "to_div",
    "still_figure",
    "frame_figures",
    "render_session",
    "check_size",
    "check_fps",
    "to_png",
    "to_svg",
    "to_gif",
    "to_mp4",
    "export",
    "labelled",
    "scenario_labels",
]

FORMATS = ("html", "div", "png", "svg", "gif", "mp4")
DEFAULT_WIDTH = 960  # pixels: a 16:9 slide's content width at 1x; even, as H.264 needs
DEFAULT_HEIGHT = 600  # for a figure without a layout height
MAX_PIXELS = 4096  # per side: a larger frame is a mistake, and slow to render
MAX_FPS = 60
GIF_HOLD_MS = 1500  # the last GIF frame stays this long before the loop restarts

CAPTION_CHARS = 120  # a caption line wraps at about this many characters (a 960 px image, 12 px text) ...
CAPTION_CHAR_PX = 7.0  # ... or, for an image of known width, at its width over this (12 px text)
CAPTION_LINE_PX = 17
TITLE_PX = 40  # room above the plots for the export's title

_KALEIDO_LOCK = threading.RLock()  # kaleido's sync server is a process-wide singleton: one export at a time


# -- HTML -------------------------------------------------------------------------------------------


def to_html(
    fig: go.Figure,
    *,
    plotlyjs: str = "inline",
    full_html: bool = True,
    auto_play: bool = False,
    div_id: str | None = None,
    title: str | None = None,
    caption: str | None = None,
) -> str:
    """The figure as HTML with its animation controls working in any browser.

    Args:
        fig: the figure (its ``frames`` play with the figure's own Play button).
        plotlyjs: ``"inline"`` embeds plotly.js (self-contained, ~4.7 MB, works offline from
            file://); ``"none"`` adds no plotly.js (the page must load it first); a path or URL
            ending in ``.js`` adds ``<script src="...">`` for it (e.g. ``"plotly.min.js"`` beside the file).
        full_html: a whole document (``<html>...``) or only the ``<div>`` and its script.
        auto_play: start playing on load (default False: the page shows the fitted students until Play).
        div_id: the id of the plot's ``<div>`` (default: a random one).
        title: the document's ``<title>`` (full_html only) and the figure's title.
        caption: a line (or a few) under the figure: the settings it was made with.
    """
    if plotlyjs == "inline":
        include: bool | str = True
    elif plotlyjs == "none":
        include = False
    elif isinstance(plotlyjs, str) and plotlyjs.endswith(".js"):
        include = plotlyjs
    else:
        raise ValueError(f"plotlyjs must be 'inline', 'none' or a path/URL ending in .js, got {plotlyjs!r}")
    if title or caption:
        fig = labelled(fig, title, caption)
    html = pio.to_html(
        fig,
        include_plotlyjs=include,
        full_html=full_html,
        auto_play=auto_play,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
        validate=False,
    )
    if full_html and title:
        html = html.replace("<head>", f"<head><title>{_escape(title)}</title>", 1)
    return html


def labelled(
    fig: go.Figure | dict, title: str | None = None, caption: str | None = None, *, width: int | None = None
) -> dict:
    """The figure dict with ``title`` above the plots and ``caption`` under everything (the margins grow to fit).

    Both are plain text (escaped here); the caption wraps to fit ``width`` pixels (default: about
    120 characters a line).

    Examples:
        >>> d = labelled(go.Figure(go.Scatter(y=[0, 1])), "A title", "lr 0.05, 400 steps")
        >>> d["layout"]["title"]["text"], d["layout"]["annotations"][-1]["text"]
        ('A title', 'lr 0.05, 400 steps')
    """
    base = _base_dict(fig)
    layout = dict(base.get("layout", {}))
    margin = {"t": 70, "b": 40, "l": 60, "r": 30, **layout.get("margin", {})}
    before = margin["t"] + margin["b"]
    if title:
        margin["t"] += TITLE_PX
        layout["title"] = {
            "text": _escape(title),
            "x": 0.0,
            "xref": "paper",
            "xanchor": "left",
            "y": 1.0,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 10},
            "font": {"size": 17, "color": TEXT_COLOR},
        }
    if caption:
        chars = CAPTION_CHARS if width is None else max(30, int((width - margin["l"] - 10) / CAPTION_CHAR_PX))
        lines = textwrap.wrap(caption, chars) or [""]
        below = margin["b"]
        margin["b"] += CAPTION_LINE_PX * len(lines) + 8
        layout["annotations"] = [
            *layout.get("annotations", []),
            {
                "text": "<br>".join(_escape(line) for line in lines),
                "x": 0.0,
                "xref": "paper",
                "xanchor": "left",
                "align": "left",
                "y": 0.0,
                "yref": "paper",
                "yanchor": "top",
                "yshift": -below,
                "showarrow": False,
                "font": {"size": 12, "color": TEXT_COLOR},
                "name": "caption",
            },
        ]
    layout["margin"] = margin
    if "height" in layout:  # the plots keep their size: the figure grows by what the labels took
        layout["height"] = int(layout["height"]) + margin["t"] + margin["b"] - before
    base["layout"] = layout
    return base


def scenario_labels(scenario: Scenario) -> tuple[str, str]:
    """The title and the settings caption of a lab scenario's export.

    Examples:
        >>> from kl_core.scenario import Scenario
        >>> title, caption = scenario_labels(Scenario(space="1d", preset="bimodal"))
        >>> title
        'KL Lab: forward KL vs reverse KL on bimodal, Gaussian student'
        >>> caption.split("; ")[0]
        'teacher: 0.5·N(−3, 1²) + 0.5·N(3, 1²)'
    """
    kinds = " vs ".join(label_for(kind, dict(params)) for kind, params in scenario.objectives)
    if scenario.space == "2d":
        title = f"KL Lab: {kinds} on the 2-D {scenario.preset} teacher, Gaussian student"
        teacher = f"teacher: 2-D preset {scenario.preset}"
        student = "student: 2-D Gaussian"
        estimator = "estimator: exact"
    else:
        student = {
            "gaussian": "Gaussian student",
            "gaussian_fixed_std": "Gaussian student (std fixed)",
            "mixture": f"{scenario.components}-component mixture student",
        }[scenario.student]
        title = f"KL Lab: {kinds} on {scenario.preset}, {student}"
        total = sum(w for w, _, _ in scenario.teacher)
        modes = " + ".join(f"{w / total:.3g}·N({_num(m)}, {_num(sd)}²)" for w, m, sd in scenario.teacher)
        teacher = f"teacher: {modes}"
        student = f"student: {student.removesuffix(' student')}"
        estimator = f"estimator: {scenario.estimator}"
        if scenario.estimator != "exact":
            estimator += f" ({scenario.samples} samples per step)"
    training = f"lr {scenario.lr:g}, {scenario.steps} steps, {scenario.inits} starts, seed {scenario.seed}"
    return title, "; ".join([teacher, student, estimator, training])


def _num(value: float) -> str:
    return f"{value:g}".replace("-", "−")


def to_div(fig: go.Figure, *, div_id: str | None = None, title: str | None = None, caption: str | None = None) -> str:
    """A ``<div>`` + ``<script>`` snippet of the animated figure for a page that already loads plotly.js.

    Put ``<script src="plotly.min.js"></script>`` (plotly.js 3 or later) before it in the page.
    ``title`` and ``caption`` are drawn above and below the figure.
    """
    return to_html(fig, plotlyjs="none", full_html=False, div_id=div_id, title=title, caption=caption)


def _escape(text: str) -> str:
    return html_text.escape(str(text), quote=False)


# -- the figure at one frame ------------------------------------------------------------------------


def _merge(base: Any, update: Any) -> Any:
    """``update`` laid over ``base``: objects merge key by key, anything else replaces (as plotly.animate does)."""
    # a typed array ({"dtype", "bdata"[, "shape"]}) is one value, not an object to merge into
    if isinstance(base, dict) and isinstance(update, dict) and "bdata" not in update:
        out = dict(base)
        for key, value in update.items():
            out[key] = _merge(base.get(key), value)
        return out
    return update


def _base_dict(fig: go.Figure | dict) -> dict:
    if isinstance(fig, go.Figure):
        return fig.to_dict()
    if isinstance(fig, dict):
        return dict(fig)
    raise ValueError(f"fig must be a plotly Figure or a figure dict, got {type(fig).__name__}")


def _still(base: dict, frame: dict | None, background: str | None) -> dict:
    """``base`` (frames removed) with ``frame``'s data and layout applied, without the animation controls."""
    data = list(base.get("data", []))
    layout = dict(base.get("layout", {}))
    if frame is not None:
        updates = frame.get("data", [])
        targets = frame.get("traces") or list(range(len(updates)))
        for index, update in zip(targets, updates):
            data[index] = _merge(data[index], update)
        layout = _merge(layout, frame.get("layout", {}))
    controls = [layout.pop(key, None) for key in ("updatemenus", "sliders")]
    if any(c is not None for c in controls):
        margin = dict(layout.get("margin", {}))
        if "b" in margin:  # the controls sat in the bottom margin: give that room back
            freed = min(CONTROLS_HEIGHT, max(margin["b"] - 40, 0))
            margin["b"] -= freed
            layout["margin"] = margin
            if "height" in layout:
                layout["height"] -= freed
    if background is not None:
        layout["paper_bgcolor"] = background
        layout["plot_bgcolor"] = background
    return {"data": data, "layout": layout}


def still_figure(fig: go.Figure | dict, frame: int | str | None = None, *, background: str | None = None) -> dict:
    """The figure dict of one state: as first displayed (``frame=None``) or at a frame (index or name).

    The animation controls are dropped and the bottom margin they used is given back.
    """
    base = _base_dict(fig)
    frames = base.pop("frames", None) or []
    if frame is None:
        return _still(base, None, background)
    return _still(base, frames[_frame_index(frames, frame)], background)


def _frame_index(frames: Sequence[dict], frame: int | str) -> int:
    if isinstance(frame, str):
        names = [f.get("name") for f in frames]
        if frame not in names:
            raise ValueError(f"frame {frame!r} is not a frame name; names: {', '.join(map(str, names[:10]))}...")
        return names.index(frame)
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or not -len(frames) <= frame < len(frames):
        raise ValueError(f"frame must be an index in [{-len(frames)}, {len(frames) - 1}] or a name, got {frame!r}")
    return int(frame) % len(frames)


def frame_figures(fig: go.Figure | dict, *, max_frames: int | None = None, background: str | None = None) -> list[dict]:
    """One still figure dict per animation frame (at most ``max_frames``, evenly spaced, both ends kept).

    A figure without frames gives one still, its displayed state.
    """
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 2):
        raise ValueError(f"max_frames must be an integer >= 2 (the first and the last frame), got {max_frames!r}")
    base = _base_dict(fig)
    frames = base.pop("frames", None) or []
    if not frames:
        return [_still(base, None, background)]
    picks = range(len(frames))
    if max_frames is not None and len(frames) > max_frames:
        picks = np.unique(np.rint(np.linspace(0, len(frames) - 1, max_frames)).astype(int))
    return [_still(base, frames[i], background) for i in picks]


# -- rendering with kaleido -------------------------------------------------------------------------


def check_size(width: int | None, height: int | None, *, even: bool = False) -> None:
    """ValueError unless ``width`` and ``height`` are None or pixel counts in [16, 4096] (even for MP4)."""
    for name, value in (("width", width), ("height", height)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 16 <= value <= MAX_PIXELS:
            raise ValueError(f"{name} must be an integer in [16, {MAX_PIXELS}] pixels, got {value!r}")
        if even and value % 2:
            raise ValueError(f"{name} must be even for MP4 (H.264 stores colour per 2x2 pixels), got {value}")


def check_fps(fps: float) -> None:
    """ValueError unless ``fps`` is a number in [0.5, 60]."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0.5 <= fps <= MAX_FPS:
        raise ValueError(f"fps must be a number in [0.5, {MAX_FPS}], got {fps!r}")


def _size(still: dict, width: int | None, height: int | None, even: bool = False) -> tuple[int, int]:
    if height is None:  # the figure's own height; rounded up to even for MP4 (an explicit one must be even)
        height = int(still["layout"].get("height") or DEFAULT_HEIGHT)
        height += height % 2 if even else 0
    width = DEFAULT_WIDTH if width is None else width
    check_size(width, height, even=even)
    return int(width), int(height)


_session_depth = 0  # open render_session() blocks (nested ones share one browser)


@contextmanager
def render_session() -> Iterator[None]:
    """Keep one kaleido browser open for every image rendered inside (nested sessions share it).

    Each export opens its own session; wrap several exports in one to pay the browser's start
    (2-10 s) once. Sessions are serialised: kaleido's sync server is a process-wide singleton.

    Examples:
        >>> with render_session():  # doctest: +SKIP
        ...     png, gif = to_png(fig), to_gif(fig)
    """
    import kaleido

    global _session_depth
    with _KALEIDO_LOCK:
        if _session_depth == 0:
            kaleido.start_sync_server(silence_warnings=True)
        _session_depth += 1
        try:
            yield
        finally:
            _session_depth -= 1
            if _session_depth == 0:
                kaleido.stop_sync_server(silence_warnings=True)


def _render(stills: Sequence[dict], fmt: str, width: int, height: int, scale: float) -> list[bytes]:
    with render_session(), warnings.catch_warnings():
        # plotly warns that its per-call kaleido options are ignored by a running server: there are none
        warnings.filterwarnings("ignore", message="The kopts argument is ignored", category=UserWarning)
        return [pio.to_image(s, format=fmt, width=width, height=height, scale=scale, validate=False) for s in stills]


def _image(
    fig: go.Figure | dict,
    fmt: str,
    frame: int | str | None,
    width: int | None,
    height: int | None,
    scale: float,
    background: str | None,
    title: str | None = None,
    caption: str | None = None,
) -> bytes:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.1 <= scale <= 8:
        raise ValueError(f"scale must be a number in [0.1, 8], got {scale!r}")
    still = still_figure(fig, frame, background=background)
    if title or caption:
        still = labelled(still, title, caption, width=width or DEFAULT_WIDTH)
    return _render([still], fmt, *_size(still, width, height), scale)[0]


def to_png(
    fig: go.Figure | dict,
    *,
    frame: int | str | None = None,
    width: int | None = None,
    height: int | None = None,
    scale: float = 1.0,
    background: str | None = "white",
    title: str | None = None,
    caption: str | None = None,
) -> bytes:
    """PNG bytes of the figure as displayed (for the lab animations: the last frame), or of ``frame``.

    Args:
        fig: the figure.
        frame: ``None`` for the displayed state, else a frame index (``-1`` = last) or name.
        width, height: pixels before ``scale`` (default 960 x the figure's height less the controls).
        scale: pixel density (2 for a sharp slide).
        background: the paper and plot colour (default white); ``None`` keeps the figure's (transparent).
        title, caption: drawn above and below the figure (:func:`labelled`).
    """
    return _image(fig, "png", frame, width, height, scale, background, title, caption)


def to_svg(
    fig: go.Figure | dict,
    *,
    frame: int | str | None = None,
    width: int | None = None,
    height: int | None = None,
    background: str | None = "white",
    title: str | None = None,
    caption: str | None = None,
) -> bytes:
    """SVG (UTF-8 bytes) of the figure as displayed, or of ``frame``; arguments as :func:`to_png`."""
    return _image(fig, "svg", frame, width, height, 1.0, background, title, caption)


def _movie_frames(
    fig: go.Figure | dict,
    fps: float,
    width: int | None,
    height: int | None,
    max_frames: int | None,
    background: str | None,
    even: bool,
    title: str | None = None,
    caption: str | None = None,
) -> tuple[np.ndarray, float]:
    """The animation's frames as an (F, H, W, 3) uint8 array, and the frame duration in ms."""
    import imageio.v3 as iio

    check_fps(fps)
    check_size(width, height, even=even)  # before any work
    stills = frame_figures(fig, max_frames=max_frames, background=background)
    if title or caption:
        stills = [labelled(s, title, caption, width=width or DEFAULT_WIDTH) for s in stills]
    width, height = _size(stills[0], width, height, even)
    pngs = _render(stills, "png", width, height, 1.0)
    images = np.stack([iio.imread(p)[..., :3] for p in pngs])  # (F, H, W, 3); RGB, opaque background
    return images, 1000.0 / fps


def _write(data: bytes, path: str | os.PathLike | None) -> bytes:
    if path is not None:
        Path(path).write_bytes(data)
    return data


def to_gif(
    fig: go.Figure | dict,
    path: str | os.PathLike | None = None,
    *,
    fps: float = 12,
    width: int | None = None,
    height: int | None = None,
    max_frames: int | None = 60,
    hold_ms: int = GIF_HOLD_MS,
    background: str | None = "white",
    title: str | None = None,
    caption: str | None = None,
) -> bytes:
    """An endlessly looping GIF of the animation; the bytes (also written to ``path`` if given).

    Args:
        fig: an animated figure (a figure without frames gives a one-frame GIF).
        path: where to write it (``None``: only return the bytes).
        fps: frames per second (0.5..60).
        width, height: pixels (default 960 x the figure's height less the controls).
        max_frames: at most this many frames, evenly spaced with the first and last (``None``: all).
        hold_ms: how long the last frame (the fitted students) stays before the loop restarts.
        background: paper and plot colour (GIF has no partial transparency).
        title, caption: drawn above and below every frame (:func:`labelled`).

    Identical consecutive frames may be merged by the GIF encoder (a longer frame, same timing).
    """
    import imageio.v3 as iio

    if isinstance(hold_ms, bool) or not isinstance(hold_ms, int) or not 0 <= hold_ms <= 10_000:
        raise ValueError(f"hold_ms must be an integer in [0, 10000], got {hold_ms!r}")
    images, frame_ms = _movie_frames(fig, fps, width, height, max_frames, background, False, title, caption)
    durations = [frame_ms] * len(images)
    durations[-1] = max(frame_ms, hold_ms)
    return _write(iio.imwrite("<bytes>", images, extension=".gif", duration=durations, loop=0), path)


def to_mp4(
    fig: go.Figure | dict,
    path: str | os.PathLike | None = None,
    *,
    fps: float = 12,
    width: int | None = None,
    height: int | None = None,
    max_frames: int | None = 60,
    background: str | None = "white",
    title: str | None = None,
    caption: str | None = None,
) -> bytes:
    """An H.264 MP4 (yuv420p, plays in browsers and slide software) of the animation; arguments as :func:`to_gif`.

    ``width`` and ``height`` must be even.
    """
    import imageio.v3 as iio

    images, _ = _movie_frames(fig, fps, width, height, max_frames, background, True, title, caption)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "animation.mp4"
        # macro_block_size=2 keeps the requested size (the default, 16, would resize to a multiple of 16)
        iio.imwrite(
            target, images, plugin="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p", macro_block_size=2
        )
        return _write(target.read_bytes(), path)


def export(fig: go.Figure | dict, fmt: str, **options: Any) -> bytes:
    """The figure in ``fmt`` (one of :data:`FORMATS`) as bytes; ``options`` go to that format's function."""
    if fmt == "html":
        return to_html(fig, **options).encode("utf-8")
    if fmt == "div":
        return to_div(fig, **options).encode("utf-8")
    writers = {"png": to_png, "svg": to_svg, "gif": to_gif, "mp4": to_mp4}
    if fmt not in writers:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return writers[fmt](fig, **options)
