"""β at the endpoints: TRL's jsd and jsd_scaled against β, value and student-gradient norm, the KLs at the ends.

Row 1 draws the loss, row 2 the norm of its gradient with respect to the student's logits, both against
β ∈ (0, 1) (:class:`kl_core.beta_profile.BetaProfile`). Forward KL is marked at β = 0 and reverse KL at β = 1:
TRL's jsd falls to 0 towards both ends and jumps to the marked KL at the end itself; jsd_scaled runs into it.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.beta_profile import BETA_KINDS, BetaProfile
from kl_core.viz.colors import color_for
from kl_core.viz.theme import compact, style

__all__ = ["beta_scale_figure", "NAMES"]

NAMES = {
    "jsd": "TRL jsd: β KL(p‖m) + (1−β) KL(q‖m)",
    "jsd_scaled": "jsd_scaled: jsd / (β(1−β))",
    "forward_kl": "forward KL (jsd at β = 0)",
    "reverse_kl": "reverse KL (jsd at β = 1)",
}
_ROWS = ("loss (nats per token)", "gradient norm (student logits)")


def beta_scale_figure(profile: BetaProfile) -> go.Figure:
    """Loss and gradient norm of ``jsd`` and ``jsd_scaled`` against β, forward/reverse KL marked at β = 0 / 1.

    Returns:
        A two-row figure; traces carry ``meta`` with ``role`` (a kind or ``forward_kl``/``reverse_kl``) and
        ``row`` (0 values, 1 gradient norms).

    Examples:
        >>> from kl_core.beta_profile import beta_profile
        >>> fig = beta_scale_figure(beta_profile())
        >>> sorted({t.meta["role"] for t in fig.data})
        ['forward_kl', 'jsd', 'jsd_scaled', 'reverse_kl']
    """
    if not isinstance(profile, BetaProfile):
        raise ValueError(f"profile must be a BetaProfile (kl_core.beta_profile), got {type(profile).__name__}")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=_ROWS)
    ends = {
        "forward_kl": (0.0, profile.forward_kl, profile.forward_grad),
        "reverse_kl": (1.0, profile.reverse_kl, profile.reverse_grad),
    }
    for row, (series, label) in enumerate(((profile.values, "loss"), (profile.grad_norms, "gradient norm"))):
        for kind in BETA_KINDS:
            fig.add_trace(
                go.Scatter(
                    x=compact(profile.betas),
                    y=compact(series[kind]),
                    mode="lines",
                    line=dict(color=color_for(kind), width=2.5, dash="solid" if kind == "jsd" else "dash"),
                    name=NAMES[kind],
                    legendgroup=kind,
                    showlegend=row == 0,
                    hovertemplate=f"{kind}<br>β=%{{x:.4g}}<br>{label}=%{{y:.4g}}<extra></extra>",
                    meta={"role": kind, "row": row},
                ),
                row=row + 1,
                col=1,
            )
        for role, (beta, value, grad) in ends.items():
            fig.add_trace(
                go.Scatter(
                    x=[beta],
                    y=[value if row == 0 else grad],
                    mode="markers",
                    marker=dict(color=color_for(role), size=11, symbol="circle", line=dict(width=1, color="white")),
                    name=NAMES[role],
                    legendgroup=role,
                    showlegend=row == 0,
                    hovertemplate=f"{NAMES[role]}<br>{label}=%{{y:.4g}}<extra></extra>",
                    meta={"role": role, "row": row},
                ),
                row=row + 1,
                col=1,
            )
    fig.update_xaxes(range=[-0.04, 1.04], tickvals=[0, 0.1, 0.25, 0.5, 0.75, 0.9, 1])
    fig.update_xaxes(title_text="β (0: forward KL end, 1: reverse KL end)", row=2, col=1)
    fig.update_yaxes(rangemode="tozero")
    return style(fig, height=560, bottom=50, title_lines=1)
