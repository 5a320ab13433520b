"""The divergence family: one fitted student per value of a swept parameter, from covering to seeking.

Row 1 animates over the swept values (e.g. α of the α-divergence, β of the JSD): the teacher
and the best start's fitted student, coloured along the sweep from the forward-KL colour to the
reverse-KL colour. Row 2 plots, against the swept value, the fitted student's std and its
low-density mass: the continuous path from mode-covering to mode-seeking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Distribution
from kl_core.fitting import Trajectory
from kl_core.metrics import low_density_mass
from kl_core.viz.animation import CONTROLS_MARGIN, animation_controls
from kl_core.viz.colors import color_for, mix, rgba
from kl_core.viz.densities import check_1d, density_cap, teacher_area, x_range_1d
from kl_core.viz.theme import compact, style

__all__ = ["sweep_figure", "sweep_colors", "FORWARD_AT_HIGH"]

# Which end of a kind's parameter range behaves like forward KL (mode-covering):
# alpha -> 1 is forward KL and alpha <= 0 zero-forcing (Minka 2005); jsd's beta = 0 is forward KL
# and beta = 1 reverse (GKD); skew reverse KL is reverse KL at alpha = 0 and loosens as alpha grows.
FORWARD_AT_HIGH = {"alpha": True, "jsd": False, "skew_forward_kl": False, "skew_reverse_kl": True}
N_POINTS = 400
STD_COLOR = "#777777"  # row 2's neutral lines; the sweep colours sit on their markers


def sweep_colors(kind: str, values: Sequence[float]) -> list[str]:
    """One colour per swept value, from the forward-KL colour (covering end) to the reverse-KL colour.

    Examples:
        >>> sweep_colors("jsd", [0.0, 1.0])  # beta = 0 is forward KL, beta = 1 reverse KL
        ['#0072B2', '#D55E00']
    """
    v = np.asarray(values, float)
    span = float(v.max() - v.min()) if v.size else 0.0
    t = (v - v.min()) / span if span > 0 else np.zeros_like(v)
    if FORWARD_AT_HIGH.get(kind, False):
        t = 1.0 - t
    return [mix(color_for("forward_kl"), color_for("reverse_kl"), float(x)) for x in t]


def _frame_names(param: str, values: Sequence[float]) -> list[str]:
    for digits in (4, 8, 17):
        names = [f"{param}={v:.{digits}g}" for v in values]
        if len(set(names)) == len(names):
            return names
    raise ValueError(f"swept values must be distinct, got {list(values)}")


def sweep_figure(
    teacher: Distribution, fits: Sequence[tuple[float, Trajectory]], param: str, *, frame_ms: int = 400
) -> go.Figure:
    """Animate the fitted student over a swept divergence parameter, with its std and low-density mass below.

    Args:
        teacher: a 1-D Gaussian or GaussianMixture.
        fits: ``(value, trajectory)`` per swept value (sorted by value here); each trajectory's
            best start (lowest final loss) is drawn.
        param: the swept parameter's name, used in the slider and the axis (e.g. ``"alpha"``).
        frame_ms: milliseconds per swept value at 1× speed.

    Returns:
        A figure with one frame per swept value, named ``f"{param}={value:.4g}"``; the initial data
        shows the last value. Traces carry ``meta`` with their ``role``.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> fits = [(b, kc.fit(p.teacher, p.student, "jsd", steps=5, beta=b)) for b in (0.0, 1.0)]
        >>> [f.name for f in sweep_figure(p.teacher, fits, "beta").frames]
        ['beta=0', 'beta=1']
    """
    check_1d(teacher, "teacher")
    fits = sorted(((float(v), traj) for v, traj in fits), key=lambda vt: vt[0])
    if not fits:
        raise ValueError("need at least one (value, trajectory) pair")
    for v, traj in fits:
        if not isinstance(traj, Trajectory):
            raise ValueError(f"the fit at {param}={v:g} must be a Trajectory, got {type(traj).__name__}")
    values = np.array([v for v, _ in fits])
    names = _frame_names(param, values)
    best: list[Distribution] = [traj.student(traj.steps, traj.best) for _, traj in fits]
    for s in best:
        check_1d(s, "each fitted student")
    stds = np.array([np.sqrt(s.variance) for s in best])
    hallucinated = np.array([low_density_mass(teacher, s) for s in best])
    colors = sweep_colors(fits[0][1].objective, values)

    lo, hi = x_range_1d(teacher, centres=best, spreads=best)
    x = np.linspace(lo, hi, N_POINTS)
    p = teacher.prob(x)
    dens = [s.prob(x) for s in best]

    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.6, 0.4],
        vertical_spacing=0.18,  # row 1's "x" title and row 2's title each get a line
        specs=[[{}], [{"secondary_y": True}]],
        subplot_titles=["fitted student (best start) over the teacher", f"std and low-density mass against {param}"],
    )
    fig.add_trace(teacher_area(x, p), row=1, col=1)
    last = len(fits) - 1
    animated = [len(fig.data)]  # the student, then the two rings below
    fig.add_trace(
        go.Scatter(
            x=compact(x),
            y=compact(dens[last]),
            mode="lines",
            name="fitted student",
            line=dict(color=colors[last], width=3),
            fill="tozeroy",
            fillcolor=rgba(colors[last], 0.2),
            hovertemplate="x=%{x:.2f}<br>density=%{y:.3f}<extra></extra>",
            meta={"role": "student"},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=compact(values),
            y=compact(stds),
            mode="lines+markers",
            name="student std",
            line=dict(color=STD_COLOR, width=2),
            marker=dict(color=colors, size=9, line=dict(width=0)),
            hovertemplate=f"{param}=%{{x:.3g}}<br>std=%{{y:.3f}}<extra></extra>",
            meta={"role": "std"},
        ),
        row=2,
        col=1,
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=compact(values),
            y=compact(hallucinated),
            mode="lines+markers",
            name="low-density mass",
            line=dict(color=STD_COLOR, width=2, dash="dash"),
            marker=dict(color=colors, size=9, symbol="diamond", line=dict(width=0)),
            hovertemplate=f"{param}=%{{x:.3g}}<br>low-density mass=%{{y:.1%}}<extra></extra>",
            meta={"role": "low_density_mass"},
        ),
        row=2,
        col=1,
        secondary_y=True,
    )
    # rings around the current value on both curves; they move with the frames
    ring = dict(size=17, symbol="circle-open", line=dict(width=2.5))
    for role, ys, secondary in (("current_std", stds, False), ("current_low_density_mass", hallucinated, True)):
        animated.append(len(fig.data))
        fig.add_trace(
            go.Scatter(
                x=[float(values[last])],
                y=[float(ys[last])],
                mode="markers",
                marker=dict(color=colors[last], **ring),
                showlegend=False,
                hoverinfo="skip",
                meta={"role": role},
            ),
            row=2,
            col=1,
            secondary_y=secondary,
        )

    fig.update_xaxes(range=[lo, hi], title_text="x", row=1, col=1)
    fig.update_yaxes(range=[0.0, density_cap(float(p.max()), max(float(d.max()) for d in dens))], row=1, col=1)
    fig.update_yaxes(title_text="density", row=1, col=1)
    pad = 0.05 * float(values[-1] - values[0]) or 0.5
    fig.update_xaxes(range=[float(values[0]) - pad, float(values[-1]) + pad], title_text=param, row=2, col=1)
    fig.update_yaxes(title_text="student std", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(
        title_text="low-density mass",
        tickformat=".0%",
        range=[0.0, max(0.05, 1.1 * float(hallucinated.max()))],
        showgrid=False,
        row=2,
        col=1,
        secondary_y=True,
    )

    fig.frames = [
        go.Frame(
            data=[
                go.Scatter(y=compact(dens[f]), line=dict(color=colors[f]), fillcolor=rgba(colors[f], 0.2)),
                go.Scatter(x=[float(values[f])], y=[float(stds[f])], marker=dict(color=colors[f])),
                go.Scatter(x=[float(values[f])], y=[float(hallucinated[f])], marker=dict(color=colors[f])),
            ],
            traces=animated,
            name=names[f],
        )
        for f in range(len(fits))
    ]
    labels = [f"{v:.4g}" for v in values]
    fig.update_layout(**animation_controls(names, labels, prefix=f"{param} = ", frame_ms=frame_ms))
    return style(fig, height=740, bottom=CONTROLS_MARGIN)
