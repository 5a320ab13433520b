"""The 1-D lab animation: densities, where the penalty comes from, and the loss, frame by frame.

One column per run (or, for more than two runs or long labels, one row per run, so titles never
collide on a narrow screen). Panel 1 draws the teacher (grey area) and every start's student; panel 2 the
pointwise integrand of start 0, whose area is the divergence (``T log(T/S)`` under forward KL
is large where the teacher has mass the student misses: zero-avoiding; ``S log(S/T)`` under
reverse KL is large where the student has mass the teacher lacks: zero-forcing); panel 3 every
start's loss curve with a marker that follows the animation. The density axis holds every curve of
every frame; the loss panels share one axis type (all log or all linear).
"""

from __future__ import annotations

import copy
import functools
import html
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Distribution
from kl_core.divergences import integrand
from kl_core.viz.animation import CONTROLS_MARGIN, animation_controls
from kl_core.viz.colors import rgba
from kl_core.viz.densities import check_1d, density_cap, teacher_area, x_range_1d
from kl_core.viz.losses import shared_loss_axes
from kl_core.viz.runs import Run, check_runs, component_moments, log_densities, motion_steps
from kl_core.viz.theme import FAINT_ALPHA, FAINT_WIDTH, compact, style_layout, typed_array

__all__ = ["animation_1d", "penalty_range", "penalty_title", "INTEGRAND_FORMULAS"]

# the integrand of each kind in words, T = teacher density, S = student density
INTEGRAND_FORMULAS = {
    "forward_kl": "T·log(T/S)",
    "reverse_kl": "S·log(S/T)",
    "skew_forward_kl": "T·log(T/(αT+(1−α)S))",
    "skew_reverse_kl": "S·log(S/(αS+(1−α)T))",
    "tv": "½·|T − S|",
}


PENALTY_CAP = 4.0  # the integrand axis reaches at most this multiple of the final frame's extremes
PENALTY_FLOOR = 0.1  # ... but always at least this fraction of the extremes over all frames


def penalty_range(values: np.ndarray) -> list[float]:
    """The fixed y range of an integrand row, from its values over all frames (F, n).

    Early frames can be penalised tens of times more than the fitted student (a narrow start is
    far from a mode), so the axis is capped at 4x the last frame's extremes: the result stays
    legible in a static render and the early, larger penalties run off the top. The floor keeps
    the axis from collapsing when the fit is perfect and the last frame is flat zero.
    """
    top_all, bottom_all = max(float(np.nanmax(values)), 0.0), min(float(np.nanmin(values)), 0.0)
    top_last, bottom_last = max(float(np.nanmax(values[-1])), 0.0), min(float(np.nanmin(values[-1])), 0.0)
    top = min(top_all, max(PENALTY_CAP * top_last, PENALTY_FLOOR * top_all))
    bottom = max(bottom_all, min(PENALTY_CAP * bottom_last, PENALTY_FLOOR * bottom_all))
    pad = 0.05 * (top - bottom) or 0.05
    return [bottom - pad, top + pad]


def gapped(curves: np.ndarray) -> np.ndarray:
    """Curves (..., S, n) as one line per leading index: (..., S * (n + 1) - 1), a NaN between curves.

    Plotly breaks a line at a NaN, so one trace draws all S curves (one trace instead of S).
    """
    curves = np.asarray(curves, float)
    *lead, n_curves, n = curves.shape
    if n_curves == 0:
        return np.empty((*lead, 0))
    out = np.full((*lead, n_curves, n + 1), np.nan)
    out[..., :n] = curves
    return out.reshape(*lead, n_curves * (n + 1))[..., :-1]


def start_labels(inits: int, n: int) -> np.ndarray:
    """The start index of each point of a :func:`gapped` trace of starts 1..inits-1 (hover text)."""
    return compact(np.repeat(np.arange(1, inits), n + 1)[:-1])


