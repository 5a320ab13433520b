"""Figures and words of the language-model lab: metric curves, mode histograms, coloured samples, a summary.

Every builder takes a :class:`kl_core.lm.showcase.Comparison` (plain values, shipped or trained
live) and returns a ``go.Figure``, HTML text or table rows. Each method has one colour: the
teacher-sampled methods (``sft``, ``forward_kl``) the forward-KL blues, the student-sampled ones
(``reverse_kl``, ``on_policy_sampled``) the reverse-KL vermillions, the mixed ones their divergence's
colour. Traces carry ``meta`` = {"role", "method", "metric"} so tests can find them.
"""

from __future__ import annotations

import html
import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.lm.showcase import Comparison, MethodRecord
from kl_core.viz.colors import color_for, mix, rgba
from kl_core.viz.theme import style

__all__ = [
    "METHOD_COLORS",
    "METHOD_NAMES",
    "PANELS",
    "method_color",
    "method_label",
    "metrics_figure",
    "modes_figure",
    "samples_html",
    "summary_rows",
    "comparison_caption",
]

METHOD_COLORS: dict[str, str] = {
    "forward_kl": color_for("forward_kl"),
    "sft": mix(color_for("forward_kl"), "#000000", 0.45),  # forward family, darker: the same objective, sampled
    "reverse_kl": color_for("reverse_kl"),
    "on_policy_sampled": mix(color_for("reverse_kl"), "#000000", 0.45),  # reverse family, darker
    "gkd": color_for("jsd"),
    "skew_forward_kl": color_for("skew_forward_kl"),
    "skew_reverse_kl": color_for("skew_reverse_kl"),
}
METHOD_NAMES: dict[str, str] = {
    "sft": "SFT (max. likelihood)",
    "forward_kl": "forward KL",
    "reverse_kl": "reverse KL (on-policy)",
    "on_policy_sampled": "on-policy, sampled tokens",
    "gkd": "GKD",
    "skew_forward_kl": "skew forward KL",
    "skew_reverse_kl": "skew reverse KL",
}
_SYMBOLS = {"beta": "β", "lam": "λ", "alpha": "α"}
# (history key, panel title)
PANELS = (
    ("forward_kl", "KL(T‖S), sequence level"),
    ("reverse_kl", "KL(S‖T), sequence level"),
    ("entropy", "Student entropy (nats/token)"),
    ("validity", "Validity (share of valid answers)"),
    ("mode_coverage", "Mode coverage"),
    ("answer_coverage", "Answer coverage"),
)


def method_color(method: str) -> str:
    """The colour of a distillation method (ValueError for an unknown one)."""
    if method not in METHOD_COLORS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHOD_COLORS)}")
    return METHOD_COLORS[method]


def method_label(method: str, params: dict[str, Any] | None = None) -> str:
    """``"GKD (β=0.5, λ=0.5)"``: the method's name and its numeric parameters."""
    method_color(method)
    shown = {k: v for k, v in (params or {}).items() if k in _SYMBOLS}
    if not shown:
        return METHOD_NAMES[method]
    return f"{METHOD_NAMES[method]} ({', '.join(f'{_SYMBOLS[k]}={v:g}' for k, v in shown.items())})"


def metric_trace(
    method: str, label: str, key: str, steps: list, y: list, error: list | None, *, first: bool
) -> go.Scatter:
    """One method's curve of one metric over training steps (error bars: its standard errors, where given); the
    legend entry on the ``first`` panel only. Shared by :func:`metrics_figure` and ``viz.lm_own``."""
    color = method_color(method)
    error_y = None if error is None else {"type": "data", "array": error, "visible": True, "color": rgba(color, 0.5)}
    return go.Scatter(
        x=steps, y=y, mode="lines+markers", name=label, legendgroup=method, showlegend=first,
        line={"color": color, "width": 2}, marker={"size": 4}, error_y=error_y,
        meta={"role": "metric", "method": method, "metric": key},
        hovertemplate=f"{label}<br>step %{{x}}<br>{key} %{{y:.4g}}<extra></extra>",
    )  # fmt: skip


