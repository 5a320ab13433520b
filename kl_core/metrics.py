"""What a fitted student looks like, in numbers: moments, entropy, both KLs, modes, hallucinated mass.

Definitions (teacher p with components or cells k, student q):

* ``mode_shares[k]`` -- the share of the student's mass that belongs to teacher mode k:
  ``integral q(x) r_k(x) dx`` with ``r_k`` the teacher's responsibility (posterior of component k
  given x). For a discrete teacher the modes are the cells holding at least ``low_density`` of
  the teacher's peak probability, and a mode's share is the student's probability of that cell.
* ``modes_covered`` -- the modes whose share is at least ``coverage`` (default 1/4) of the
  teacher's own weight on that mode: the student puts a noticeable part of what the teacher puts
  there. A student sitting on one of two equal modes covers one; the moment-matched Gaussian
  covers both.
* ``dominant_mode`` -- the mode holding the largest share of the student's mass.
* ``low_density_mass`` -- the student's mass where the teacher's density is below ``low_density``
  (default 5%) of its peak: the "hallucinated" region, e.g. between two separated modes, or the
  invalid token pairs of a correlated table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from kl_core.distributions import Distribution, _GaussianComponents
from kl_core.divergences import _check_pair, divergence
from kl_core.quadrature import panel_grid, roots

__all__ = ["StudentSummary", "summarize", "mode_shares", "mode_coverage", "low_density_mass", "teacher_modes"]

COVERAGE = 0.25
LOW_DENSITY = 0.05


@dataclass(frozen=True)
class StudentSummary:
    """Numbers describing one student against its teacher (see module docstring)."""

    mean: float | tuple[float, ...] | None
    std: float | tuple[float, ...] | None
    entropy: float
    forward_kl: float
    reverse_kl: float
    mode_shares: tuple[float, ...]
    modes_covered: tuple[int, ...]
    dominant_mode: int
    low_density_mass: float

    @property
    def n_modes_covered(self) -> int:
        return len(self.modes_covered)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["n_modes_covered"] = self.n_modes_covered
        return out


def _grid(teacher: Distribution, student: Distribution):
    x, w = panel_grid([teacher, student])
    return x, w, teacher.log_prob(x), student.log_prob(x)


def teacher_modes(teacher: Distribution, low_density: float = LOW_DENSITY) -> tuple[np.ndarray, np.ndarray]:
    """(mode locations, teacher weights): component means for a mixture, cells for a table."""
    if isinstance(teacher, _GaussianComponents):
        w, mu, _ = teacher.components()
        return (mu[:, 0] if teacher.univariate else mu), w
    p = teacher.probs
    cells = np.argwhere(p >= low_density * p.max())
    return cells, p[tuple(cells.T)]


def mode_shares(teacher: Distribution, student: Distribution, low_density: float = LOW_DENSITY) -> np.ndarray:
    """Share of the student's mass on each teacher mode (see module docstring)."""
    _check_pair(teacher, student)
    if isinstance(teacher, _GaussianComponents):
        if teacher.dim > 2:
            raise ValueError("mode shares are computed for 1-D and 2-D teachers only")
        x, w, _, lq = _grid(teacher, student)
        r = teacher.responsibilities(x)  # (n, K)
        return (w * np.exp(lq)) @ r
    cells, _ = teacher_modes(teacher, low_density)
    return np.exp(student.log_probs[tuple(cells.T)])


def mode_coverage(
    teacher: Distribution, student: Distribution, coverage: float = COVERAGE, low_density: float = LOW_DENSITY
) -> np.ndarray:
    """Boolean per teacher mode: does the student hold at least ``coverage`` x the teacher's weight there?"""
    _check_fraction("coverage", coverage)
    _, weights = teacher_modes(teacher, low_density)
    return mode_shares(teacher, student, low_density) >= coverage * weights


def low_density_mass(teacher: Distribution, student: Distribution, low_density: float = LOW_DENSITY) -> float:
    """Student mass where the teacher is below ``low_density`` x its peak density (see module docstring)."""
    _check_fraction("low_density", low_density)
    _check_pair(teacher, student)
    if isinstance(teacher, _GaussianComponents):
        if teacher.dim > 2:
            raise ValueError("low-density mass is computed for 1-D and 2-D teachers only")
        x, _ = panel_grid([teacher, student])
        # the teacher's peak: the best grid point or component mean, polished by a local search
        _, mu, _ = teacher.components()
        candidates = np.concatenate([x, mu[:, 0]]) if teacher.univariate else np.concatenate([x, mu])
        lp_all = teacher.log_prob(candidates)
        start = candidates[int(np.argmax(lp_all))]
        pts = (lambda t: t) if teacher.univariate else (lambda t: t[None])
        res = minimize(lambda t: -float(teacher.log_prob(pts(t))[0]), np.atleast_1d(start))
        level = max(lp_all.max(), -res.fun) + math.log(low_density)
        breaks = roots(lambda t: teacher.log_prob(t) - level, x) if teacher.univariate else ()
        x, w = panel_grid([teacher, student], breaks=breaks)
        lp, lq = teacher.log_prob(x), student.log_prob(x)
        return float(np.sum(w * np.exp(lq) * (lp < level)))
    lp, lq = teacher.log_probs, student.log_probs
    return float(np.exp(lq)[lp < lp.max() + math.log(low_density)].sum())


def summarize(
    teacher: Distribution, student: Distribution, coverage: float = COVERAGE, low_density: float = LOW_DENSITY
) -> StudentSummary:
    """All the numbers of the results table for one student."""
    shares = mode_shares(teacher, student, low_density)
    _, weights = teacher_modes(teacher, low_density)
    covered = tuple(int(i) for i in np.nonzero(shares >= coverage * weights)[0])
    if isinstance(student, _GaussianComponents):
        if student.univariate:
            mean, std = float(student.mean), math.sqrt(student.variance)
        else:
            mean, std = tuple(float(v) for v in student.mean), tuple(float(v) for v in np.sqrt(student.variance))
    else:
        mean = std = None
    return StudentSummary(
        mean=mean,
        std=std,
        entropy=float(student.entropy()),
        forward_kl=float(divergence(teacher, student, "forward_kl")),
        reverse_kl=float(divergence(teacher, student, "reverse_kl")),
        mode_shares=tuple(float(s) for s in shares),
        modes_covered=covered,
        dominant_mode=int(np.argmax(shares)),
        low_density_mass=low_density_mass(teacher, student, low_density),
    )


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
