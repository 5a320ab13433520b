"""The 2-D lab animation: every start's student as 1σ and 2σ ellipses over the teacher's contours.

One column per run, equal aspect. The teacher is static grey contour lines; each student (each
component of a mixture student) is drawn as the ellipses ``(x - m)^T C^-1 (x - m) = k^2`` for
k = 1, 2, whose semi-axes are ``k sqrt(eigenvalues of C)`` along the eigenvectors.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from kl_core.distributions import Distribution, Gaussian, GaussianMixture
from kl_core.viz.animation import CONTROLS_MARGIN, animation_controls
from kl_core.viz.colors import color_for, rgba
from kl_core.viz.lab1d import gapped, start_labels
from kl_core.viz.runs import Run, check_runs, motion_steps, students_at
from kl_core.viz.theme import FAINT_ALPHA, compact, style_layout, typed_array

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


def _components(run: Run, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(means (F, S, K, 2), covs (F, S, K, 2, 2))``: every start's student components at ``steps[f]``.

    One vectorised split of the parameters for the Gaussian family: the covariances ``L L^T`` the family's
    ``unpack`` forms, without building F x S distribution objects. A non-finite student (or another family)
    is unpacked one by one, which checks it (a ValueError, never a NaN outline).
    """
    traj = run.trajectory
    at = np.minimum(np.asarray(steps, int), traj.steps)
    if traj.family.kind == "gaussian_nd":
        _, mu, _, chol = traj.family.split(traj.params[at])
        cov = chol @ np.swapaxes(chol, -1, -2)
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
        if np.isfinite(mu).all() and np.isfinite(cov).all():
            return mu, cov
    comps = [[s.components() for s in per_frame] for per_frame in students_at(run, steps)]
    return np.array([[c[1] for c in per] for per in comps]), np.array([[c[2] for c in per] for per in comps])


def _ellipses(mu: np.ndarray, cov: np.ndarray, k: float) -> np.ndarray:
    """:func:`ellipse` of every (..., K) component at once: points (..., K, ELLIPSE_POINTS, 2)."""
    eigval, eigvec = np.linalg.eigh(cov)
    angle = np.linspace(0.0, 2.0 * np.pi, ELLIPSE_POINTS)
    circle = np.stack([np.cos(angle), np.sin(angle)], -1)  # (n, 2)
    return mu[..., None, :] + k * (circle * np.sqrt(eigval)[..., None, :]) @ np.swapaxes(eigvec, -1, -2)


def _view(teacher: Distribution, means: Sequence[np.ndarray], finals: Sequence[tuple[np.ndarray, np.ndarray]]):
    """A square box (2, 2) around the teacher, every student mean (arrays (..., 2)) and the final 2σ ellipses
    (``(means (..., 2), covs (..., 2, 2))`` per run)."""
    _, mu, cov = teacher.components()
    sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    lo, hi = (mu - TEACHER_SPREAD * sd).min(0), (mu + TEACHER_SPREAD * sd).max(0)
    for m in means:
        m = m.reshape(-1, 2)
        lo, hi = np.minimum(lo, m.min(0)), np.maximum(hi, m.max(0))
    for m, c in finals:
        m, c = m.reshape(-1, 2), c.reshape(-1, 2, 2)
        half = SIGMAS[-1] * np.sqrt(np.diagonal(c, axis1=1, axis2=2))
        lo, hi = np.minimum(lo, (m - half).min(0)), np.maximum(hi, (m + half).max(0))
    # equal aspect: both axes get the longer side, centred on the box
    centre, half_side = (lo + hi) / 2.0, 0.525 * float((hi - lo).max())
    return np.stack([centre - half_side, centre + half_side], -1)


@functools.lru_cache(maxsize=16)
def _grid_layout(cols: int, titles: tuple[str, ...]) -> dict:
    grid = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.06 if cols > 1 else 0.0)
    return grid.layout.to_plotly_json()