SIDE_BY_SIDE_MAX = 2  # up to this many runs are columns side by side; more get one row each (titles fit)
SIDE_BY_SIDE_CHARS = 15  # ... and only when every label is this short: half of a phone's width at 15 px
ROW_PX = 215  # stacked layout: pixels per run's row
STACK_GAP_PX = 62  # stacked layout: pixels between rows (the row above's ticks, this row's label)


@functools.lru_cache(maxsize=16)
def _grid_layout(runs: int, titles: tuple[str, ...], stacked: bool) -> tuple[dict, dict]:
    if not stacked:  # rows: density, penalty, loss; one column per run
        grid = make_subplots(
            rows=3,
            cols=runs,
            row_heights=[0.45, 0.3, 0.25],
            vertical_spacing=0.13,
            horizontal_spacing=0.08 if runs > 1 else 0.0,
            subplot_titles=titles,
        )
        place = {(panel, c): (panel, c + 1) for panel in range(1, 4) for c in range(runs)}
    else:  # one row per run: density, penalty, loss side by side
        plot_px = ROW_PX * runs + STACK_GAP_PX * (runs - 1)
        grid = make_subplots(
            rows=runs,
            cols=3,
            column_widths=[0.4, 0.32, 0.28],
            vertical_spacing=STACK_GAP_PX / plot_px,
            horizontal_spacing=0.07,
        )
        place = {(panel, c): (c + 1, panel) for panel in range(1, 4) for c in range(runs)}
    axes = {
        key: (grid.get_subplot(*rc).xaxis.plotly_name, grid.get_subplot(*rc).yaxis.plotly_name)
        for key, rc in place.items()
    }
    return grid.layout.to_plotly_json(), axes


def _grid(runs: int, titles: tuple[str, ...], stacked: bool) -> tuple[dict, dict]:
    """The subplot layout (a fresh copy: make_subplots costs ~40 ms) and the axis names per (panel, run).

    Panels are 1 density, 2 integrand, 3 loss; runs count from 0. Up to two runs with short labels
    are columns (each a density over its integrand over its losses); otherwise (``stacked``) each run
    is a row, so that every title has a whole line to itself on a phone as on a wide screen.
    """
    layout, axes = _grid_layout(runs, titles, stacked)
    layout = copy.deepcopy(layout)
    for k, annotation in enumerate(layout.get("annotations", [])):  # the run's name larger than its panels'
        annotation["font"] = {**annotation.get("font", {}), "size": 15 if k < runs else 13}
    return layout, axes


def penalty_title(run: Run, notation: tuple[str, str] = ("T", "S")) -> str:
    """The short title of a run's integrand panel, e.g. ``"penalty T·log(T/S)"`` (``notation``: the letters
    for teacher and student, e.g. ``("p", "q")`` gives ``"penalty p·log(p/q)"``)."""
    formula = INTEGRAND_FORMULAS.get(run.objective)
    if formula is None:
        return "penalty"
    return "penalty " + formula.translate(str.maketrans({"T": notation[0], "S": notation[1]}))


