"""Loss curves: the objective per step for every start of every run, and the loss axis they share."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from kl_core.viz.colors import rgba
from kl_core.viz.runs import Run, check_runs
from kl_core.viz.theme import FAINT_ALPHA, FAINT_WIDTH, compact, style

__all__ = ["loss_figure", "loss_axis", "shared_loss_axes", "log_ticks", "log_axis", "LOG_AXIS_SPAN"]

LOG_AXIS_SPAN = 30.0  # a positive loss axis turns logarithmic when max/min exceeds this


def _wants_log(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size) and float(finite.min()) > 0 and float(finite.max()) / float(finite.min()) > LOG_AXIS_SPAN


def _tick_text(v: float) -> str:
    """A tick value in full ("0.02", "500"), or as a power of ten when that is shorter ("10⁻⁶")."""
    if 1e-3 <= v < 1e5:
        return f"{v:.6g}"
    k = round(math.log10(v))
    mantissa = v / 10.0**k
    power = f"10<sup>{str(k).replace('-', '−')}</sup>"
    return power if math.isclose(mantissa, 1.0) else f"{mantissa:g}·{power}"


def log_ticks(lo: float, hi: float) -> dict:
    """Ticks of a log axis over [lo, hi] (0 < lo < hi), each written as the value it marks.

    Up to three decades: 1, 2, 5 x 10^k; wider: one power of ten per decade (every other beyond
    eight). Plotly's own log ticks write the minor ones as a bare digit ("2, 10, 5, 2, 1, 5") and
    small values in SI prefixes ("1µ"), which read as nonsense on a plot of nats.

    Examples:
        >>> log_ticks(0.3, 12)["ticktext"]
        ['0.5', '1', '2', '5', '10']
        >>> log_ticks(1e-6, 1e2)["ticktext"][:4]
        ['10<sup>−6</sup>', '10<sup>−5</sup>', '10<sup>−4</sup>', '0.001']
    """
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"log ticks need 0 < lo < hi, finite, got {lo!r}, {hi!r}")
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if last - first <= 3:
        mantissas, every = (1, 2, 5), 1
    else:
        mantissas, every = (1,), 1 if last - first <= 8 else 2
    values = [
        m * 10.0**k
        for k in range(first - 1, last + 1)
        for m in mantissas
        if lo <= m * 10.0**k <= hi * (1 + 1e-12) and (k - first) % every == 0
    ]
    if len(values) < 2:  # less than a factor 2: plain numbers, let plotly place them
        return {"tickformat": ".3~g"}
    return {"tickvals": values, "ticktext": [_tick_text(v) for v in values]}


def log_axis(values: np.ndarray, *, pad: float = 0.05) -> dict:
    """Settings of a log axis that holds every positive finite value, with :func:`log_ticks`."""
    values = np.asarray(values, float)
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return {"type": "log"}
    lo, hi = float(positive.min()), float(positive.max())
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    span = [math.log10(lo) - pad, math.log10(hi) + pad]
    return {"type": "log", "range": span, **log_ticks(10 ** span[0], 10 ** span[1])}


def loss_axis(values: np.ndarray, *, log: bool | None = None) -> dict:
    """Axis settings for losses: logarithmic when all are positive and span more than a factor 30.

    Random starts can begin tens of nats above the optimum; on a linear axis their first steps
    would flatten the plateau where the starts actually differ. ``log`` forces the type (for
    panels that must agree, see :func:`shared_loss_axes`); a log axis needs positive values and
    falls back to linear without them.
    """
    values = np.asarray(values, float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"type": "linear"}
    lo, hi = float(finite.min()), float(finite.max())
    log = _wants_log(values) if log is None else (log and lo > 0)
    if log:
        return log_axis(finite)
    pad = 0.05 * (hi - lo) or 0.05 * max(abs(hi), 1.0)
    return {"type": "linear", "range": [lo - pad, hi + pad], "tickformat": ".3~g"}


def shared_loss_axes(losses: Sequence[np.ndarray]) -> list[dict]:
    """:func:`loss_axis` for panels shown side by side: all logarithmic or all linear, each its own range.

    A log axis beside a linear one reads as if the curves had different shapes; they share the
    type (log when any panel needs it and all can have it).
    """
    arrays = [np.asarray(v, float) for v in losses]
    positive = all(float(np.nanmin(a)) > 0 for a in arrays if np.isfinite(a).any())
    log = positive and any(_wants_log(a) for a in arrays)
    return [loss_axis(a, log=log) for a in arrays]


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
                    line=dict(
                        color=run.color if first else rgba(run.color, FAINT_ALPHA), width=2.5 if first else FAINT_WIDTH
                    ),
                    hovertemplate=f"start {i}<br>step %{{x}}<br>loss=%{{y:.4f}} nats<extra></extra>",
                    meta={"role": "loss", "run": r, "start": i},
                )
            )
    all_losses = np.concatenate([run.trajectory.loss.ravel() for run in runs])
    fig.update_xaxes(title_text="step", range=[0, max(1, *(run.trajectory.steps for run in runs))])
    fig.update_yaxes(title_text="loss (nats)", **loss_axis(all_losses))
    return style(fig, height=320, bottom=50)
