"""The token lab's figures and words: joint heatmaps over training, the decoding sweep, answers per start.

:func:`joint_animation` draws the teacher's joint table beside each run's factorised student
(one start), the per-position marginals as bars and the student's mass on invalid combinations
over training; plotly frames replay the fit in the browser. :func:`decoding_figure` shows the
divergences from the teacher to a next-token distribution under temperature and top-k/top-p.
:func:`answer_rows` and :func:`token_caption` say, with live numbers, which answer each start
committed to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Categorical
from kl_core.token_lab import COMMITTED, INVALID_BELOW, DecodingSweep, answer, invalid_cells, invalid_mass
from kl_core.viz.animation import CONTROLS_HEIGHT, CONTROLS_OFFSET, animation_controls
from kl_core.viz.colors import color_for, label_for, mix, rgba
from kl_core.viz.runs import Run, check_runs, motion_steps
from kl_core.viz.theme import FAINT_ALPHA, FAINT_WIDTH, compact, style, text_on

__all__ = [
    "STUDENT_COLOR",
    "token_labels",
    "cell_label",
    "student_tables",
    "joint_animation",
    "answer_rows",
    "token_caption",
    "decoding_figure",
    "decoding_caption",
]

# a student as such (decoded, trained by no objective): the lesson's neutral candidate colour
# (kl_core.viz.lesson.CANDIDATE_COLOR), used by no divergence kind. The blue-vermillion midpoint it
# replaces was a dark grey that read as the teacher's grey beside the teacher's bars.
STUDENT_COLOR = "#9467BD"
_NOUNS = {2: "pairs", 3: "triples"}
# on a phone plotly turns the token names upright ("Francisco" is ~55 px tall): the joint animation's
# rows sit further apart and its buttons lower, or the names ran into the titles below and the buttons
JOINT_SPACING = 0.28
JOINT_CONTROLS_OFFSET = CONTROLS_OFFSET + 30


def token_labels(shape: tuple[int, ...], labels: Sequence[Sequence[str]] | None = None) -> list[list[str]]:
    """Token names per position: ``labels`` when given (checked against ``shape``), else ``t1``, ``t2``, ..."""
    if labels is None:
        return [[f"t{v + 1}" for v in range(n)] for n in shape]
    out = [list(map(str, names)) for names in labels]
    if tuple(len(names) for names in out) != tuple(shape):
        raise ValueError(f"Shape mismatch: labels for {tuple(len(n) for n in out)} tokens, table {tuple(shape)}")
    return out


def cell_label(cell: Sequence[int], names: Sequence[Sequence[str]]) -> str:
    """The words of one cell, e.g. ``(0, 1)`` -> ``"New Angeles"``."""
    return " ".join(names[axis][int(v)] for axis, v in enumerate(cell))


def student_tables(run: Run, steps: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Joint tables (F, S, *shape) and per-position marginals [(F, S, V_i)] of every start at ``steps``.

    One vectorised call of the factorised family for every frame and start.
    """
    traj = run.trajectory
    theta = traj.params[np.minimum(np.asarray(steps, int), traj.steps)]  # (F, S, P)
    F, S, P = theta.shape
    shape = traj.family.shape
    log_q, (parts, _) = traj.family.log_prob(theta.reshape(F * S, P), None)  # (F*S, C)
    return np.exp(log_q).reshape((F, S) + shape), [np.exp(p).reshape(F, S, -1) for p in parts]


def _check_teacher(teacher: Categorical, runs: Sequence[Run]) -> None:
    if not isinstance(teacher, Categorical) or teacher.probs.ndim < 2:
        raise ValueError(f"teacher must be a Categorical over at least two positions, got {teacher!r}")
    for k, run in enumerate(runs):
        shape = getattr(run.trajectory.family, "shape", None)
        if shape != teacher.shape:
            raise ValueError(f"runs[{k}]'s student must be a FactorizedCategorical of shape {teacher.shape}")


def _grid(table: np.ndarray) -> np.ndarray:
    """A joint table as a 2-D grid: rows = position 1, columns = the other positions together."""
    return table.reshape(table.shape[0], -1)


CELL_TINT = 0.9  # a heatmap's zero is its role colour this far towards white


def cell_tint(color: str) -> str:
    """The pale, opaque colour of a probability-0 cell of a heatmap in ``color``."""
    return mix(color, "#FFFFFF", CELL_TINT)


