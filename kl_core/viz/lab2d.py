"""The 2-D lab animation: every start's student as 1σ and 2σ ellipses over the teacher's contours.

One column per run, equal aspect. The teacher is static grey contour lines; each student (each
component of a mixture student) is drawn as the ellipses ``(x - m)^T C^-1 (x - m) = k^2`` for
k = 1, 2, whose semi-axes are ``k sqrt(eigenvalues of C)`` along the eigenvectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Distribution, Gaussian, GaussianMixture
from kl_core.viz.animation import CONTROLS_MARGIN, animation_controls
from kl_core.viz.colors import color_for, rgba
from kl_core.viz.runs import Run, check_runs, motion_steps, students_at
from kl_core.viz.theme import FAINT_ALPHA, compact, style, typed_array

__all__ = ["animation_2d", "ellipse"]

ELLIPSE_POINTS = 49  # 48 segments; a multiple of 4 puts points exactly on both axes
SIGMAS = (1.0, 2.0)  # ellipses drawn per student component
TEACHER_SPREAD = 3.0  # the view covers every teacher component +- this many stds per axis


def _check_2d(dist: Distribution, name: str) -> None:
    if not (isinstance(dist, (Gaussian, GaussianMixture)) and not dist.univariate and dist.dim == 2):
        raise ValueError(f"{name} must be a 2-D Gaussian or GaussianMixture, got {dist!r}")


def ellipse(mean: np.ndarray, cov: np.ndarray, k: float = 1.0, n: int = ELLIPSE_POINTS) -> np.ndarray:
    """Points (n, 2) on the k-sigma ellipse of N(mean, cov), closed (first point = last point).

    Examples:
        >>> pts = ellipse(np.zeros(2), np.diag([4.0, 1.0]), k=1.0, n=5)  # semi-axes sqrt(1), sqrt(4)
        >>> np.round(np.linalg.norm(pts, axis=1), 6).tolist()
        [1.0, 2.0, 1.0, 2.0, 1.0]
    """
    eigval, eigvec = np.linalg.eigh(np.asarray(cov, float))  # cov = V diag(l) V^T
    angle = np.linspace(0.0, 2.0 * np.pi, n)
    circle = np.stack([np.cos(angle), np.sin(angle)], -1)  # (n, 2)
    return np.asarray(mean, float) + k * (circle * np.sqrt(eigval)) @ eigvec.T


def _outlines(student: Distribution, k: float) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the k-sigma ellipse of every component, separated by NaN (a gap in plotly)."""
    _, means, covs = student.components()
    gap = np.full((1, 2), np.nan)
    pts = np.concatenate([np.concatenate([ellipse(m, c, k), gap]) for m, c in zip(means, covs)])[:-1]
    return pts[:, 0], pts[:, 1]


def _view(teacher: Distribution, students: Sequence[Distribution], finals: Sequence[Distribution]) -> np.ndarray:
    """A square box (2, 2) around the teacher, every student mean and the final 2σ ellipses."""
    _, mu, cov = teacher.components()
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    lo, hi = (mu - TEACHER_SPREAD * sd).min(0), (mu + TEACHER_SPREAD * sd).max(0)
    for s in students:
        m = s.components()[1]
        lo, hi = np.minimum(lo, m.min(0)), np.maximum(hi, m.max(0))
    for s in finals:
        _, m, c = s.components()
        half = SIGMAS[-1] * np.sqrt(np.diagonal(c, axis1=1, axis2=2))
        lo, hi = np.minimum(lo, (m - half).min(0)), np.maximum(hi, (m + half).max(0))
    # equal aspect: both axes get the longer side, centred on the box
    centre, half_side = (lo + hi) / 2.0, 0.525 * float((hi - lo).max())
    return np.stack([centre - half_side, centre + half_side], -1)


