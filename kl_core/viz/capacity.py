"""Student capacity: the best fitted K-component mixture per objective, one panel per (objective, K).

Columns are objectives, rows the number of student components K (objectives side by side, as in
the lab; a column per K left each panel too narrow for its note on a phone). With enough components both
directions fit every mode; below that, forward KL stretches components across modes while
reverse KL drops modes. Each panel says the final loss and how many teacher modes are covered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Distribution
from kl_core.divergences import kl_direction
from kl_core.fitting import Trajectory
from kl_core.metrics import summarize, teacher_modes
from kl_core.viz.colors import color_for, label_for, rgba
from kl_core.viz.densities import check_1d, component_densities, density_cap, teacher_area, x_range_1d
from kl_core.viz.theme import compact, style

__all__ = ["capacity_figure", "panel_note"]

NOTE_SHARE = 0.25  # the top share of a panel kept free of curves for its two-line note

N_POINTS = 300


def panel_note(teacher: Distribution, traj: Trajectory) -> str:
    """The annotation of one panel: the best final loss and the modes the best student covers.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> panel_note(p.teacher, kc.fit(p.teacher, p.student, "forward_kl", steps=300, lr=0.1))
        'KL = 0.462 nats<br>modes covered 2/2'
    """
    student = traj.student(traj.steps, traj.best)
    covered = summarize(teacher, student).n_modes_covered
    n_modes = len(teacher_modes(teacher)[1])
    # only plain KL is "KL"; other kinds are labelled by name
    name = (
        "KL"
        if kl_direction(traj.objective, traj.objective_params)
        else label_for(traj.objective, traj.objective_params)
    )
    return f"{name} = {float(traj.final_loss[traj.best]):.3f} nats<br>modes covered {covered}/{n_modes}"


def capacity_figure(teacher: Distribution, fits: Mapping[str, Sequence[tuple[int, Trajectory]]]) -> go.Figure:
    """Draw the best fitted mixture for each objective (columns) and number of components K (rows).

    Args:
        teacher: a 1-D Gaussian or GaussianMixture.
        fits: objective -> ``(K, trajectory)`` pairs; the panel shows the trajectory's best start
            (lowest final loss), its components as thin dashed lines (weighted, so they add up
            to the mixture), and the note of :func:`panel_note`.

    Returns:
        The figure; traces carry ``meta`` with ``role`` (``teacher``, ``student``, ``component``),
        ``row`` (the objective's index in ``fits``) and ``K``.
    """
    check_1d(teacher, "teacher")
    rows = list(fits)
    if not rows:
        raise ValueError("need at least one objective")
    ks = sorted({int(k) for pairs in fits.values() for k, _ in pairs})
    if not ks:
        raise ValueError("need at least one (K, trajectory) pair")
    panels: dict[tuple[int, int], Trajectory] = {}
    for r, objective in enumerate(rows):
        for k, traj in fits[objective]:
            if not isinstance(traj, Trajectory):
                raise ValueError(f"fits[{objective!r}] at K={k} must be a Trajectory, got {type(traj).__name__}")
            check_1d(traj.student(0, 0), f"the student of fits[{objective!r}] at K={k}")
            panels[r, ks.index(int(k))] = traj
    best = {rc: traj.student(traj.steps, traj.best) for rc, traj in panels.items()}

    lo, hi = x_range_1d(teacher, centres=best.values(), spreads=best.values())
    x = np.linspace(lo, hi, N_POINTS)
    p = teacher.prob(x)
    titles = []
    for r, objective in enumerate(rows):
        first = next((panels[r, c] for c in range(len(ks)) if (r, c) in panels), None)
        titles.append(label_for(first.objective, first.objective_params) if first is not None else objective)
    fig = make_subplots(
        rows=len(ks),
        cols=len(rows),
        shared_xaxes=True,
        vertical_spacing=0.06,
        horizontal_spacing=0.06,
        subplot_titles=titles + [""] * (len(rows) * (len(ks) - 1)),
    )
    highest = float(p.max())
    for r, objective in enumerate(rows):
        for c, k in enumerate(ks):
            fig.add_trace(teacher_area(x, p, showlegend=r == 0 and c == 0), row=c + 1, col=r + 1)
            if (r, c) not in panels:
                continue
            traj, student = panels[r, c], best[r, c]
            color = color_for(traj.objective)
            label = label_for(traj.objective, traj.objective_params)
            q = student.prob(x)
            highest = max(highest, float(q.max()))
            for j, comp in enumerate(component_densities(student, x) if student.n_components > 1 else []):
                fig.add_trace(
                    go.Scatter(
                        x=compact(x),
                        y=compact(comp),
                        mode="lines",
                        line=dict(color=rgba(color, 0.8), width=1, dash="dash"),
                        name=f"{label}, component {j}",
                        legendgroup=objective,
                        showlegend=False,
                        hoverinfo="skip",
                        meta={"role": "component", "row": r, "K": k, "component": j},
                    ),
                    row=c + 1,
                    col=r + 1,
                )
            fig.add_trace(
                go.Scatter(
                    x=compact(x),
                    y=compact(q),
                    mode="lines",
                    line=dict(color=color, width=2.5),
                    name=label,
                    legendgroup=objective,
                    showlegend=c == min(cc for rr, cc in panels if rr == r),
                    hovertemplate=f"{label}, K={k}<br>x=%{{x:.2f}}<br>density=%{{y:.3f}}<extra></extra>",
                    meta={"role": "student", "row": r, "K": k},
                ),
                row=c + 1,
                col=r + 1,
            )
            axis = fig.get_subplot(c + 1, r + 1)
            fig.add_annotation(
                text=panel_note(teacher, traj),
                xref=f"{axis.xaxis.plotly_name.replace('axis', '')} domain",
                yref=f"{axis.yaxis.plotly_name.replace('axis', '')} domain",
                x=0.98,
                y=0.98,
                xanchor="right",
                yanchor="top",
                align="right",
                showarrow=False,
                font=dict(size=11),
            )
    for c, k in enumerate(ks):
        fig.update_yaxes(title_text=f"K = {k}<br>density", row=c + 1, col=1)
    # the top quarter of each panel is the note's: a tall student (K = 2, reverse KL) ran into it
    fig.update_yaxes(range=[0.0, density_cap(float(p.max()), highest) / (1.0 - NOTE_SHARE)])
    fig.update_xaxes(range=[lo, hi])
    fig.update_xaxes(title_text="x", row=len(ks))
    return style(fig, height=max(320, 100 + 200 * len(ks)), bottom=50)
