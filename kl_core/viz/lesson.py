"""The guided lesson's own figures: candidate students, token-pair bars, the RLHF identity, first frames.

The lesson reuses the lab figures (:func:`kl_core.viz.animation_1d`, ...) where they fit; what is
here draws what they do not: two fixed students scored by both KLs, a two-token answer's
probabilities (teacher vs students) animated over steps or over β, PPO with a KL penalty going
from π_ref towards π* (k1 in the reward vs k3 as a loss), and the "before" view of an animated
figure (its first frame), shown while the learner still has to predict the result.

Colours keep their roles (:mod:`kl_core.viz.colors`): grey is the teacher (or the target π*),
blue the forward-KL direction, vermillion the reverse-KL direction. The two fixed candidates of
step 1 are neither, so they share one neutral colour and differ by dash and by their labels.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Distribution
from kl_core.viz.animation import CONTROLS_MARGIN, animation_controls
from kl_core.viz.colors import color_for, rgba
from kl_core.viz.densities import check_1d, teacher_area, x_range_1d
from kl_core.viz.theme import compact, style

__all__ = ["candidates_figure", "pair_bars_figure", "rlhf_figure", "first_frame", "CANDIDATE_COLOR"]

N_POINTS = 400
CANDIDATE_COLOR = "#9467BD"  # a purple no divergence kind uses; >= 3:1 on white and on Streamlit's dark page
CANDIDATE_DASHES = ("dash", "solid", "dot", "dashdot")


def candidates_figure(
    teacher: Distribution,
    candidates: Sequence[tuple[str, Distribution]],
    divergences: Sequence[tuple[float, float]] | None = None,
) -> go.Figure:
    """Fixed students over the teacher and, optionally, each one's forward and reverse KL as bars.

    The candidates are drawn in one neutral colour (:data:`CANDIDATE_COLOR`), each with its own dash
    and its name written on the curve: blue and vermillion stay reserved for forward and reverse KL,
    which colour the bars.

    Args:
        teacher: a 1-D teacher p.
        candidates: ``(name, student q)`` per candidate (at most four).
        divergences: ``(KL(p‖q), KL(q‖p))`` per candidate; None draws the densities alone.

    Returns:
        A figure; traces carry ``meta`` ``{"role": "teacher" | "candidate" | "forward_kl" | "reverse_kl"}``.
    """
    check_1d(teacher, "teacher")
    if not 1 <= len(candidates) <= len(CANDIDATE_DASHES):
        raise ValueError(f"candidates must hold 1 to {len(CANDIDATE_DASHES)} students, got {len(candidates)}")
    for name, student in candidates:
        check_1d(student, f"candidate {name}")
    if divergences is not None and len(divergences) != len(candidates):
        raise ValueError(f"Length mismatch: {len(candidates)} candidates, {len(divergences)} divergence pairs")
    cols = 1 if divergences is None else 2
    fig = make_subplots(
        rows=1,
        cols=cols,
        column_widths=[1.0] if cols == 1 else [0.62, 0.38],
        horizontal_spacing=0.12,
        subplot_titles=["teacher p and two candidate students q"]
        + ([] if cols == 1 else ["how far each is from p, in nats"]),
    )
    lo, hi = x_range_1d(teacher, spreads=[s for _, s in candidates])
    x = np.linspace(lo, hi, N_POINTS)
    fig.add_trace(teacher_area(x, teacher.prob(x)), row=1, col=1)
    for k, (name, student) in enumerate(candidates):
        y = student.prob(x)
        peak = int(np.argmax(y))
        fig.add_annotation(
            x=float(x[peak]),
            y=float(y[peak]),
            text=name.split(":")[0],
            showarrow=False,
            yshift=12,
            font=dict(color=CANDIDATE_COLOR, size=15),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=compact(x),
                y=compact(y),
                mode="lines",
                name=name,
                line=dict(color=CANDIDATE_COLOR, width=3, dash=CANDIDATE_DASHES[k]),
                hovertemplate=f"{name}<br>x=%{{x:.2f}}<br>density=%{{y:.3f}}<extra></extra>",
                meta={"role": "candidate", "name": name},
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(title_text="x", range=[lo, hi], row=1, col=1)
    top = max(float(np.max(teacher.prob(x))), *(float(np.max(q.prob(x))) for _, q in candidates))
    fig.update_yaxes(title_text="density", range=[0, 1.15 * top], row=1, col=1)
    if divergences is not None:
        names = [name.split(":")[0] for name, _ in candidates]
        for k, (role, label) in enumerate((("forward_kl", "forward KL(p‖q)"), ("reverse_kl", "reverse KL(q‖p)"))):
            values = [float(d[k]) for d in divergences]
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=values,
                    name=label,
                    marker_color=color_for(role),
                    text=[f"{v:.2f}" for v in values],
                    textposition="outside",
                    hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}} nats<extra></extra>",
                    meta={"role": role},
                ),
                row=1,
                col=2,
            )
        kl_top = max(max(d) for d in divergences)
        fig.update_yaxes(title_text="nats", range=[0, 1.2 * kl_top], row=1, col=2)
        fig.update_layout(barmode="group")
    return style(fig, height=420)


def pair_bars_figure(
    labels: Sequence[str],
    teacher_probs: np.ndarray,
    students: Sequence[tuple[str, str, np.ndarray]],
    frame_labels: Sequence[str],
    *,
    prefix: str,
    valid: np.ndarray | None = None,
    frame_ms: int = 120,
) -> go.Figure:
    """Probabilities of every answer (e.g. token pairs): the teacher's and each student's, animated.

    Args:
        labels: the n answers' names (e.g. "New York", "New Angeles", ...).
        teacher_probs: (n,) the teacher's probabilities (static).
        students: ``(name, colour role, probs (F, n))`` per student; frame f draws row f.
        frame_labels: the F frames' labels (training steps or swept values), distinct: each frame is
            named by its label (its real step, e.g. from :func:`kl_core.viz.motion_steps`).
        prefix: the slider's prefix (e.g. ``"step "``).
        valid: optional (n,) booleans; invalid answers are marked on the axis.
        frame_ms: milliseconds per frame.

    Returns:
        A figure whose initial data is the last frame; traces carry ``meta`` ``{"role": ...}``.
    """
    teacher_probs = np.asarray(teacher_probs, float)
    n = len(labels)
    if teacher_probs.shape != (n,):
        raise ValueError(f"Shape mismatch: teacher_probs has shape {teacher_probs.shape}, expected ({n},)")
    frames = len(frame_labels)
    for name, _, probs in students:
        if np.shape(probs) != (frames, n):
            raise ValueError(f"Shape mismatch: {name} has shape {np.shape(probs)}, expected ({frames}, {n})")
    if frames == 0:
        raise ValueError("need at least one frame")
    names = [str(label) for label in frame_labels]
    if len(set(names)) != frames:
        raise ValueError(f"frame_labels must be distinct (each names its frame), got {names}")
    ticks = list(labels) if valid is None else [lab if ok else f"<i>{lab}</i> ✗" for lab, ok in zip(labels, valid)]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=ticks,
            y=compact(teacher_probs),
            name="teacher p",
            marker_color=rgba(color_for("teacher"), 0.8),
            hovertemplate="teacher<br>%{x}: %{y:.1%}<extra></extra>",
            meta={"role": "teacher"},
        )
    )
    for name, role, probs in students:
        fig.add_trace(
            go.Bar(
                x=ticks,
                y=compact(probs[-1]),
                name=name,
                marker_color=color_for(role),
                hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
                meta={"role": "student", "name": name},
            )
        )
    moving = list(range(1, 1 + len(students)))
    fig.frames = [
        go.Frame(data=[go.Bar(y=compact(probs[f])) for _, _, probs in students], traces=moving, name=names[f])
        for f in range(frames)
    ]
    top = max(float(teacher_probs.max()), max(float(np.max(p)) for _, _, p in students))
    fig.update_layout(barmode="group", yaxis=dict(title_text="probability", tickformat=".0%", range=[0, 1.05 * top]))
    controls = animation_controls(names, names, prefix=prefix, frame_ms=frame_ms)
    for button in controls["updatemenus"][0]["buttons"]:  # bars are not restyled by a redraw-free frame
        if button["args"][0] is None:
            button["args"][1]["frame"]["redraw"] = True
    for step in controls["sliders"][0]["steps"]:
        step["args"][1] = copy.deepcopy(step["args"][1])
        step["args"][1]["frame"]["redraw"] = True
    fig.update_layout(**controls)
    return style(fig, height=480, bottom=CONTROLS_MARGIN)


def rlhf_figure(runs: Sequence[tuple[str, str, object]]) -> go.Figure:
    """PPO with a KL penalty on one bandit: where each penalty takes the policy, and the RLHF objective.

    Left: the reference π_ref (dashed grey), the KL-regularised optimum π* ∝ π_ref·exp(r/β) (grey
    bars: the target), and each run's final policy. Right: each run's objective
    E_π[r] − β·KL(π‖π_ref) over the PPO updates, under its maximum β·log Z (dashed), reached only at
    π = π*: the gap is β·KL(π‖π*), which is the identity E[r] − β·KL(π‖π_ref) = β·log Z − β·KL(π‖π*).

    Args:
        runs: ``(name, colour role, run)`` per run, each a :class:`kl_core.rl.PPORun` on the same bandit.

    Returns:
        A figure; traces carry ``meta`` ``{"role": "reference" | "optimum" | "policy" | "objective" | "bound"}``.
    """
    if not runs:
        raise ValueError("runs must hold at least one PPO run")
    bandit = runs[0][2].bandit
    for name, _, run in runs:
        if run.bandit.x.shape != bandit.x.shape or not np.allclose(run.bandit.log_reference, bandit.log_reference):
            raise ValueError(f"run {name!r} is on a different bandit than {runs[0][0]!r}")
    x = bandit.x
    grey = color_for("teacher")
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.55, 0.45],
        horizontal_spacing=0.12,
        subplot_titles=["π_ref → π*: where each penalty takes the policy", "E[r] − β·KL(π‖π_ref) during PPO"],
    )
    fig.add_trace(
        go.Bar(
            x=compact(x),
            y=compact(np.exp(bandit.log_optimum)),
            name="π* ∝ π_ref·exp(r/β), the target",
            marker_color=rgba(grey, 0.55),
            hovertemplate="π*<br>x=%{x:.2f}: %{y:.3f}<extra></extra>",
            meta={"role": "optimum"},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=compact(x),
            y=compact(np.exp(bandit.log_reference)),
            mode="lines",
            name="π_ref, the start",
            line=dict(color=grey, width=2, dash="dash"),
            hovertemplate="π_ref<br>x=%{x:.2f}: %{y:.3f}<extra></extra>",
            meta={"role": "reference"},
        ),
        row=1,
        col=1,
    )
    for name, role, run in runs:
        fig.add_trace(
            go.Scatter(
                x=compact(x),
                y=compact(run.probs[-1]),
                mode="lines+markers",
                name=name,
                line=dict(color=color_for(role), width=3),
                marker=dict(size=5),
                hovertemplate=f"{name}<br>x=%{{x:.2f}}: %{{y:.3f}}<extra></extra>",
                meta={"role": "policy", "name": name},
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=compact(np.arange(len(run.objective))),
                y=compact(run.objective),
                mode="lines",
                name=name,
                showlegend=False,
                line=dict(color=color_for(role), width=3),
                hovertemplate=f"{name}<br>update %{{x}}: %{{y:.4f}}<extra></extra>",
                meta={"role": "objective", "name": name},
            ),
            row=1,
            col=2,
        )
    bound = bandit.beta * bandit.log_normaliser
    updates = max(len(run.objective) for _, _, run in runs) - 1
    fig.add_trace(
        go.Scatter(
            x=[0, updates],
            y=[bound, bound],
            mode="lines",
            name="β·log Z, the maximum (at π = π*)",
            line=dict(color=grey, width=2, dash="dash"),
            hovertemplate="β·log Z = %{y:.4f}<extra></extra>",
            meta={"role": "bound"},
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(title_text="response x", row=1, col=1)
    fig.update_yaxes(title_text="probability", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="PPO update", range=[0, updates], row=1, col=2)
    fig.update_yaxes(title_text="nats", row=1, col=2)
    fig.update_layout(barmode="overlay")
    style(fig, height=500, bottom=130)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0))  # below the plots
    return fig


def first_frame(fig: go.Figure, *, keep_controls: bool = True) -> go.Figure:
    """A copy of an animated figure that shows its first frame (the start) instead of its last.

    With ``keep_controls`` the frames, Play button and slider stay (the slider set to the first
    frame): pressing Play runs the animation from the start. Without, it is a still picture of
    the starting point. A figure without frames is returned as a copy, unchanged.
    """
    spec = fig.to_dict()  # plain dicts: copying hundreds of traces through plotly's validators takes ~1 s
    frames = spec.get("frames") or []
    if frames:
        start = frames[0]
        indices = start.get("traces", range(len(start["data"])))
        for index, update in zip(indices, start["data"]):
            spec["data"][index].update({k: v for k, v in update.items() if k != "type"})
        layout = spec.setdefault("layout", {})
        if keep_controls:
            for slider in layout.get("sliders", [])[:1]:
                slider["active"] = 0
        else:
            spec["frames"] = []
            layout.update(sliders=[], updatemenus=[])
            layout.setdefault("margin", {})["b"] = 40
    return go.Figure(spec, _validate=False)
