"""Figures of the RL page: estimator variance and fits, the KL-regularised optimum, k1/k2/k3, PPO on a bandit.

Colours keep their roles: grey is the target (the teacher, pi*, the exact-gradient reference),
vermillion the reverse-KL student, blue the forward-KL student. The extra colours below are
mixed from those roles with ``kl_core.viz.colors.mix``: k2 is drawn in the reverse-KL colour and k3
in the forward-KL colour because, used as a loss, their gradients are those two KLs' gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.rl import (
    KL_ESTIMATORS,
    EstimatorSamples,
    EstimatorSweep,
    GradientStudy,
    PPORun,
    RegularisedFits,
    TrainingCurve,
    table_kl,
)
from kl_core.viz.animation import CONTROLS_MARGIN, animation_controls
from kl_core.viz.colors import color_for, mix, rgba
from kl_core.viz.losses import log_axis
from kl_core.viz.theme import compact, style

__all__ = [
    "RL_COLORS",
    "ESTIMATOR_LABELS",
    "variance_figure",
    "training_figure",
    "regularised_figure",
    "kl_histogram_figure",
    "kl_sweep_figure",
    "ppo_figure",
    "ppo_kl_figure",
    "regularised_rows",
]

_GREY, _REVERSE, _FORWARD = color_for("teacher"), color_for("reverse_kl"), color_for("forward_kl")
RL_COLORS: dict[str, str] = {
    "exact": _GREY,  # the reference every estimator aims at
    "pathwise": _REVERSE,
    "score": mix(_REVERSE, "#CC79A7", 0.65),  # REINFORCE: reddish purple
    "score_loo": mix(_REVERSE, "#E69F00", 0.7),  # REINFORCE with a baseline: amber
    "k1": mix(_GREY, "#CC79A7", 0.6),  # its gradient is zero in expectation
    "k2": _REVERSE,  # gradient = grad KL(S||T)
    "k3": _FORWARD,  # gradient = grad KL(T||S)
    "reference": mix(_GREY, "#000000", 0.25),
    "reward": "#888888",
}
ESTIMATOR_LABELS = {
    "exact": "exact gradient",
    "pathwise": "pathwise (reparameterisation)",
    "score": "score function (REINFORCE), no baseline",
    "score_loo": "score function, leave-one-out baseline",
}
_DASH = {"exact": "dash", "pathwise": "solid", "score": "dot", "score_loo": "dashdot"}


def variance_figure(study: GradientStudy, title: str = "") -> go.Figure:
    """Total variance of each gradient estimator against the sample size, log-log, with a 1/n guide.

    Every trace's ``meta`` is ``{"role": "variance", "estimator": name}``.
    """
    fig = go.Figure()
    n = study.sizes.astype(float)
    for e, name in enumerate(study.estimators):
        fig.add_trace(
            go.Scatter(
                x=compact(n),
                y=compact(study.variance[e]),
                mode="lines+markers",
                name=ESTIMATOR_LABELS[name],
                line=dict(color=RL_COLORS[name], dash=_DASH[name], width=2.2),
                hovertemplate="n=%{x}<br>variance=%{y:.3g}<extra></extra>",
                meta={"role": "variance", "estimator": name},
            )
        )
    anchor = float(study.variance[:, 0].min())
    fig.add_trace(
        go.Scatter(
            x=compact(n),
            y=compact(anchor * n[0] / n),
            mode="lines",
            name="∝ 1/n",
            line=dict(color=rgba(RL_COLORS["reward"], 0.6), dash="dot", width=1),
            hoverinfo="skip",
            meta={"role": "guide"},
        )
    )
    fig.update_xaxes(title_text="samples per gradient estimate (n)", **log_axis(n))
    shown = np.concatenate([study.variance.ravel(), anchor * n[0] / n])
    fig.update_yaxes(title_text="variance (sum over parameters)", **log_axis(shown))
    return _legend_below(style(fig, height=420), title or f"Estimator variance ({study.reps} repetitions per point)")


def training_figure(curves: Sequence[TrainingCurve], title: str = "") -> go.Figure:
    """KL(S||T) per Adam step for the exact gradient and each estimator (same start, same seed).

    Every trace's ``meta`` is ``{"role": "training", "estimator": name}``.
    """
    fig = go.Figure()
    for c in curves:
        fig.add_trace(
            go.Scatter(
                x=compact(np.arange(c.kl.size)),
                y=compact(c.kl),
                mode="lines",
                name=ESTIMATOR_LABELS[c.estimator],
                line=dict(color=RL_COLORS[c.estimator], dash=_DASH[c.estimator], width=2.0),
                hovertemplate="step %{x}<br>KL(S‖T)=%{y:.4f} nats<extra></extra>",
                meta={"role": "training", "estimator": c.estimator},
            )
        )
    fig.update_xaxes(title_text="Adam step")
    fig.update_yaxes(title_text="KL(S‖T) (nats, exact)", rangemode="tozero")
    return _legend_below(style(fig, height=420), title or "Training curves (same start, same seed)")


def _legend_below(fig: go.Figure, title: str) -> go.Figure:
    """Title on top, legend under the x axis: half-width figures wrap a long legend over the title."""
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left", y=0.98, yanchor="top", font=dict(size=14)),
        legend=dict(orientation="h", yanchor="top", y=-0.2, x=0.0, xanchor="left"),
        margin=dict(t=50, b=130),
    )
    return fig


def regularised_figure(fits: RegularisedFits) -> go.Figure:
    """π* and the fitted students: left the full categorical, right the two-parameter student.

    Trace ``meta`` roles: ``optimum``, ``reference``, ``reward``, ``student`` (with ``fit``).
    """
    b = fits.bandit
    x = compact(b.x)
    opt = compact(np.exp(b.log_optimum))
    ref = compact(np.exp(b.log_reference))
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=("Full categorical student (one logit per response)", "Two-parameter student (m, s)"),
        specs=[[{"secondary_y": False}, {"secondary_y": True}]],
    )
    width = float(b.x[1] - b.x[0]) * 0.8
    for col in (1, 2):
        first = col == 1
        fig.add_trace(
            go.Bar(
                x=x,
                y=opt,
                width=width,
                name=f"π* ∝ π_ref·exp(r/β), β={b.beta:g}",
                marker=dict(color=rgba(_GREY, 0.55), line=dict(color=_GREY, width=1)),
                showlegend=first,
                legendgroup="opt",
                hovertemplate="x=%{x:.2f}<br>π*=%{y:.4f}<extra></extra>",
                meta={"role": "optimum"},
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=ref,
                mode="lines",
                name="reference π_ref",
                line=dict(color=RL_COLORS["reference"], dash="dot", width=1.5),
                showlegend=first,
                legendgroup="ref",
                hovertemplate="x=%{x:.2f}<br>π_ref=%{y:.4f}<extra></extra>",
                meta={"role": "reference"},
            ),
            row=1,
            col=col,
        )
    students = [
        (
            1,
            "rl_full",
            "RL: sampled policy gradient on E[r] − β·KL(S‖π_ref)",
            fits.rl_full,
            _REVERSE,
            "circle",
            "solid",
        ),
        (1, "reverse_full", "reverse KL(S‖π*) fit", fits.reverse_full, mix(_REVERSE, "#000000", 0.3), "x", "dot"),
        (2, "rl", "RL: exact policy gradient", fits.restricted["rl"].log_probs, _REVERSE, "circle", "solid"),
        (
            2,
            "reverse_kl",
            "reverse KL(S‖π*) fit",
            fits.restricted["reverse_kl"].log_probs,
            mix(_REVERSE, "#000000", 0.3),
            "x",
            "dot",
        ),
        (
            2,
            "forward_kl",
            "forward KL(π*‖S) fit = reward-weighted regression",
            fits.restricted["forward_kl"].log_probs,
            _FORWARD,
            "diamond",
            "solid",
        ),
    ]
    shown: set[str] = set()
    for col, key, label, log_p, colour, symbol, dash in students:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=compact(np.exp(log_p)),
                mode="lines+markers",
                name=label,
                line=dict(color=colour, width=1.5, dash=dash),
                marker=dict(color=colour, symbol=symbol, size=6),
                showlegend=label not in shown,
                hovertemplate=f"{label}<br>x=%{{x:.2f}}<br>S=%{{y:.4f}}<extra></extra>",
                meta={"role": "student", "fit": key},
            ),
            row=1,
            col=col,
        )
        shown.add(label)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=compact(b.reward),
            mode="lines",
            name="reward r(x)",
            line=dict(color=rgba(RL_COLORS["reward"], 0.7), width=1, dash="dash"),
            hovertemplate="x=%{x:.2f}<br>r=%{y:.3f}<extra></extra>",
            meta={"role": "reward"},
        ),
        row=1,
        col=2,
        secondary_y=True,
    )
    fig.update_xaxes(title_text="response x")
    fig.update_yaxes(title_text="probability", row=1, col=1)
    # own round ticks (synced to the probability grid they read 0.729, 0.304, -0.121) and no zero line
    # (it crossed the panel like a probability gridline)
    fig.update_yaxes(
        title_text="reward", row=1, col=2, secondary_y=True, showgrid=False, zeroline=False, tickmode="auto", nticks=6
    )
    return style(fig, height=430, bottom=50)


def regularised_rows(fits: RegularisedFits) -> list[dict]:
    """One table row per student of :func:`regularised_figure`: its objective and both KLs to π*."""
    b = fits.bandit
    opt = b.log_optimum
    students = (
        ("π* (exact)", opt),
        ("full, RL (sampled policy gradient)", fits.rl_full),
        ("full, reverse KL to π*", fits.reverse_full),
        ("two-parameter, RL (exact policy gradient)", fits.restricted["rl"].log_probs),
        ("two-parameter, reverse KL to π*", fits.restricted["reverse_kl"].log_probs),
        ("two-parameter, forward KL to π*", fits.restricted["forward_kl"].log_probs),
    )
    return [
        {
            "student": label,
            "E[r] − β·KL(S‖π_ref)": b.objective(log_p),
            "KL(S‖π*)": table_kl(log_p, opt),
            "KL(π*‖S)": table_kl(opt, log_p),
        }
        for label, log_p in students
    ]


def kl_histogram_figure(samples: EstimatorSamples) -> go.Figure:
    """Histograms of k1, k2, k3 on the same samples, with the true KL as a vertical line.

    The x range is the central 99% of all values; traces' ``meta`` is ``{"role": "histogram", "estimator": k}``.
    """
    v = samples.values
    lo, hi = np.quantile(v, [0.005, 0.995])
    lo, hi = float(min(lo, samples.true_kl)), float(max(hi, samples.true_kl))
    span = hi - lo or 1.0
    edges = np.linspace(lo - 0.02 * span, hi + 0.02 * span, 61)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig = go.Figure()
    for k, row in zip(KL_ESTIMATORS, v):
        counts, _ = np.histogram(row, bins=edges)
        fig.add_trace(
            go.Bar(
                x=compact(centres),
                y=compact(counts / (row.size * (edges[1] - edges[0]))),
                width=float(edges[1] - edges[0]),
                name=f"{k}: mean {row.mean():.3f}, std {row.std(ddof=1):.3f}",
                marker=dict(color=rgba(RL_COLORS[k], 0.45), line=dict(color=RL_COLORS[k], width=0.5)),
                hovertemplate=f"{k}<br>value %{{x:.3f}}<br>density %{{y:.3f}}<extra></extra>",
                meta={"role": "histogram", "estimator": k},
            )
        )
    fig.add_vline(x=samples.true_kl, line=dict(color=_GREY, width=2, dash="dash"))
    fig.add_annotation(  # inside the plot, by its line: above it, a wrapped legend ran into it
        x=samples.true_kl,
        y=0.98,
        yref="paper",
        text=f"true KL = μ²/2 = {samples.true_kl:.3f}",
        showarrow=False,
        xanchor="left",
        xshift=4,
        yanchor="top",
    )
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_xaxes(title_text="per-sample estimate of KL(S‖T)")
    fig.update_yaxes(title_text="density")
    return style(fig, height=360, bottom=50)


def kl_sweep_figure(sweep: EstimatorSweep, mu: float | None = None) -> go.Figure:
    """Bias (left) and standard deviation (right, log axis) of one sample of k1/k2/k3 against μ.

    Markers are Monte Carlo, lines the closed forms. Trace ``meta``: ``{"role": "bias"|"std",
    "estimator": k, "source": "mc"|"exact"}``.
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.17,  # room for the right panel's log ticks
        subplot_titles=("bias, one sample<br>E[k] − KL", "std,<br>one sample"),
    )
    fig.update_annotations(font_size=13)  # half-width on a tablet: the two titles must fit their panels
    mus = compact(sweep.mus)
    for j, k in enumerate(KL_ESTIMATORS):
        for col, role, exact, mc in ((1, "bias", sweep.exact_bias, sweep.bias), (2, "std", sweep.exact_std, sweep.std)):
            fig.add_trace(
                go.Scatter(
                    x=mus,
                    y=compact(exact[j]),
                    mode="lines",
                    name=k,
                    legendgroup=k,
                    showlegend=col == 1,
                    line=dict(color=RL_COLORS[k], width=2),
                    hovertemplate=f"{k} (exact)<br>μ=%{{x:.2f}}<br>{role}=%{{y:.4g}}<extra></extra>",
                    meta={"role": role, "estimator": k, "source": "exact"},
                ),
                row=1,
                col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=mus,
                    y=compact(mc[j]),
                    mode="markers",
                    name=f"{k} (Monte Carlo, n={sweep.n})",
                    legendgroup=k,
                    showlegend=False,
                    marker=dict(color=RL_COLORS[k], size=5, symbol="circle-open"),
                    hovertemplate=f"{k} (Monte Carlo)<br>μ=%{{x:.2f}}<br>{role}=%{{y:.4g}}<extra></extra>",
                    meta={"role": role, "estimator": k, "source": "mc"},
                ),
                row=1,
                col=col,
            )
    if mu is not None:
        for col in (1, 2):
            fig.add_vline(x=mu, line=dict(color=_GREY, width=1, dash="dot"), row=1, col=col)
    # one x title for both panels: two copies of a long title ran into each other
    fig.add_annotation(
        text="separation μ (S = N(0,1), T = N(μ,1))",
        x=0.5,
        xref="paper",
        xanchor="center",
        y=0.0,
        yref="paper",
        yanchor="top",
        yshift=-28,
        showarrow=False,
        font=dict(size=14),
    )
    fig.update_yaxes(title_text="nats", row=1, col=1)
    fig.update_yaxes(row=1, col=2, **log_axis(np.concatenate([sweep.exact_std.ravel(), sweep.std.ravel()])))
    fig = style(fig, height=400, bottom=100)
    # the legend under the shared x title: above, it ran into the two-line panel titles at half width
    fig.update_layout(legend=dict(itemwidth=30, y=-0.25, yanchor="top"))
    return fig