def cell_text_colors(z: np.ndarray, color: str) -> list[str]:
    """Black or white for the value written on each cell (z in [0, 1], row-major), by the cell's luminance.

    The cell's colour is the heatmap's linear scale from :func:`cell_tint` to ``color`` at z.
    """
    tint = cell_tint(color)
    return [text_on(mix(tint, color, float(np.clip(v, 0.0, 1.0)))) for v in np.asarray(z, float).ravel()]


def _with_redraw(controls: dict) -> dict:
    """Heatmaps and bars are not restyled by ``redraw: False`` frames: ask plotly to redraw each frame."""
    for menu in controls["updatemenus"]:
        for button in menu["buttons"]:
            if button["args"][1] is not None and "frame" in button["args"][1]:
                button["args"][1]["frame"]["redraw"] = True
    for slider in controls["sliders"]:
        for step in slider["steps"]:
            step["args"][1]["frame"]["redraw"] = True
    return controls


def joint_animation(
    teacher: Categorical,
    runs: Sequence[Run],
    labels: Sequence[Sequence[str]] | None = None,
    *,
    start: int = 0,
    n_frames: int = 40,
    frame_ms: int = 80,
    below: float = INVALID_BELOW,
) -> go.Figure:
    """Animate factorised students learning a correlated joint over token positions.

    Row 1: the teacher's joint (grey) and each run's student joint (its role colour), a cross
    marking every invalid cell (teacher probability below ``below``); a table over three
    positions is drawn with position 1 down and the other positions across. Row 2: the
    marginal of every position (teacher and students, bars) and the student's mass on invalid
    cells over training (start ``start`` bold, the others faint, a marker following the frames).

    Args:
        teacher: a Categorical over two or more positions.
        runs: fits of ``FactorizedCategorical`` students of the teacher's shape.
        labels: token names per position (default ``t1``, ``t2``, ...).
        start: which start's joint and marginals are drawn.
        n_frames: at most this many frames, spread over the students' movement (:func:`motion_steps`;
            both ends included).
        frame_ms: milliseconds per frame at 1× speed.
        below: the teacher probability under which a cell is invalid.

    Returns:
        A figure whose initial data shows the last frame. Traces carry ``meta``: ``{"role":
        "teacher_joint"}``, ``{"role": "joint", "run", "start"}`` (z = the joint as a 2-D grid),
        ``{"role": "marginal", "run", "position"}`` (run -1: the teacher), ``{"role":
        "invalid_mass", "run", "starts"}`` (x = steps; several starts in one trace are separated by
        NaN), ``{"role": "now", "run"}``, ``{"role": "invalid"}``.
    """
    runs = check_runs(runs)
    _check_teacher(teacher, runs)
    inits = min(run.trajectory.inits for run in runs)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < inits:
        raise ValueError(f"start must be an integer in [0, {inits - 1}], got {start!r}")
    names = token_labels(teacher.shape, labels)
    p = teacher.probs
    positions = p.ndim
    steps = motion_steps(runs, n_frames)
    tables, marginals = zip(*(student_tables(run, steps) for run in runs))  # per run: (F, S, *shape), [(F, S, V)]
    # invalid mass of every step (not only the frames): the curves are drawn in full
    curves = [invalid_mass(p, student_tables(run, np.arange(run.trajectory.steps + 1))[0], below) for run in runs]

    R = len(runs)
    cols = max(1 + R, positions + 1)
    specs = [[{} if c < 1 + R else None for c in range(cols)], [{} if c < positions + 1 else None for c in range(cols)]]
    # two short lines each: three panels share a phone's width
    titles = ["teacher"] + [f"{run.display_label}<br>start {start}" for run in runs]
    titles += [f"position {j + 1}" for j in range(positions)] + ["mass on<br>invalid " + _NOUNS.get(positions, "cells")]
    fig = make_subplots(
        rows=2,
        cols=cols,
        specs=specs,
        subplot_titles=titles,
        vertical_spacing=JOINT_SPACING,
        horizontal_spacing=0.05,
        row_heights=[0.55, 0.45],
    )
    grid_p = _grid(p)
    invalid = _grid(invalid_cells(p, below))
    row_names = names[0]
    col_names = [cell_label(idx, names[1:]) for idx in np.ndindex(*p.shape[1:])]
    rows_ix, cols_ix = np.nonzero(invalid)
    last = len(steps) - 1
    grey = color_for("teacher")

    def heatmap(z: np.ndarray, color: str, name: str, meta: dict) -> go.Heatmap:
        # opaque cells, from a pale tint to the role colour: a transparent low end took the page's colour,
        # and the values written on it vanished on one theme or the other
        return go.Heatmap(
            z=compact(z),
            x=np.arange(z.shape[1]),
            y=np.arange(z.shape[0]),
            zmin=0.0,
            zmax=1.0,
            colorscale=[[0.0, cell_tint(color)], [1.0, color]],
            showscale=False,
            customdata=np.array(
                [[f"{row_names[i]} {col_names[j]}" for j in range(z.shape[1])] for i in range(z.shape[0])]
            ),
            hovertemplate=f"{name}<br>%{{customdata}}: %{{z:.3f}}<extra></extra>",
            name=name,
            meta=meta,
        )

    def values(z: np.ndarray, color: str) -> dict:
        """The numbers written on the cells, each in black or white by its cell's luminance."""
        return {"text": [f"{v:.2f}" for v in z.ravel()], "textfont": {"color": cell_text_colors(z, color), "size": 11}}

    cell_x, cell_y = (a.ravel() for a in np.meshgrid(np.arange(len(col_names)), np.arange(len(row_names))))
    animated: list[int] = []
    texts: list[int] = []  # the value traces of the students' panels, animated after everything else
    panels = [(grey, "teacher", grid_p, {"role": "teacher_joint"})] + [
        (run.color, run.display_label, _grid(tables[c][last, start]), {"role": "joint", "run": c, "start": start})
        for c, run in enumerate(runs)
    ]
    for c, (color, name, z, meta) in enumerate(panels):
        if c > 0:
            animated.append(len(fig.data))
        fig.add_trace(heatmap(z, color, name, meta), row=1, col=c + 1)
        if c > 0:
            texts.append(len(fig.data))
        fig.add_trace(
            go.Scatter(
                x=cell_x,
                y=cell_y,
                mode="text",
                **values(z, color),
                hoverinfo="skip",
                showlegend=False,
                meta={"role": "cell_values", "panel": c},
            ),
            row=1,
            col=c + 1,
        )
        fig.add_trace(
            go.Scatter(
                x=cols_ix + 0.36,
                y=rows_ix - 0.3,
                mode="markers",
                marker=dict(symbol="x-thin", size=7, line=dict(width=1.5, color=grey)),
                name=f"invalid (teacher < {below:g})",
                legendgroup="invalid",
                showlegend=c == 0,
                hoverinfo="skip",
                meta={"role": "invalid"},
            ),
            row=1,
            col=c + 1,
        )
        fig.update_xaxes(
            tickvals=list(range(len(col_names))),
            ticktext=col_names,
            range=[-0.5, len(col_names) - 0.5],
            showgrid=False,
            zeroline=False,
            row=1,
            col=c + 1,
        )
        fig.update_yaxes(
            tickvals=list(range(len(row_names))),
            ticktext=row_names if c == 0 else [""] * len(row_names),
            range=[len(row_names) - 0.5, -0.5],  # position 1's first token on top
            showgrid=False,
            zeroline=False,
            row=1,
            col=c + 1,
        )

    for j in range(positions):
        teacher_marginal = p.sum(axis=tuple(a for a in range(positions) if a != j))
        fig.add_trace(
            go.Bar(
                x=names[j],
                y=compact(teacher_marginal),
                marker_color=grey,
                name="teacher",
                legendgroup="teacher",
                showlegend=j == 0,
                hovertemplate="teacher<br>%{x}: %{y:.3f}<extra></extra>",
                meta={"role": "marginal", "run": -1, "position": j},
            ),
            row=2,
            col=j + 1,
        )
        for c, run in enumerate(runs):
            animated.append(len(fig.data))
            fig.add_trace(
                go.Bar(
                    x=names[j],
                    y=compact(marginals[c][j][last, start]),
                    marker_color=run.color,
                    name=run.display_label,
                    legendgroup=f"run{c}",
                    showlegend=j == 0,
                    hovertemplate=f"{run.display_label}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
                    meta={"role": "marginal", "run": c, "position": j},
                ),
                row=2,
                col=j + 1,
            )
        fig.update_yaxes(range=[0.0, 1.0], title_text="probability" if j == 0 else None, row=2, col=j + 1)

    mass_col = positions + 1
    teacher_invalid = float(p[invalid_cells(p, below)].sum())
    max_steps = max(run.trajectory.steps for run in runs)
    fig.add_trace(
        go.Scatter(
            x=[0, max_steps],
            y=[teacher_invalid, teacher_invalid],
            mode="lines",
            line=dict(color=grey, dash="dot", width=1.5),
            name="teacher",
            legendgroup="teacher",
            showlegend=False,
            hovertemplate=f"teacher: {teacher_invalid:.3f}<extra></extra>",
            meta={"role": "invalid_mass", "run": -1, "starts": []},
        ),
        row=2,
        col=mass_col,
    )
    for c, run in enumerate(runs):
        n = run.trajectory.steps + 1
        others = [i for i in range(run.trajectory.inits) if i != start]
        # the other starts share one faint trace, separated by gaps (NaN): one trace instead of S - 1
        gap_x = np.concatenate([np.append(np.arange(n), np.nan) for _ in others]) if others else np.array([])
        gap_y = np.concatenate([np.append(curves[c][:, i], np.nan) for i in others]) if others else np.array([])
        for x, y, shown in ((gap_x, gap_y, False), (np.arange(n), curves[c][:, start], True)):
            if not shown and not others:
                continue
            fig.add_trace(
                go.Scatter(
                    x=compact(x),
                    y=compact(y),
                    mode="lines",
                    line=dict(
                        color=run.color if shown else rgba(run.color, FAINT_ALPHA), width=2.5 if shown else FAINT_WIDTH
                    ),
                    name=f"{run.display_label}, start {start}" if shown else f"{run.display_label}, other starts",
                    legendgroup=f"run{c}",
                    showlegend=False,
                    hovertemplate=f"{run.display_label}<br>step %{{x}}: %{{y:.3f}}<extra></extra>",
                    meta={"role": "invalid_mass", "run": c, "starts": [start] if shown else others},
                ),
                row=2,
                col=mass_col,
            )
    now = []
    for c, run in enumerate(runs):
        now.append(len(fig.data))
        step = min(int(steps[last]), run.trajectory.steps)
        fig.add_trace(
            go.Scatter(
                x=[step],
                y=[float(curves[c][step, start])],
                mode="markers",
                marker=dict(color=run.color, size=10),
                showlegend=False,
                hoverinfo="skip",
                meta={"role": "now", "run": c},
            ),
            row=2,
            col=mass_col,
        )
    fig.update_xaxes(title_text="step", range=[0, max_steps], row=2, col=mass_col)
    fig.update_yaxes(range=[0.0, 1.0], row=2, col=mass_col)

    frames = []
    for f, step in enumerate(steps):
        data: list[dict] = [{"type": "heatmap", "z": compact(_grid(tables[c][f, start]))} for c in range(R)]
        data += [{"type": "bar", "y": compact(marginals[c][j][f, start])} for j in range(positions) for c in range(R)]
        for c, run in enumerate(runs):
            s = min(int(step), run.trajectory.steps)
            data.append({"type": "scatter", "x": [s], "y": [float(curves[c][s, start])]})
        data += [{"type": "scatter", **values(_grid(tables[c][f, start]), run.color)} for c, run in enumerate(runs)]
        # `animated` holds the heatmaps, then the bars by position and run: the order of `data`
        frames.append({"data": data, "traces": animated + now + texts, "name": str(int(step))})
    fig.frames = frames
    labels_ = [str(int(s)) for s in steps]
    fig.update_layout(
        barmode="group",
        **_with_redraw(
            animation_controls(labels_, labels_, prefix="step ", frame_ms=frame_ms, offset=JOINT_CONTROLS_OFFSET)
        ),
    )
    fig.update_annotations(font_size=13)
    return style(fig, height=760, bottom=JOINT_CONTROLS_OFFSET + CONTROLS_HEIGHT, title_lines=2)


