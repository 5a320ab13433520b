"""β at the endpoints: TRL's jsd and jsd_scaled against β, value and student-gradient norm, the KLs at the ends.

Row 1 draws the loss, row 2 the norm of its gradient with respect to the student's logits, both against
β ∈ (0, 1) (:class:`kl_core.beta_profile.BetaProfile`). Forward KL is marked at β = 0 and reverse KL at β = 1:
TRL's jsd falls to 0 towards both ends (open circles) and jumps to the marked KL at the end itself; jsd_scaled
runs into it.
"""

from __future__ import annotations

import copy
import functools

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.beta_profile import BETA_KINDS, BetaProfile
from kl_core.viz.colors import color_for
from kl_core.viz.theme import style_layout, typed_array

__all__ = ["beta_scale_figure", "NAMES"]

NAMES = {
    "jsd": "TRL jsd",
    "jsd_scaled": "jsd_scaled = jsd / β(1−β)",
    "forward_kl": "forward KL (jsd at β = 0)",
    "reverse_kl": "reverse KL (jsd at β = 1)",
    "jsd_limit": "jsd → 0 as β → 0, 1",
}
_ROWS = ("loss (nats per token)", "gradient norm (student logits)")


@functools.lru_cache(maxsize=1)
def _grid_layout() -> dict:
    """The two-row layout of make_subplots (~30 ms), computed once; callers get a deep copy."""
    grid = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12, subplot_titles=_ROWS)
    return grid.layout.to_plotly_json()


def _trace(x, y, role: str, row: int, **spec) -> dict:
    axes = {"xaxis": "x" if row == 0 else "x2", "yaxis": "y" if row == 0 else "y2"}
    return {"type": "scatter", "x": x, "y": y, "meta": {"role": role, "row": row}, **axes, **spec}


def beta_scale_figure(profile: BetaProfile) -> go.Figure:
    """Loss and gradient norm of ``jsd`` and ``jsd_scaled`` against β, forward/reverse KL marked at β = 0 / 1.

    Built as a plain spec (plotly neither converts nor validates it: a few ms instead of ~200).

    Returns:
        A two-row figure; traces carry ``meta`` with ``role`` (a kind, ``forward_kl``/``reverse_kl`` for the end
        markers, ``jsd_limit`` for jsd's limit 0 at both ends) and ``row`` (0 values, 1 gradient norms).

    Examples:
        >>> from kl_core.beta_profile import beta_profile
        >>> fig = beta_scale_figure(beta_profile())
        >>> sorted({t.meta["role"] for t in fig.data})
        ['forward_kl', 'jsd', 'jsd_limit', 'jsd_scaled', 'reverse_kl']
    """
    if not isinstance(profile, BetaProfile):
        raise ValueError(f"profile must be a BetaProfile (kl_core.beta_profile), got {type(profile).__name__}")
    layout = copy.deepcopy(_grid_layout())
    rows = (
        ("loss", profile.values, {"forward_kl": profile.forward_kl, "reverse_kl": profile.reverse_kl}),
        ("gradient norm", profile.grad_norms, {"forward_kl": profile.forward_grad, "reverse_kl": profile.reverse_grad}),
    )
    betas = typed_array(profile.betas)
    traces = []
    for row, (label, series, ends) in enumerate(rows):
        legend = row == 0
        for kind in BETA_KINDS:
            traces.append(
                _trace(
                    betas,
                    typed_array(series[kind]),
                    kind,
                    row,
                    mode="lines",
                    line={"color": color_for(kind), "width": 2.5, "dash": "solid" if kind == "jsd" else "dash"},
                    name=NAMES[kind],
                    legendgroup=kind,
                    showlegend=legend,
                    hovertemplate=f"{kind}<br>β=%{{x:.4g}}<br>{label}=%{{y:.4g}}<extra></extra>",
                )
            )
        for role, value in ends.items():
            traces.append(
                _trace(
                    [0.0 if role == "forward_kl" else 1.0],
                    [value],
                    role,
                    row,
                    mode="markers",
                    marker={"color": color_for(role), "size": 11, "line": {"width": 1, "color": "white"}},
                    name=NAMES[role],
                    legendgroup=role,
                    showlegend=legend,
                    hovertemplate=f"{NAMES[role]}<br>{label}=%{{y:.4g}}<extra></extra>",
                )
            )
        # open circles where jsd's curve runs (0): the value at the end itself is the KL above it, the jump
        traces.append(
            _trace(
                [0.0, 1.0],
                [0.0, 0.0],
                "jsd_limit",
                row,
                mode="markers",
                marker={"color": color_for("jsd"), "size": 10, "symbol": "circle-open", "line": {"width": 2}},
                name=NAMES["jsd_limit"],
                legendgroup="jsd_limit",
                showlegend=legend,
                hovertemplate=f"jsd as β → %{{x:.0f}}: {label} → 0<extra></extra>",
            )
        )
        top = max(*ends.values(), *(float(series[kind].max()) for kind in BETA_KINDS))
        axis = "yaxis" if row == 0 else "yaxis2"
        layout[axis]["range"] = [-0.05 * top, 1.08 * top]  # room for the markers at 0 and at the top
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(range=[-0.04, 1.04], tickvals=[0, 0.1, 0.25, 0.5, 0.75, 0.9, 1])
    layout["xaxis2"]["title"] = {"text": "β (0: forward KL end, 1: reverse KL end)"}
    style_layout(layout, height=560, bottom=50)
    return go.Figure({"data": traces, "layout": layout}, _validate=False)