def animation_2d(
    teacher: Distribution,
    runs: Sequence[Run],
    *,
    n_frames: int = 50,
    grid: int = 80,
    frame_ms: int = 80,
) -> go.Figure:
    """Animate 2-D fits: each start's student as 1σ/2σ ellipses over the teacher's grey contours.

    The initial data shows the last frame; Play, Pause, speed buttons and a step slider replay
    the fit in the browser. Start 0 is drawn thicker, 2σ ellipses dotted.

    Args:
        teacher: a 2-D Gaussian or GaussianMixture.
        runs: one column per run; students must be 2-D Gaussians or mixtures.
        n_frames: at most this many frames, spread over the students' movement (:func:`motion_steps`;
            first and last step included).
        grid: points per axis of the teacher's contour grid.
        frame_ms: milliseconds per frame at 1× speed.

    Returns:
        A figure with one frame per step of :func:`motion_steps`, named by the step number.
        Student traces carry ``meta`` = ``{"role": "ellipse", "run", "start", "sigma"}``.
    """
    _check_2d(teacher, "teacher")
    runs = check_runs(runs)
    for k, run in enumerate(runs):
        _check_2d(run.trajectory.student(0, 0), f"runs[{k}]'s student")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
    steps = motion_steps(runs, n_frames)
    students = [students_at(run, steps) for run in runs]  # [run][frame][start]

    box = _view(
        teacher,
        [s for per_run in students for per_frame in per_run for s in per_frame],
        [s for per_run in students for s in per_run[-1]],
    )
    gx, gy = np.linspace(*box[0], grid), np.linspace(*box[1], grid)
    mesh = np.stack(np.meshgrid(gx, gy), -1)  # (grid, grid, 2): row i is y = gy[i]
    density = teacher.prob(mesh.reshape(-1, 2)).reshape(grid, grid)
    peak = float(density.max())
    grey = color_for("teacher")

    cols = len(runs)
    fig = make_subplots(
        rows=1,
        cols=cols,
        subplot_titles=[run.display_label for run in runs],
        horizontal_spacing=0.06 if cols > 1 else 0.0,
    )
    # outlines[run][frame][start][sigma] = (x, y)
    outlines = [
        [[[_outlines(s, k) for k in SIGMAS] for s in per_frame] for per_frame in per_run] for per_run in students
    ]
    last = len(steps) - 1
    animated: list[int] = []
    for c, run in enumerate(runs):
        col = c + 1
        fig.add_trace(
            go.Contour(
                x=compact(gx),
                y=compact(gy),
                z=compact(density),
                contours=dict(coloring="lines", start=0.05 * peak, end=0.95 * peak, size=0.15 * peak),
                colorscale=[[0.0, grey], [1.0, grey]],
                showscale=False,
                line=dict(width=1),
                name="teacher",
                legendgroup="teacher",
                showlegend=c == 0,
                hovertemplate="teacher<br>(%{x:.2f}, %{y:.2f})<br>density=%{z:.3f}<extra></extra>",
                meta={"role": "teacher"},
            ),
            row=1,
            col=col,
        )
        for i in range(run.trajectory.inits):
            for j, k in enumerate(SIGMAS):
                first = i == 0
                ex, ey = outlines[c][last][i][j]
                animated.append(len(fig.data))
                fig.add_trace(
                    go.Scatter(
                        x=compact(ex),
                        y=compact(ey),
                        mode="lines",
                        name=run.display_label if first and j == 0 else f"{run.display_label}, start {i}, {k:g}σ",
                        legendgroup=f"run{c}",
                        showlegend=first and j == 0,
                        line=dict(
                            color=run.color if first else rgba(run.color, FAINT_ALPHA),
                            width=3 if first else 1.2,
                            dash="solid" if j == 0 else "dot",
                        ),
                        hovertemplate=f"start {i}, {k:g}σ<extra></extra>",
                        meta={"role": "ellipse", "run": c, "start": i, "sigma": k},
                    ),
                    row=1,
                    col=col,
                )
        fig.update_xaxes(range=list(box[0]), title_text="x₁", constrain="domain", row=1, col=col)
        # equal aspect: one unit of y is as long as one unit of x in every panel
        fig.update_yaxes(
            range=list(box[1]),
            title_text="x₂" if c == 0 else None,
            scaleanchor=f"x{'' if c == 0 else col}",
            scaleratio=1.0,
            row=1,
            col=col,
        )

    frames = []
    for f, step in enumerate(steps):
        data = [  # plain dicts with typed-array specs: plotly neither converts nor validates them
            {"type": "scatter", "x": typed_array(ex), "y": typed_array(ey)}
            for per_run in outlines
            for per_start in per_run[f]
            for ex, ey in per_start
        ]
        frames.append({"data": data, "traces": animated, "name": str(int(step))})
    fig.frames = frames
    names = [str(int(s)) for s in steps]
    fig.update_layout(**animation_controls(names, names, prefix="step ", frame_ms=frame_ms))
    return style(fig, height=580, bottom=CONTROLS_MARGIN)