def _grid(cols: int, titles: tuple[str, ...]) -> dict:
    """One row of ``cols`` panels titled ``titles``: a fresh copy of a cached layout (make_subplots costs ~30 ms)."""
    return copy.deepcopy(_grid_layout(cols, titles))


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
        Student traces carry ``meta`` = ``{"role": "ellipse", "run", "sigma"}`` and ``"start": 0`` for
        start 0's bold outline, or ``"starts": [1, ..]`` for the faint trace that draws every other
        start's outlines as one line broken by NaN gaps (its ``customdata`` names each point's start):
        four student traces per run, however many starts (plotly's cost grows with the number of traces).
    """
    _check_2d(teacher, "teacher")
    runs = check_runs(runs)
    for k, run in enumerate(runs):
        _check_2d(run.trajectory.student(0, 0), f"runs[{k}]'s student")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2, got {grid!r}")
    steps = motion_steps(runs, n_frames)
    comps = [_components(run, steps) for run in runs]  # per run: means (F, S, K, 2), covs (F, S, K, 2, 2)

    box = _view(teacher, [mu for mu, _ in comps], [(mu[-1], cov[-1]) for mu, cov in comps])
    gx, gy = np.linspace(*box[0], grid), np.linspace(*box[1], grid)
    mesh = np.stack(np.meshgrid(gx, gy), -1)  # (grid, grid, 2): row i is y = gy[i]
    density = teacher.prob(mesh.reshape(-1, 2)).reshape(grid, grid)
    peak = float(density.max())
    grey = color_for("teacher")

    # lines[run][sigma] = (start 0's outlines (F, 2, K(n+1)-1), the other starts' (F, 2, (S-1)K(n+1)-1)):
    # a mixture's components and the starts are each separated by one NaN (a gap in plotly)
    lines = []
    for mu, cov in comps:
        per_sigma = []
        for k in SIGMAS:
            pts = np.moveaxis(_ellipses(mu, cov, k), -1, 2)  # (F, S, 2, K, n)
            F, S, _, K, n = pts.shape
            first = gapped(pts[:, 0])  # (F, 2, K(n+1)-1)
            rest = gapped(np.moveaxis(pts[:, 1:], 1, 2).reshape(F, 2, (S - 1) * K, n))
            per_sigma.append((first, rest))
        lines.append(per_sigma)

    cols = len(runs)
    # plotly objects cost ~10 ms per trace to build and validate: traces and frames are plain dicts
    layout = _grid(cols, tuple(run.display_label for run in runs))
    traces: list[dict] = []
    last = len(steps) - 1
    animated: list[int] = []  # the traces each frame updates, in frame data order
    for c, run in enumerate(runs):
        axes = {"xaxis": f"x{'' if c == 0 else c + 1}", "yaxis": f"y{'' if c == 0 else c + 1}"}
        traces.append(
            {
                "type": "contour",
                "x": compact(gx),
                "y": compact(gy),
                "z": compact(density),
                "contours": {"coloring": "lines", "start": 0.05 * peak, "end": 0.95 * peak, "size": 0.15 * peak},
                "colorscale": [[0.0, grey], [1.0, grey]],
                "showscale": False,
                "line": {"width": 1},
                "name": "teacher",
                "legendgroup": "teacher",
                "showlegend": c == 0,
                "hovertemplate": "teacher<br>(%{x:.2f}, %{y:.2f})<br>density=%{z:.3f}<extra></extra>",
                "meta": {"role": "teacher"},
                **axes,
            }
        )
        inits, K = run.trajectory.inits, comps[c][0].shape[2]
        for j, k in enumerate(SIGMAS):
            first, rest = lines[c][j]
            dash = "solid" if j == 0 else "dot"
            animated.append(len(traces))
            traces.append(
                {
                    "type": "scatter",
                    "x": compact(first[last, 0]),
                    "y": compact(first[last, 1]),
                    "mode": "lines",
                    "name": run.display_label if j == 0 else f"{run.display_label}, start 0, {k:g}σ",
                    "legendgroup": f"run{c}",
                    "showlegend": j == 0,
                    "line": {"color": run.color, "width": 3, "dash": dash},
                    "hovertemplate": f"start 0, {k:g}σ<extra></extra>",
                    "meta": {"role": "ellipse", "run": c, "start": 0, "sigma": k},
                    **axes,
                }
            )
            if inits > 1:
                animated.append(len(traces))
                traces.append(
                    {
                        "type": "scatter",
                        "x": compact(rest[last, 0]),
                        "y": compact(rest[last, 1]),
                        "customdata": start_labels(inits, K * (ELLIPSE_POINTS + 1) - 1),
                        "mode": "lines",
                        "name": f"{run.display_label}, other starts, {k:g}σ",
                        "legendgroup": f"run{c}",
                        "showlegend": False,
                        "line": {"color": rgba(run.color, FAINT_ALPHA), "width": 1.2, "dash": dash},
                        "hovertemplate": f"start %{{customdata}}, {k:g}σ<extra></extra>",
                        "meta": {"role": "ellipse", "run": c, "starts": list(range(1, inits)), "sigma": k},
                        **axes,
                    }
                )
        x_axis, y_axis = "xaxis" + ("" if c == 0 else str(c + 1)), "yaxis" + ("" if c == 0 else str(c + 1))
        layout[x_axis].update(range=list(box[0]), title={"text": "x₁"}, constrain="domain")
        # equal aspect: one unit of y is as long as one unit of x in every panel
        layout[y_axis].update(range=list(box[1]), scaleanchor=axes["xaxis"], scaleratio=1.0)
        if c == 0:
            layout[y_axis]["title"] = {"text": "x₂"}
        else:  # every panel has the same y range: its tick labels would stand in the panel to its left on a phone
            layout[y_axis]["showticklabels"] = False

    frames = []  # their arrays as typed-array specs: plotly neither converts nor validates them
    for f, step in enumerate(steps):
        data = []
        for c, run in enumerate(runs):
            for first, rest in lines[c]:
                data.append({"type": "scatter", "x": typed_array(first[f, 0]), "y": typed_array(first[f, 1])})
                if run.trajectory.inits > 1:
                    data.append({"type": "scatter", "x": typed_array(rest[f, 0]), "y": typed_array(rest[f, 1])})
        frames.append({"data": data, "traces": animated, "name": str(int(step))})
    names = [str(int(s)) for s in steps]
    layout.update(animation_controls(names, names, prefix="step ", frame_ms=frame_ms))
    style_layout(layout, height=580, bottom=CONTROLS_MARGIN)
    return go.Figure({"data": traces, "layout": layout, "frames": frames}, _validate=False)