def answer_rows(
    teacher: Categorical,
    runs: Sequence[Run],
    labels: Sequence[Sequence[str]] | None = None,
    below: float = INVALID_BELOW,
) -> list[dict]:
    """The results table: one row per objective and start, about the final student.

    Returns:
        Dicts with keys ``objective, start, answer`` (the argmax cell in words), ``answer_prob``,
        ``valid`` (is that answer valid), ``committed`` (valid and > 90%), ``invalid_mass``,
        ``forward_kl``, ``reverse_kl``, ``entropy``; probabilities rounded to 3 decimals, KLs
        and entropy to 4.
    """
    runs = check_runs(runs)
    _check_teacher(teacher, runs)
    names = token_labels(teacher.shape, labels)
    rows = []
    for run in runs:
        for i, student in enumerate(run.trajectory.final):
            a = answer(teacher, student, below)
            rows.append(
                {
                    "objective": run.display_label,
                    "start": i,
                    "answer": cell_label(a.cell, names),
                    "answer_prob": round(a.mass, 3),
                    "valid": a.valid,
                    "committed": a.committed,
                    "invalid_mass": round(a.invalid_mass, 3),
                    "forward_kl": round(a.forward_kl, 4),
                    "reverse_kl": round(a.reverse_kl, 4),
                    "entropy": round(a.entropy, 4),
                }
            )
    return rows


