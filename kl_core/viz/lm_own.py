"""The metric curves of a distillation on your own models (``kl_core.lm.hf_distill``), as the LM lab draws them.

    fig = own_metrics_figure({name: [e.as_dict() for e in r.history] for name, r in results.items()})

Six panels over training steps, one colour per method (the lab's colours): the Monte-Carlo sequence KLs
with their standard errors as error bars, the teacher's log-likelihood per token of the student's answers,
validity, distinct-2 and the student's entropy per token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.viz.lm import method_label, metric_trace
from kl_core.viz.theme import style

__all__ = ["OWN_PANELS", "own_metrics_figure"]

OWN_PANELS = (
    ("forward_kl", "KL(T‖S), sequence level (MC)"),
    ("reverse_kl", "KL(S‖T), sequence level (MC)"),
    ("teacher_loglik", "Teacher log-likelihood / token"),
    ("validity", "Validity (vs the teacher's own answers)"),
    ("ngram_diversity", "Distinct-2 of the answers"),
    ("entropy", "Student entropy (nats/token)"),
)


def own_metrics_figure(
    histories: Mapping[str, Sequence[Mapping[str, Any]]], params: Mapping[str, Mapping[str, Any]] | None = None
) -> go.Figure:
    """Curves of every method's evaluation records (``OpenEvaluation.as_dict()``), 2 x 3 panels (``OWN_PANELS``)."""
    fig = make_subplots(rows=2, cols=3, subplot_titles=[t for _, t in OWN_PANELS], horizontal_spacing=0.07)
    for name, records in histories.items():
        label = method_label(name, (params or {}).get(name))
        steps = [int(r["step"]) for r in records]
        for i, (key, _) in enumerate(OWN_PANELS):
            y = [float(r[key]) for r in records]
            has_se = f"{key}_se" in (records[0] if records else {})
            error = [float(r[f"{key}_se"]) for r in records] if has_se else None
            fig.add_trace(metric_trace(name, label, key, steps, y, error, first=i == 0), row=i // 3 + 1, col=i % 3 + 1)
    for i, (key, _) in enumerate(OWN_PANELS):
        if key in ("validity", "ngram_diversity"):
            fig.update_yaxes(range=[-0.03, 1.03], row=i // 3 + 1, col=i % 3 + 1)
        elif key != "teacher_loglik":
            fig.update_yaxes(rangemode="tozero", row=i // 3 + 1, col=i % 3 + 1)
    fig.update_xaxes(title_text="training step", row=2)
    style(fig, height=600, bottom=50)
    fig.update_layout(margin={"t": 100}, legend={"y": 1.1})
    return fig
