"""Loss curves: the objective per step for every start of every run, and the loss axis they share."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from kl_core.viz.colors import rgba
from kl_core.viz.runs import Run, check_runs
from kl_core.viz.theme import compact, style

__all__ = ["loss_figure", "loss_axis", "LOG_AXIS_SPAN"]

LOG_AXIS_SPAN = 30.0  # a positive loss axis turns logarithmic when max/min exceeds this


def loss_axis(values: np.ndarray) -> dict:
    """Axis settings for losses: logarithmic when all are positive and span more than a factor 30.

    Random starts can begin tens of nats above the optimum; on a linear axis their first steps
    would flatten the plateau where the starts actually differ.
    """
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"type": "linear"}
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0 and hi / lo > LOG_AXIS_SPAN:
        return {"type": "log", "range": [math.log10(lo) - 0.05, math.log10(hi) + 0.05]}
    pad = 0.05 * (hi - lo) or 0.05 * max(abs(hi), 1.0)
    return {"type": "linear", "range": [lo - pad, hi + pad]}


def loss_figure(runs: Sequence[Run]) -> go.Figure:
    """Draw the loss per step of every start of every run in one panel (start 0 thicker).

    Args:
        runs: the fits; each run gets its role colour and one legend entry.

    Returns:
        The figure; each trace's ``meta`` is ``{"role": "loss", "run": r, "start": i}``.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "forward_kl", steps=10, inits=3)
        >>> len(loss_figure([Run("forward_kl", {}, traj)]).data)
        3
    """
    runs = check_runs(runs)
    fig = go.Figure()
    for r, run in enumerate(runs):
        traj = run.trajectory
        step_axis = compact(np.arange(traj.steps + 1))
        for i in range(traj.inits):
            first = i == 0
            fig.add_trace(
                go.Scatter(
                    x=step_axis,
                    y=compact(traj.loss[:, i]),
                    mode="lines",
                    name=run.display_label if first else f"{run.display_label}, start {i}",
                    legendgroup=f"run{r}",
                    showlegend=first,
                    line=dict(color=run.color if first else rgba(run.color, 0.45), width=2.5 if first else 1.2),
                    hovertemplate=f"start {i}<br>step %{{x}}<br>loss=%{{y:.4f}} nats<extra></extra>",
                    meta={"role": "loss", "run": r, "start": i},
                )
            )
    all_losses = np.concatenate([run.trajectory.loss.ravel() for run in runs])
    fig.update_xaxes(title_text="step", range=[0, max(1, *(run.trajectory.steps for run in runs))])
    fig.update_yaxes(title_text="loss (nats)", **loss_axis(all_losses))
    return style(fig, height=320, bottom=50)