def token_caption(
    teacher: Categorical,
    run: Run,
    labels: Sequence[Sequence[str]] | None = None,
    below: float = INVALID_BELOW,
) -> str:
    """One sentence with live numbers: how many starts committed to a valid answer, which ones,
    and how much mass the students put on invalid combinations.

    Example output: ``"**reverse KL**: 8 of 8 starts put > 90% on one valid answer (San Francisco ×3,
    Los Angeles ×3, New York ×2); it puts 0.9% to 2.2% of its mass on invalid pairs."``; starts that
    do not commit are named by their most likely answer and its own mass.
    """
    _check_teacher(teacher, [run])
    names = token_labels(teacher.shape, labels)
    answers = [answer(teacher, s, below) for s in run.trajectory.final]
    n = len(answers)
    committed = [a for a in answers if a.committed]
    noun = _NOUNS.get(teacher.probs.ndim, "combinations")
    starts = f"{n} start{'s' if n > 1 else ''}"
    verb = "puts" if n == 1 else "put"
    text = f"**{run.display_label}**: {len(committed)} of {starts} {verb} > {COMMITTED:.0%} on one valid answer"
    counts = Counter(cell_label(a.cell, names) for a in committed)
    if counts:
        text += " (" + ", ".join(f"{name} ×{k}" for name, k in counts.most_common()) + ")"
    masses = np.array([a.invalid_mass for a in answers])
    lo, hi = f"{masses.min():.1%}", f"{masses.max():.1%}"
    spread = lo if lo == hi else f"{lo} to {hi}"  # one number only when every start prints it
    text += f"; it puts {spread} of its mass on invalid {noun}"
    others = [a for a in answers if not a.committed]
    if others:  # name each uncommitted start's most likely answer with that answer's own mass
        masses_of: dict[str, list[float]] = {}
        for a in others:
            masses_of.setdefault(cell_label(a.cell, names), []).append(a.mass)
        parts = []
        for name, shares in sorted(masses_of.items(), key=lambda item: -len(item[1])):
            lo, hi = f"{min(shares):.0%}", f"{max(shares):.0%}"
            times = "" if n == 1 else f" ×{len(shares)}"
            parts.append(f"{name}{times} ({lo if lo == hi else f'{lo} to {hi}'})")
        lead = "the other starts' most likely answer" if committed else "each start's most likely answer"
        lead = "its most likely answer" if n == 1 else lead
        text += f"; {lead}: " + ", ".join(parts)
    return text + "."