def metrics_figure(comparison: Comparison) -> go.Figure:
    """The metric curves over training steps, one colour per method (2 x 3 panels, see ``PANELS``)."""
    fig = make_subplots(rows=2, cols=3, subplot_titles=[title for _, title in PANELS], horizontal_spacing=0.07)
    for name, record in comparison.methods.items():
        label = method_label(name, record.params)
        steps = list(record.history["step"])
        for i, (key, _) in enumerate(PANELS):
            y = list(record.history[key])
            se = record.history.get(f"{key}_se")
            error = list(se) if se is not None and not record.exact else None
            fig.add_trace(metric_trace(name, label, key, steps, y, error, first=i == 0), row=i // 3 + 1, col=i % 3 + 1)
    for i, (key, _) in enumerate(PANELS):
        if key in ("validity", "mode_coverage", "answer_coverage"):
            fig.update_yaxes(range=[-0.03, 1.03], row=i // 3 + 1, col=i % 3 + 1)
        else:
            fig.update_yaxes(rangemode="tozero", row=i // 3 + 1, col=i % 3 + 1)
    fig.update_xaxes(title_text="training step", row=2)
    style(fig, height=600, bottom=50)
    fig.update_layout(margin={"t": 100}, legend={"y": 1.1})
    return fig


def modes_figure(comparison: Comparison) -> go.Figure:
    """The final students' probability of each teacher mode (and of invalid answers) beside the teacher's."""
    x = [*comparison.mode_labels, "invalid (mixed)"]
    teacher_label = "teacher (language)" if comparison.settings.teacher == "neural" else "teacher"
    fig = go.Figure(
        go.Bar(
            x=x, y=[*comparison.teacher_mode_probs, 0.0], name=teacher_label, marker_color=color_for("teacher"),
            meta={"role": "teacher"}, hovertemplate="%{x}: %{y:.3f}<extra>teacher</extra>",
        )
    )  # fmt: skip
    for name, record in comparison.methods.items():
        label = method_label(name, record.params)
        fig.add_bar(
            x=x, y=[*record.mode_probs, record.invalid_prob], name=label, marker_color=method_color(name),
            meta={"role": "student", "method": name}, hovertemplate=f"%{{x}}: %{{y:.3f}}<extra>{label}</extra>",
        )  # fmt: skip
    style(fig, height=420, bottom=90)
    fig.update_layout(
        barmode="group",
        yaxis_title="probability (averaged over prompts)",
        xaxis_tickangle=-35 if len(x) > 6 else 0,
    )
    return fig


def samples_html(record: MethodRecord, limit: int = 24) -> str:
    """The record's sampled answers as HTML lines: valid ones in the method's colour (one shade per mode,
    with the mode's name), invalid ones grey and struck through (they mix modes)."""
    color = method_color(record.method)
    lines = []
    for s in record.samples[:limit]:
        text = html.escape(s.text)
        if s.mode >= 0:
            shade = mix(color, "#FFFFFF", min(0.6, 0.28 * s.mode))
            lines.append(
                f'<span style="color:{shade};font-weight:600">{text}</span> '
                f'<span style="opacity:0.7">[{html.escape(s.mode_name)}]</span>'
            )
        else:
            lines.append(f'<span style="color:{color_for("teacher")};text-decoration:line-through">{text}</span> ✗')
    body = "<br>".join(lines) if lines else "<i>no samples yet</i>"
    return f'<div style="font-family:monospace;font-size:0.85em;line-height:1.5">{body}</div>'


def _kl(record: MethodRecord, key: str) -> str:
    value = record.final(key)
    if record.exact:
        return f"{value:.3f}"
    return f"{value:.3f} ± {record.final(f'{key}_se'):.3f}"


def summary_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per method: final exact (or Monte-Carlo) KLs, validity, coverage, entropy, timing, device."""
    rows = []
    for name, r in comparison.methods.items():
        rows.append(
            {
                "method": method_label(name, r.params),
                "steps": r.steps,
                "KL(T‖S)": _kl(r, "forward_kl"),
                "KL(S‖T)": _kl(r, "reverse_kl"),
                "validity": round(r.final("validity"), 4),
                "mode coverage": round(r.final("mode_coverage"), 4),
                "entropy (nats/token)": round(r.final("entropy"), 4),
                "train time (s)": None if math.isnan(r.train_seconds) else round(r.train_seconds, 2),
                "tokens/s": None if math.isnan(r.tokens_per_s) else round(r.tokens_per_s),
                "device": r.device,
            }
        )
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def comparison_caption(comparison: Comparison) -> str:
    """One paragraph: what the curves and samples show, with the numbers of this comparison."""
    if not comparison.methods:
        return "No method has been evaluated yet."
    s = comparison.settings
    parts = []
    for name, r in comparison.methods.items():
        parts.append(
            f"**{method_label(name, r.params)}** after {r.steps} steps: {_pct(r.final('validity'))} valid answers, "
            f"{_pct(r.final('mode_coverage'))} of the teacher's modes reached, KL(T‖S) {_kl(r, 'forward_kl')} and "
            f"KL(S‖T) {_kl(r, 'reverse_kl')} nats"
        )
    memory = (
        "Here the student has context 1, a bigram model: it cannot remember which answer it started. "
        if s.context == 1
        else f"Here the student sees the last {s.context} tokens. "
    )
    text = (
        "Teacher-sampled methods (SFT, forward KL) minimise KL(T‖S): they must put mass on every answer the teacher "
        "gives, so they cover all modes, and a student too small to keep them apart blends them into answers the "
        "teacher never gives (struck through below). On-policy methods (reverse KL) minimise KL(S‖T) on the "
        "student's own answers: invalid answers cost a lot, so the student drops modes rather than mix them and "
        f"its answers stay valid. {memory}" + "; ".join(parts) + "."
    )
    by_validity = max(comparison.methods.values(), key=lambda r: r.final("validity"))
    by_coverage = max(comparison.methods.values(), key=lambda r: r.final("mode_coverage"))
    if len(comparison.methods) > 1 and by_validity is not by_coverage:
        text += (
            f" Most valid: {method_label(by_validity.method, by_validity.params)}; widest coverage: "
            f"{method_label(by_coverage.method, by_coverage.params)}."
        )
    return text