def _frame_rows(n_rows: int, max_frames: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_rows - 1, min(n_rows, max_frames)).round().astype(int))


def ppo_figure(run: PPORun, *, frame_ms: int = 120, max_frames: int = 60) -> go.Figure:
    """The policy (bars) over PPO updates, animated, against π* (and the k3 fixed point when it differs).

    The initial data is the last update; frames are named ``update {u}``. Trace ``meta`` roles:
    ``policy``, ``optimum``, ``target``, ``reference``.
    """
    b = run.bandit
    x = compact(b.x)
    width = float(b.x[1] - b.x[0]) * 0.8
    rows = _frame_rows(run.probs.shape[0], max_frames)
    top = float(max(run.probs.max(), np.exp(b.log_optimum).max(), np.exp(run.target).max())) * 1.1

    def bars(u: int) -> go.Bar:
        return go.Bar(
            x=x,
            y=compact(run.probs[u]),
            width=width,
            name="policy π",
            marker=dict(color=rgba(_REVERSE, 0.6), line=dict(color=_REVERSE, width=1)),
            hovertemplate="x=%{x:.2f}<br>π=%{y:.4f}<extra></extra>",
            meta={"role": "policy"},
        )

    fig = go.Figure([bars(int(rows[-1]))])
    fig.add_trace(
        go.Scatter(
            x=x,
            y=compact(np.exp(b.log_optimum)),
            mode="lines+markers",
            name="π* (exact optimum)",
            line=dict(color=_GREY, width=2),
            marker=dict(size=5, color=_GREY),
            meta={"role": "optimum"},
            hovertemplate="x=%{x:.2f}<br>π*=%{y:.4f}<extra></extra>",
        )
    )
    if run.kl_penalty == "k3_loss":
        fig.add_trace(
            go.Scatter(
                x=x,
                y=compact(np.exp(run.target)),
                mode="lines+markers",
                name="where k3-as-loss leads: max E[r] − β·KL(π_ref‖π)",
                line=dict(color=_FORWARD, width=2, dash="dash"),
                marker=dict(size=5, color=_FORWARD, symbol="diamond"),
                meta={"role": "target"},
                hovertemplate="x=%{x:.2f}<br>%{y:.4f}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=compact(np.exp(b.log_reference)),
            mode="lines",
            name="reference π_ref",
            line=dict(color=RL_COLORS["reference"], width=1.5, dash="dot"),
            meta={"role": "reference"},
            hovertemplate="x=%{x:.2f}<br>π_ref=%{y:.4f}<extra></extra>",
        )
    )
    names = [f"update {u}" for u in rows]
    fig.frames = [go.Frame(data=[bars(int(u))], traces=[0], name=name) for u, name in zip(rows, names)]
    fig.update_layout(**animation_controls(names, [str(u) for u in rows], prefix="update ", frame_ms=frame_ms))
    fig.update_xaxes(title_text="response x")
    fig.update_yaxes(title_text="probability", range=[0, top])
    return style(fig, height=470, bottom=CONTROLS_MARGIN)


