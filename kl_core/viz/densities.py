"""1-D density curves: the x grid that frames a teacher and its students, the teacher's grey area, and a y cap.

Shared by every 1-D figure (the lab animation, the divergence-family sweep, the capacity grid)
so the teacher looks the same in all of them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go

from kl_core.distributions import Distribution, Gaussian, GaussianMixture
from kl_core.viz.colors import color_for, rgba
from kl_core.viz.theme import compact

__all__ = ["check_1d", "x_range_1d", "teacher_area", "density_cap", "component_densities"]

TEACHER_SPREAD = 4.0  # the x grid covers every teacher component +- this many stds
STUDENT_SPREAD = 3.0  # ... and every final student component +- this many stds
HEADROOM = 1.05  # the density axis reaches 5% above the highest curve


def check_1d(dist: Distribution, name: str) -> None:
    """Raise unless ``dist`` is a 1-D Gaussian or GaussianMixture."""
    if not (isinstance(dist, (Gaussian, GaussianMixture)) and dist.univariate):
        raise ValueError(f"{name} must be a 1-D Gaussian or GaussianMixture, got {dist!r}")


def x_range_1d(
    teacher: Distribution,
    centres: Iterable[Distribution] = (),
    spreads: Iterable[Distribution] = (),
    *,
    means: np.ndarray | None = None,
    final: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, float]:
    """An x interval showing the teacher, the component means of ``centres`` and the bulk of ``spreads``.

    Args:
        teacher: a 1-D teacher; each component is shown +- 4 stds.
        centres: students whose component means must be in view (e.g. every frame's student).
        spreads: students shown +- 3 stds per component (e.g. the final students, tails included).
        means: component means to keep in view, as an array (the same as ``centres``, without
            building a distribution per student).
        final: ``(means, stds)`` arrays of components shown +- 3 stds (the same as ``spreads``).
    """
    _, mu, cov = teacher.components()
    sd = np.sqrt(cov[:, 0, 0])
    lo, hi = float((mu[:, 0] - TEACHER_SPREAD * sd).min()), float((mu[:, 0] + TEACHER_SPREAD * sd).max())
    centre_means = [s.components()[1][:, 0] for s in centres]
    spread_parts = [(c[1][:, 0], np.sqrt(c[2][:, 0, 0])) for c in (s.components() for s in spreads)]
    if means is not None:
        centre_means.append(np.asarray(means, float).ravel())
    if final is not None:
        spread_parts.append((np.asarray(final[0], float).ravel(), np.asarray(final[1], float).ravel()))
    for m in centre_means:
        if m.size:
            lo, hi = min(lo, float(m.min())), max(hi, float(m.max()))
    for m, s in spread_parts:
        if m.size:
            half = STUDENT_SPREAD * s
            lo, hi = min(lo, float((m - half).min())), max(hi, float((m + half).max()))
    return lo, hi


def teacher_area(x: np.ndarray, density: np.ndarray, *, showlegend: bool = True, **kwargs) -> go.Scatter:
    """The teacher density as a filled grey area (static in every animation)."""
    grey = color_for("teacher")
    return go.Scatter(
        x=compact(x),
        y=compact(density),
        name="teacher",
        legendgroup="teacher",
        showlegend=showlegend,
        mode="lines",
        line=dict(color=grey, width=1.5),
        fill="tozeroy",
        fillcolor=rgba(grey, 0.35),
        hovertemplate="teacher<br>x=%{x:.2f}<br>density=%{y:.3f}<extra></extra>",
        meta={"role": "teacher"},
        **kwargs,
    )


def density_cap(teacher_peak: float, highest: float) -> float:
    """Top of a density axis: the highest curve drawn (teacher or student, any frame), plus 5% air.

    Never lower: the tall, narrow reverse-KL student is the picture of mode seeking, and an axis
    that stopped at the teacher's peak would cut it off.
    """
    top = max(float(highest), float(teacher_peak))
    if not np.isfinite(top) or top <= 0:
        raise ValueError(f"density axis: the highest density must be finite and > 0, got {top!r}")
    return HEADROOM * top


def component_densities(dist: Distribution, x: np.ndarray) -> np.ndarray:
    """Each component's weighted density ``w_k N(x; mu_k, s_k^2)`` on x: shape (K, n); they sum to ``dist.prob(x)``."""
    w, mu, cov = dist.components()
    sd = np.sqrt(cov[:, 0, 0])[:, None]
    z = (x[None, :] - mu[:, :1]) / sd
    return w[:, None] * np.exp(-0.5 * z * z) / (sd * np.sqrt(2.0 * np.pi))
