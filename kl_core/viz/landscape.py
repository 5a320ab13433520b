"""Loss landscapes: the objective over a Gaussian student's (mean, log std), its minima and the fits' paths.

One column per :class:`kl_core.Landscape`: a heatmap, contour lines, every local minimum (global:
star, local: diamond) and, optionally, each start's optimisation path (open circle at its start,
cross at its end). The colour is logarithmic in the height above the landscape's minimum
(clipped at the 95th percentile): forward KL climbs to ~100 nats at small std, and a linear scale
would paint the whole basin one colour. The colour bar is labelled in nats, the hover gives the
exact value, and the axes widen to hold every path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.landscape import Landscape
from kl_core.viz.colors import label_for, rgba
from kl_core.viz.runs import Run, frame_steps
from kl_core.viz.theme import FAINT_ALPHA, FAINT_WIDTH, compact, style

__all__ = ["landscape_figure", "clipped_values", "colour_values", "CLIP_PERCENTILE", "LOG_FLOOR", "MAX_PATH_POINTS"]

CLIP_PERCENTILE = 95.0  # the colour scale stops here; higher values show as the top colour
MAX_PATH_POINTS = 200  # each path is downsampled to at most this many points
MIN_TICK_GAP = 0.6  # decades between colour-bar ticks (closer labels would overlap on a phone-wide bar)
COLORBAR_Y = -0.2  # the colour bars' top, in the plot area's height below its bottom (under the x titles)
LOG_FLOOR = 0.05  # nats: the colour is log10(value - minimum + LOG_FLOOR), so the minimum itself is finite
COLORSCALE = "Viridis"  # perceptually uniform and colour-blind safe
MINIMUM_COLOR = "#F0E442"  # Okabe–Ito yellow: stands out on viridis's dark basins
OUTLINE = "#333333"
CONTOUR_COLOR = "rgba(235,235,235,0.45)"
N_CONTOURS = 14


def clipped_values(land: Landscape) -> np.ndarray:
    """``land.values`` clipped above at their 95th percentile (non-finite values set to that cap)."""
    values = np.asarray(land.values, float)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(f"the {land.objective} landscape has no finite value")
    cap = float(np.percentile(finite, CLIP_PERCENTILE))
    return np.where(np.isfinite(values), np.minimum(values, cap), cap)


def colour_values(land: Landscape) -> tuple[np.ndarray, dict]:
    """The heatmap's colour values, ``log10(clipped - min + LOG_FLOOR)``, and its colour bar's ticks in nats.

    Ticks sit at 1, 2, 5 x 10^k nats between the minimum and the clip, plus the minimum itself,
    each written as the value it marks (the bar is log-spaced, its labels are not logs).
    """
    clipped = clipped_values(land)
    low, high = float(clipped.min()), float(clipped.max())
    z = np.log10(clipped - low + LOG_FLOOR)

    def position(v: float) -> float:
        return float(np.log10(v - low + LOG_FLOOR))

    values = [low]  # then 1, 2, 5 x 10^k, each at least MIN_TICK_GAP decades above the one before
    for v in (m * 10.0**k for k in range(-2, 5) for m in (1, 2, 5)):
        if low < v <= high and position(v) - position(values[-1]) >= MIN_TICK_GAP:
            values.append(v)
    ticks = {
        "tickvals": [position(v) for v in values],
        "ticktext": [f"{low:.2f} (min)", *(f"{v:g}" for v in values[1:])],
    }
    return z, ticks


def _path_rows(run: Run) -> np.ndarray:
    """Rows of the trajectory kept for the paths: at most 200, first and last included."""
    names = run.trajectory.param_names
    if names != ["mean", "log_std"]:
        raise ValueError(f"paths need a 1-D Gaussian student (parameters mean, log_std), got {names}")
    return frame_steps(run.trajectory.steps, MAX_PATH_POINTS)


def landscape_figure(landscapes: Sequence[Landscape], runs: Sequence[Run | None] | None = None) -> go.Figure:
    """Draw each landscape as a heatmap over (mean, log std) with contours, minima and optional paths.

    Args:
        landscapes: one column each (from :func:`kl_core.landscape`).
        runs: optional, one per landscape (or None): every start's path of ``runs[i]`` is drawn
            over ``landscapes[i]``, with a hollow circle at its start and a cross at its end.

    Returns:
        The figure. Traces carry ``meta`` with ``role`` (``heatmap``, ``contours``, ``minima``,
        ``path``, ``path_start``, ``path_end``) and ``column``.

    Examples:
        >>> import kl_core as kc
        >>> t = kc.get_preset("bimodal").teacher
        >>> fig = landscape_figure([kc.landscape(t, "reverse_kl", n=40)])
        >>> fig.layout.annotations[0].text
        'reverse KL'
    """
    landscapes = list(landscapes)
    if not landscapes:
        raise ValueError("need at least one landscape")
    runs = [None] * len(landscapes) if runs is None else list(runs)
    if len(runs) != len(landscapes):
        raise ValueError(f"Length mismatch: {len(landscapes)} landscapes, {len(runs)} runs")

    cols = len(landscapes)
    spacing = 0.1 if cols > 1 else 0.0
    fig = make_subplots(
        rows=1,
        cols=cols,
        subplot_titles=[label_for(land.objective, land.objective_params) for land in landscapes],
        horizontal_spacing=spacing,
    )
    for c, (land, run) in enumerate(zip(landscapes, runs)):
        col = c + 1
        z, ticks = colour_values(land)
        means, log_stds = compact(land.means), compact(land.log_stds)
        # each column's colour bar lies under its own panel, as wide as it: beside the panel it ran into the
        # next panel's tick labels on a phone (the figure cannot know the width it will be drawn at)
        domain = fig.get_subplot(1, col).xaxis.domain
        fig.add_trace(
            go.Heatmap(
                x=means,
                y=log_stds,
                z=compact(z),
                colorscale=COLORSCALE,
                customdata=compact(np.asarray(land.values, float)),
                colorbar=dict(
                    title=dict(text="nats (log)", side="top"),
                    orientation="h",
                    x=(domain[0] + domain[1]) / 2,
                    xanchor="center",
                    len=domain[1] - domain[0],
                    y=COLORBAR_Y,
                    yanchor="top",
                    thickness=10,
                    **ticks,
                ),
                hovertemplate="mean=%{x:.2f}<br>log std=%{y:.2f}<br>value=%{customdata:.3f} nats<extra></extra>",
                name=f"{label_for(land.objective, land.objective_params)} landscape",
                showlegend=False,
                meta={"role": "heatmap", "column": c},
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Contour(
                x=means,
                y=log_stds,
                z=compact(z),
                contours=dict(coloring="lines", showlabels=False),
                ncontours=N_CONTOURS,
                colorscale=[[0.0, CONTOUR_COLOR], [1.0, CONTOUR_COLOR]],
                line=dict(width=0.8),
                showscale=False,
                hoverinfo="skip",
                showlegend=False,
                meta={"role": "contours", "column": c},
            ),
            row=1,
            col=col,
        )
        if run is not None:
            _add_paths(fig, run, c)
        if land.minima:
            fig.add_trace(
                go.Scatter(
                    x=[m.mean for m in land.minima],
                    y=[m.log_std for m in land.minima],
                    mode="markers",
                    marker=dict(
                        # a diamond, not a circle: open circles mark the paths' starts
                        symbol=["star" if m.is_global else "diamond" for m in land.minima],
                        size=[16 if m.is_global else 11 for m in land.minima],
                        color=MINIMUM_COLOR,
                        line=dict(color=OUTLINE, width=1),
                    ),
                    hovertext=[
                        f"{'global' if m.is_global else 'local'} minimum<br>mean {m.mean:.3f}, std {m.std:.3f}"
                        f"<br>value {m.value:.4f} nats"
                        for m in land.minima
                    ],
                    hoverinfo="text",
                    name="minima (★ global, ◆ local)",
                    legendgroup="minima",
                    showlegend=c == 0,
                    meta={"role": "minima", "column": c},
                ),
                row=1,
                col=col,
            )
        x_range, y_range = _ranges(land, run)
        fig.update_xaxes(range=x_range, title_text="mean", row=1, col=col)
        fig.update_yaxes(
            range=y_range,
            title_text="log std" if c == 0 else None,
            row=1,
            col=col,
        )
    fig = style(fig, height=540, bottom=130)
    # room for the colour bars under the x titles; the legend a line above the panel titles, not on them
    fig.update_layout(margin=dict(r=30, t=95), legend=dict(y=1.14))
    return fig


def _ranges(land: Landscape, run: Run | None) -> tuple[list[float], list[float]]:
    """The panel's (mean, log std) ranges: the landscape's grid, widened to hold every path (plus 3% air)."""
    xs, ys = [float(land.means[0]), float(land.means[-1])], [float(land.log_stds[0]), float(land.log_stds[-1])]
    if run is None:
        return xs, ys
    params = run.trajectory.params[..., :2]  # (steps + 1, inits, 2)
    out = []
    for (lo, hi), values in ((xs, params[..., 0]), (ys, params[..., 1])):
        finite = values[np.isfinite(values)]
        p_lo, p_hi = float(finite.min()), float(finite.max())
        if p_lo < lo or p_hi > hi:
            pad = 0.03 * (max(hi, p_hi) - min(lo, p_lo))
            lo, hi = min(lo, p_lo - pad), max(hi, p_hi + pad)
        out.append([lo, hi])
    return out[0], out[1]


def _add_paths(fig: go.Figure, run: Run, c: int) -> None:
    """Every start's (mean, log std) path of ``run`` into column ``c``, start 0 thicker."""
    rows = _path_rows(run)
    params = run.trajectory.params  # (steps + 1, inits, 2): mean, log std
    group = f"run{c}"
    for i in range(run.trajectory.inits):
        first = i == 0
        fig.add_trace(
            go.Scatter(
                x=compact(params[rows, i, 0]),
                y=compact(params[rows, i, 1]),
                mode="lines",
                line=dict(
                    color=run.color if first else rgba(run.color, FAINT_ALPHA), width=2.5 if first else FAINT_WIDTH
                ),
                name=run.display_label if first else f"{run.display_label}, start {i}",
                legendgroup=group,
                showlegend=first,
                hovertemplate=f"start {i}<br>mean=%{{x:.2f}}<br>log std=%{{y:.2f}}<extra></extra>",
                meta={"role": "path", "column": c, "start": i},
            ),
            row=1,
            col=c + 1,
        )
    for role, row, symbol in (("path_start", 0, "circle-open"), ("path_end", -1, "x")):
        where = "start" if row == 0 else "end"
        fig.add_trace(
            go.Scatter(
                x=compact(params[row, :, 0]),
                y=compact(params[row, :, 1]),
                mode="markers",
                marker=dict(symbol=symbol, size=9, color=run.color, line=dict(width=2, color=run.color)),
                name=f"{where} ({'○' if row == 0 else '×'})",
                legendgroup=role,
                showlegend=c == 0,
                hovertemplate=f"{where}<br>mean=%{{x:.2f}}<br>log std=%{{y:.2f}}<extra></extra>",
                meta={"role": role, "column": c},
            ),
            row=1,
            col=c + 1,
        )