def ppo_kl_figure(run: PPORun) -> go.Figure:
    """KL(π‖π_ref), KL(π‖π*) and (for k3 as a loss) KL(π‖its fixed point) after each PPO update.

    Trace ``meta``: ``{"role": "kl", "to": "reference"|"optimum"|"target"}``.
    """
    u = compact(np.arange(run.probs.shape[0]))
    fig = go.Figure()
    series = [
        ("reference", "KL(π‖π_ref)", run.kl_reference, RL_COLORS["reference"], "dot"),
        ("optimum", "KL(π‖π*)", run.kl_optimum, _GREY, "solid"),
    ]
    if run.kl_penalty == "k3_loss":
        series.append(("target", "KL(π‖k3 fixed point)", run.kl_target, _FORWARD, "dash"))
    for key, label, y, colour, dash in series:
        fig.add_trace(
            go.Scatter(
                x=u,
                y=compact(np.maximum(y, 1e-6)),
                mode="lines",
                name=label,
                line=dict(color=colour, dash=dash, width=2),
                hovertemplate=f"update %{{x}}<br>{label}=%{{y:.4g}}<extra></extra>",
                meta={"role": "kl", "to": key},
            )
        )
    fig.update_xaxes(title_text="PPO update")
    shown = np.concatenate([np.maximum(y, 1e-6) for _, _, y, _, _ in series])
    fig.update_yaxes(title_text="nats (exact, on the table)", **log_axis(shown))
    return style(fig, height=340, bottom=50)