def animation_1d(
    teacher: Distribution,
    runs: Sequence[Run],
    *,
    n_frames: int = 60,
    n_points: int = 200,
    x_range: tuple[float, float] | None = None,
    frame_ms: int = 80,
    notation: tuple[str, str] = ("T", "S"),
) -> go.Figure:
    """Animate 1-D fits: every start's student over the teacher, the integrand of start 0, and the losses.

    The initial data shows the last frame (the fitted students), so a static render shows the
    result; Play, Pause, speed buttons and a step slider replay the fit in the browser.

    Args:
        teacher: a 1-D Gaussian or GaussianMixture.
        runs: one column (or row) per run; each run's students must be 1-D.
        n_frames: at most this many frames, spread over the students' movement (:func:`motion_steps`;
            first and last step included).
        n_points: points of the x grid.
        x_range: the x interval; default covers the teacher (+- 4 stds per component), every
            frame's student means and the final students (+- 3 stds).
        frame_ms: milliseconds per frame at 1× speed.
        notation: the letters for (teacher, student) in the integrand titles, e.g. ``("p", "q")``.

    Returns:
        A figure with one frame per step of :func:`motion_steps`, named by the step number.
        Every trace carries ``meta`` naming what it draws: ``role``, ``run`` and ``start``, or
        ``starts`` for the faint trace that draws starts 1.. of a row as one line broken by NaN
        gaps (one trace instead of one per start: plotly's cost grows with the number of traces).

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "reverse_kl", steps=20, inits=2)
        >>> fig = animation_1d(p.teacher, [Run("reverse_kl", {}, traj)], n_frames=5)
        >>> [f.name for f in fig.frames]  # spread over the movement (motion_steps), named by the real step
        ['0', '4', '9', '14', '20']
    """
    check_1d(teacher, "teacher")
    runs = check_runs(runs)
    for k, run in enumerate(runs):
        check_1d(run.trajectory.student(0, 0), f"runs[{k}]'s student")
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2, got {n_points!r}")
    steps = motion_steps(runs, n_frames)

    if x_range is None:
        moments = [component_moments(run, steps) for run in runs]  # (F, S, K) means and stds per run
        x_range = x_range_1d(
            teacher,
            means=np.concatenate([mu.ravel() for mu, _ in moments]),
            final=(
                np.concatenate([mu[-1].ravel() for mu, _ in moments]),
                np.concatenate([sd[-1].ravel() for _, sd in moments]),
            ),
        )
    lo, hi = (float(v) for v in x_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"x_range must be two finite numbers, low < high, got {x_range!r}")
    x = np.linspace(lo, hi, n_points)
    log_p = teacher.log_prob(x)
    p = np.exp(log_p)

    # every curve at every frame, computed once. Start 0 is drawn on the full grid; the other
    # starts are thin context lines on a grid half as fine, all in ONE trace separated by gaps
    # (NaN): plotly's cost, in Python and in the browser, grows with the number of traces
    x_other = np.linspace(lo, hi, max(2, (n_points + 1) // 2))
    dens, others, pen = [], [], []
    for run in runs:
        log_q = log_densities(run, steps, x)  # (F, S, n)
        dens.append(np.exp(log_q[:, 0]))  # (F, n): start 0
        others.append(gapped(np.exp(log_densities(run, steps, x_other)[:, 1:])))  # (F, (S-1)(n//2 + 1) - 1)
        pen.append(integrand(run.objective, log_p, log_q[:, 0], **run.params))  # (F, n): start 0's integrand
    # the loss of start i at frame f (a shorter run holds its last value)
    frame_loss = [run.trajectory.loss[np.minimum(steps, run.trajectory.steps)] for run in runs]  # (F, S)

    cols = len(runs)
    if len(notation) != 2 or not all(isinstance(c, str) and len(c) == 1 for c in notation):
        raise ValueError(f"notation must be two one-letter strings (teacher, student), got {notation!r}")
    notation = (notation[0], notation[1])
    stacked = cols > SIDE_BY_SIDE_MAX or any(
        len(run.display_label) > SIDE_BY_SIDE_CHARS or len(penalty_title(run, notation)) > SIDE_BY_SIDE_CHARS + 5
        for run in runs
    )
    if stacked:  # each row is labelled by an annotation of its own (below)
        titles: list[str] = []
    else:
        titles = [run.display_label for run in runs] + [penalty_title(run, notation) for run in runs]
        titles += ["loss per start"] + [""] * (cols - 1)
    # plotly objects cost ~10 ms per trace to build and validate; this figure has hundreds of
    # curves, so its traces, axes and frames are plain dicts, assembled once without validation
    layout, axes = _grid(cols, tuple(titles), stacked)
    traces: list[dict] = []

    def axis(kind: str, panel: int, c: int, **settings) -> None:
        layout.setdefault(axes[panel, c][0 if kind == "x" else 1], {}).update(settings)

    y_top = density_cap(float(p.max()), max(float(np.nanmax(d)) for d in (*dens, *others) if d.size))
    last = len(steps) - 1
    animated: list[int] = []  # indices of the traces each frame updates, in frame data order

    def add(trace: dict, panel: int, c: int, moves: bool) -> None:
        if moves:
            animated.append(len(traces))
        x_name, y_name = axes[panel, c]
        traces.append(
            {"type": "scatter", **trace, "xaxis": x_name.replace("axis", ""), "yaxis": y_name.replace("axis", "")}
        )

    def add_starts(c: int, panel: int, role: str, first, rest, *, hover: str, widths, moves: bool, legend=False):
        """Start 0 as a bold line, starts 1.. as ONE faint line broken by NaN gaps (``meta["starts"]``).

        ``first`` is start 0's (x, y); ``rest`` is (x of one curve, the others' y already :func:`gapped`).
        """
        run, inits = runs[c], runs[c].trajectory.inits
        label, color, group = run.display_label, run.color, f"run{c}"
        add(
            dict(
                x=compact(first[0]),
                y=compact(first[1]),
                mode="lines",
                name=label if legend else f"{label}, start 0",
                legendgroup=group,
                showlegend=legend,
                line=dict(color=color, width=widths[0]),
                hovertemplate=f"start 0<br>{hover}<extra></extra>",
                meta={"role": role, "run": c, "start": 0},
            ),
            panel,
            c,
            moves,
        )
        if inits > 1:
            x_rest = rest[0]
            add(
                dict(
                    x=compact(gapped(np.broadcast_to(x_rest, (inits - 1, x_rest.size)))),
                    y=compact(rest[1]),
                    customdata=start_labels(inits, x_rest.size),
                    mode="lines",
                    name=f"{label}, other starts",
                    legendgroup=group,
                    showlegend=False,
                    line=dict(color=rgba(color, FAINT_ALPHA), width=widths[1]),
                    hovertemplate=f"start %{{customdata}}<br>{hover}<extra></extra>",
                    meta={"role": role, "run": c, "starts": list(range(1, inits))},
                ),
                panel,
                c,
                moves,
            )

    max_steps = max(max(run.trajectory.steps for run in runs), 1)
    loss_axes = shared_loss_axes([run.trajectory.loss for run in runs])
    for c, run in enumerate(runs):
        color, group = run.color, f"run{c}"
        traj = run.trajectory
        add(teacher_area(x, p, showlegend=c == 0).to_plotly_json(), 1, c, moves=False)
        add_starts(
            c,
            1,
            "student",
            (x, dens[c][last]),
            (x_other, others[c][last]),
            hover="x=%{x:.2f}<br>density=%{y:.3f}",
            widths=(3, FAINT_WIDTH),
            moves=True,
            legend=True,
        )
        add(
            dict(
                x=compact(x),
                y=compact(pen[c][last]),
                mode="lines",
                name=f"{run.display_label}: integrand",
                legendgroup=group,
                showlegend=False,
                line=dict(color=color, width=2),
                fill="tozeroy",  # the filled area is the divergence itself
                fillcolor=rgba(color, 0.25),
                hovertemplate="x=%{x:.2f}<br>integrand=%{y:.3f} nats<extra></extra>",
                meta={"role": "integrand", "run": c, "start": 0},
            ),
            2,
            c,
            moves=True,
        )
        step_axis = np.arange(traj.steps + 1)
        add_starts(
            c,
            3,
            "loss",
            (step_axis, traj.loss[:, 0]),
            (step_axis, gapped(traj.loss[:, 1:].T)),
            hover="step %{x}<br>loss=%{y:.4f} nats",
            widths=(2.5, FAINT_WIDTH),
            moves=False,
        )
        add(
            dict(
                x=compact(np.full(traj.inits, min(int(steps[last]), traj.steps))),
                y=compact(frame_loss[c][last]),
                mode="markers",
                name=f"{run.display_label}: current step",
                legendgroup=group,
                showlegend=False,
                marker=dict(color=color, size=8, line=dict(width=0)),
                hovertemplate="step %{x}<br>loss=%{y:.4f} nats<extra></extra>",
                meta={"role": "loss_marker", "run": c},
            ),
            3,
            c,
            moves=True,
        )

        last_row = c == cols - 1
        axis("x", 1, c, range=[lo, hi])
        axis("y", 1, c, range=[0.0, y_top])
        axis("y", 2, c, range=list(penalty_range(pen[c])))
        axis("y", 3, c, **loss_axes[c])
        if stacked:  # x is named under the last row only; the row's label names its middle panel
            axis("x", 1, c, title={"text": "x" if last_row else ""})
            axis("x", 2, c, range=[lo, hi], title={"text": "x" if last_row else ""})
            axis("x", 3, c, range=[0, max_steps], title={"text": "step: loss (nats)" if last_row else ""})
            axis("y", 1, c, title={"text": "density"})
        else:  # row 1 shares its x with row 2, which names it (the rows are spaced for that title)
            axis("x", 2, c, range=[lo, hi], title={"text": "x"})
            axis("x", 3, c, range=[0, max_steps], title={"text": "step"})

    if stacked:  # a run's label over its row, left-aligned: a whole line for it at any width
        for c, run in enumerate(runs):
            y_top_row = layout[axes[1, c][1]]["domain"][1]
            layout.setdefault("annotations", []).append(
                {
                    "text": f"<b>{html.escape(run.display_label)}</b>   {html.escape(penalty_title(run, notation))}",
                    "x": 0.0,
                    "xref": "paper",
                    "xanchor": "left",
                    "y": y_top_row,
                    "yref": "paper",
                    "yanchor": "bottom",
                    "yshift": 6,
                    "showarrow": False,
                    "font": {"size": 14},
                }
            )
    else:
        axis("y", 1, 0, title={"text": "density"})
        axis("y", 2, 0, title={"text": "integrand (nats per unit x)"})
        axis("y", 3, 0, title={"text": "loss (nats)"})

    frames = []  # their arrays as typed-array specs: plotly then neither converts nor validates them
    for f, step in enumerate(steps):
        data = []
        for c, run in enumerate(runs):
            data.append({"type": "scatter", "y": typed_array(dens[c][f])})
            if run.trajectory.inits > 1:
                data.append({"type": "scatter", "y": typed_array(others[c][f])})
            data.append({"type": "scatter", "y": typed_array(pen[c][f])})
            at = min(int(step), run.trajectory.steps)
            data.append(
                {
                    "type": "scatter",
                    "x": typed_array(np.full(run.trajectory.inits, at)),
                    "y": typed_array(frame_loss[c][f]),
                }
            )
        frames.append({"data": data, "traces": animated, "name": str(int(step))})
    # fixed margins: with automargin plotly measures every tick label and legend item in the page
    # (getBoundingClientRect) and lays the figure out twice; inside Streamlit's large page each
    # measurement forces a layout of the whole document (measured: 2.1 s -> 1.4 s median redraw)
    for key in layout:
        if key.startswith(("xaxis", "yaxis")):
            layout[key]["automargin"] = False
    names = [str(int(s)) for s in steps]
    layout.update(animation_controls(names, names, prefix="step ", frame_ms=frame_ms))
    height = 820 if not stacked else 70 + ROW_PX * cols + STACK_GAP_PX * (cols - 1) + CONTROLS_MARGIN
    style_layout(layout, height=height, bottom=CONTROLS_MARGIN)
    return go.Figure({"data": traces, "layout": layout, "frames": frames}, _validate=False)