def decoding_figure(
    sweep: DecodingSweep,
    labels: Sequence[str] | None = None,
    temperature: float | None = None,
) -> go.Figure:
    """Left: every divergence from the teacher to the decoded distribution over temperature (a
    dashed line at the current temperature); right: bars of the teacher, the distribution before
    decoding and after it at the current temperature.

    Infinite values (a filter removed a token the teacher uses, under a forward-type kind) are
    left out of the curve and named in its legend entry.

    Args:
        sweep: a :class:`~kl_core.token_lab.DecodingSweep`.
        labels: token names (default ``t1`` ...).
        temperature: the current temperature (default: the sweep's value nearest 1); the bars
            show the sweep's temperature nearest to it.

    Returns:
        A figure; traces carry ``meta``: ``{"role": "sweep", "kind", "params"}`` (y = values,
        None where infinite), ``{"role": "now", "kind"}``, ``{"role": "bars", "what"}`` with
        what in teacher / original / decoded.
    """
    if not isinstance(sweep, DecodingSweep):
        raise ValueError(f"sweep must be a DecodingSweep, got {type(sweep).__name__}")
    names = token_labels(sweep.teacher.shape, None if labels is None else [labels])[0]
    temps = sweep.temperatures
    target = 1.0 if temperature is None else float(temperature)
    j = int(np.argmin(np.abs(temps - target)))
    now = float(temps[j])
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.45, 0.55],
        horizontal_spacing=0.08,
        subplot_titles=[
            f"divergence from<br>the teacher ({sweep.transform} decoded)",
            f"next-token distribution<br>at temperature {now:g}",
        ],
    )
    for (kind, params), values in zip(sweep.objectives, sweep.values):
        color = color_for(kind)
        name = label_for(kind, dict(params))
        infinite = ~np.isfinite(values)
        legend = name + (" (∞ where a filter removed a teacher token)" if infinite.any() else "")
        y = [None if bad else float(v) for v, bad in zip(values, infinite)]
        fig.add_trace(
            go.Scatter(
                x=temps.tolist(),
                y=y,
                mode="lines",
                line=dict(color=color, width=2),
                name=legend,
                legendgroup=kind + str(params),
                hovertemplate=f"{name}<br>T=%{{x:.2f}}: %{{y:.4f}}<extra></extra>",
                meta={"role": "sweep", "kind": kind, "params": dict(params)},
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=[now],
                y=[None if infinite[j] else float(values[j])],
                mode="markers",
                marker=dict(color=color, size=9),
                showlegend=False,
                hoverinfo="skip",
                meta={"role": "now", "kind": kind},
            ),
            row=1,
            col=1,
        )
    fig.add_vline(x=now, line=dict(color=color_for("teacher"), dash="dash", width=1), row=1, col=1)
    fig.update_xaxes(title_text="temperature", row=1, col=1)
    fig.update_yaxes(title_text="divergence (nats)", rangemode="tozero", row=1, col=1)
    filters = []
    if sweep.top_k:
        filters.append(f"top-k {sweep.top_k}")
    if sweep.top_p < 1.0:
        filters.append(f"top-p {sweep.top_p:g}")
    # "before" and "decoded" differ in words, not only in punctuation ("student, T=1" vs "student at T=1")
    decoded_name = f"{sweep.transform} decoded at T={now:g}" + (f", {', '.join(filters)}" if filters else "")
    bars = [
        ("teacher", "teacher", sweep.teacher, dict(color=color_for("teacher"))),
        (
            "original",
            f"{sweep.transform} before decoding",
            sweep.original,
            dict(color=rgba(STUDENT_COLOR, 0.25), line=dict(color=STUDENT_COLOR, width=1)),
        ),
        ("decoded", decoded_name, sweep.decoded[j], dict(color=STUDENT_COLOR)),
    ]
    for what, name, probs, marker in bars:
        fig.add_trace(
            go.Bar(
                x=names,
                y=compact(probs),
                marker=marker,
                name=name,
                hovertemplate=f"{name}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
                meta={"role": "bars", "what": what},
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(title_text="probability", rangemode="tozero", row=1, col=2)
    fig.update_layout(barmode="group")
    fig.update_annotations(font_size=13)
    return style(fig, height=480, title_lines=2)


def decoding_caption(sweep: DecodingSweep, labels: Sequence[str] | None = None, temperature: float = 1.0) -> str:
    """One sentence with live numbers: the decoded distribution's top token and every divergence
    at the current temperature, and the temperature where forward and reverse KL are lowest.
    """
    names = token_labels(sweep.teacher.shape, None if labels is None else [labels])[0]
    j = int(np.argmin(np.abs(sweep.temperatures - float(temperature))))
    q = sweep.decoded[j]
    top = int(np.argmax(q))
    kept = int(np.sum(q > 0))
    parts = [
        f"At temperature {sweep.temperatures[j]:g} the decoded {sweep.transform} puts {q[top]:.0%} on "
        f"'{names[top]}' (the teacher: {sweep.teacher[top]:.0%}) and keeps {kept} of {q.size} tokens"
    ]
    values = []
    for (kind, params), row in zip(sweep.objectives, sweep.values):
        v = row[j]
        values.append(f"{label_for(kind, dict(params))} {'∞' if not np.isfinite(v) else f'{v:.3f}'}")
    text = parts[0] + "; divergences from the teacher: " + ", ".join(values) + "."
    best = []
    for (kind, params), row in zip(sweep.objectives, sweep.values):
        if kind in ("forward_kl", "reverse_kl") and np.isfinite(row).any():
            k = int(np.nanargmin(np.where(np.isfinite(row), row, np.nan)))
            best.append(f"{label_for(kind, dict(params))} at T = {sweep.temperatures[k]:g}")
    if best:
        text += " Lowest over the sweep: " + "; ".join(best) + "."
    return text
