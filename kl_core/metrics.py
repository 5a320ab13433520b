"""What a fitted student looks like, in numbers: moments, entropy, both KLs, modes, hallucinated mass.

Definitions (teacher p with components or cells k, student q):

* ``mode_shares[k]`` -- the share of the student's mass that belongs to teacher mode k:
  ``integral q(x) r_k(x) dx`` with ``r_k`` the teacher's responsibility (posterior of component k
  given x). For a discrete teacher the modes are the cells holding at least ``low_density`` of
  the teacher's peak probability, and a mode's share is the student's probability of that cell.
* ``core_ratios[k]`` -- where the student's mass actually is, mode by mode: the student's mass
  inside teacher mode k's *core* divided by the teacher's own mass there. The core of a mode is
  the set of points within one standard deviation of its component (Mahalanobis distance at
  most ``r``, with ``r`` chosen so the core holds 68.3% of the component, as ±1 std does in 1-D:
  ``r = 1`` in 1-D, ``r = 1.515`` in 2-D) where that component is the teacher's largest one
  (the whole ellipse for a component that is nowhere the largest within it).
  The student's density is used whole, so a mixture student counts all its components. 1 means
  the student puts as much mass there as the teacher; 0 that it has left the mode empty. For a
  table the core of a mode is its cell and the ratio is the student's probability of the cell
  over the teacher's.
* ``modes_covered`` -- the modes whose core ratio is at least ``coverage`` (default 1/5). Against
  ½N(−3, 1) + ½N(3, 1): N(3, 1) covers the +3 mode only (ratios 0, 2.0); the moment-matched
  N(0, √10) covers both (0.47 each); N(0, 1) and N(0, 0.3) sit in the gap and cover none (0.067
  and 0.000); the teacher covers all its modes (1.0).
* ``dominant_mode`` -- the mode holding the largest share of the student's mass.
* ``low_density_mass`` -- the student's mass where the teacher's density is below ``low_density``
  (default 5%) of its peak: the "hallucinated" region, e.g. between two separated modes, or the
  invalid token pairs of a correlated table.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from kl_core.distributions import Distribution, _GaussianComponents, _max_last
from kl_core.divergences import _check_pair, _kl_pair
from kl_core.quadrature import _gauss_legendre, panel_grid, roots

__all__ = [
    "StudentSummary",
    "summarize",
    "mode_shares",
    "core_ratios",
    "mode_coverage",
    "low_density_mass",
    "teacher_modes",
]

COVERAGE = 0.2  # a mode is covered when the student holds >= 1/5 of the teacher's mass in its core
LOW_DENSITY = 0.05
CORE_PROBABILITY = math.erf(1.0 / math.sqrt(2.0))  # 0.6827: the mass of +-1 std of a 1-D Gaussian
_CORE_RADIUS = {1: 1.0, 2: math.sqrt(-2.0 * math.log(1.0 - CORE_PROBABILITY))}  # chi(d) quantile: 1, 1.515
_RADIAL_NODES, _ANGLES = 32, 128  # 2-D core quadrature: Gauss-Legendre in the radius, periodic trapezoid in angle


@dataclass(frozen=True)
class StudentSummary:
    """Numbers describing one student against its teacher (see module docstring)."""

    mean: float | tuple[float, ...] | None
    std: float | tuple[float, ...] | None
    entropy: float
    forward_kl: float
    reverse_kl: float
    mode_shares: tuple[float, ...]
    core_ratios: tuple[float, ...]
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


@dataclass(frozen=True)
class _PairGrid:
    """One quadrature grid of a (teacher, student) pair with both log-densities on it, built once per summary."""

    x: np.ndarray
    w: np.ndarray
    lp: np.ndarray  # log p
    lq: np.ndarray  # log q
    resp: np.ndarray  # the teacher's responsibilities, (n, K)


def _pair_grid(teacher: _GaussianComponents, student: Distribution) -> _PairGrid:
    x, w = panel_grid([teacher, student])
    c = teacher.component_log_prob(x)  # (n, K): log p and the responsibilities from one evaluation
    if c.shape[-1] == 1:
        lp = c[..., 0]
    else:  # as teacher.log_prob does
        top = _max_last(c)
        lp = top + np.log(np.exp(c - top[..., None]).sum(-1))
    with np.errstate(invalid="ignore"):
        resp = np.exp(c - lp[..., None])
    return _PairGrid(x, w, lp, student.log_prob(x), np.nan_to_num(resp, nan=0.0))


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
    return _mode_shares(teacher, student, low_density, None)


def _mode_shares(teacher: Distribution, student: Distribution, low_density: float, grid: _PairGrid | None):
    if isinstance(teacher, _GaussianComponents):
        if teacher.dim > 2:
            raise ValueError("mode shares are computed for 1-D and 2-D teachers only")
        g = grid or _pair_grid(teacher, student)
        return np.einsum("n,nk->k", g.w * np.exp(g.lq), g.resp)  # not BLAS: see quadrature._dot
    cells, _ = teacher_modes(teacher, low_density)
    return np.exp(student.log_probs[tuple(cells.T)])


def _dominance_breaks(w: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> list[float]:
    """Points where two weighted 1-D components are equal: log(w_k N_k) - log(w_j N_j) is a quadratic in x."""
    out: list[float] = []
    for k in range(len(w)):
        for j in range(k + 1, len(w)):
            a = 0.5 / sd[j] ** 2 - 0.5 / sd[k] ** 2
            b = mu[k] / sd[k] ** 2 - mu[j] / sd[j] ** 2
            c = math.log(w[k] * sd[j] / (w[j] * sd[k])) - 0.5 * (mu[k] / sd[k]) ** 2 + 0.5 * (mu[j] / sd[j]) ** 2
            if abs(a) <= 1e-12 * (abs(b) + abs(c) + 1.0):  # equal stds: one crossing (none if also equal means)
                if b != 0.0:
                    out.append(-c / b)
                continue
            disc = b * b - 4.0 * a * c
            if disc >= 0.0:
                out += [(-b + math.sqrt(disc)) / (2.0 * a), (-b - math.sqrt(disc)) / (2.0 * a)]
    return out


def _core_masses(teacher: _GaussianComponents, dists: list[Distribution]) -> np.ndarray:
    """(len(dists), K): each distribution's mass inside each teacher mode's core (module docstring).

    1-D: the core is a union of intervals cut at the dominance crossings, its mass exact from the
    CDF. 2-D: polar coordinates around the component's mean in its own metric, x = mu + L u,
    |u| <= r, with the dominance test at every node.
    """
    if teacher.dim > 2:
        raise ValueError("mode coverage is computed for 1-D and 2-D teachers only")
    w, mu, cov = teacher.components()
    out = np.zeros((len(dists), len(w)))
    if teacher.univariate:
        m, sd = mu[:, 0], np.sqrt(cov[:, 0, 0])
        crossings = np.array(_dominance_breaks(w, m, sd))
        for k in range(len(w)):
            lo, hi = m[k] - sd[k], m[k] + sd[k]
            edges = np.unique(np.concatenate([[lo, hi], crossings[(crossings > lo) & (crossings < hi)]]))
            own = np.argmax(teacher.component_log_prob(0.5 * (edges[1:] + edges[:-1])), -1) == k
            own |= not own.any()  # a component under a larger one everywhere in its core: the whole core
            for i, d in enumerate(dists):
                out[i, k] = float(np.diff(d.cdf(edges))[own].sum())
        return out
    for k, (x, weights) in enumerate(_core_nodes(teacher)):
        for i, d in enumerate(dists):
            out[i, k] = float(weights @ d.prob(x))
    return out


@functools.lru_cache(maxsize=8)
def _core_nodes(teacher: _GaussianComponents) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """2-D: per teacher mode k, the nodes (n, 2) and weights (n,) of its core's quadrature (zero weight where
    component k is not the largest). They depend on the teacher only: kept for the last few teachers (a page
    summarises every start's student against one teacher)."""
    w, mu, cov = teacher.components()
    radius = _CORE_RADIUS[2]
    t, wt = _gauss_legendre(_RADIAL_NODES)
    r, wr = 0.5 * radius * (t + 1.0), 0.5 * radius * wt
    theta = 2.0 * np.pi * np.arange(_ANGLES) / _ANGLES
    u = np.stack([np.outer(r, np.cos(theta)).ravel(), np.outer(r, np.sin(theta)).ravel()], -1)  # (n, 2)
    wu = np.outer(wr * r, np.full(_ANGLES, 2.0 * np.pi / _ANGLES)).ravel()  # (n,) polar area element
    nodes = []
    for k in range(len(w)):
        chol = np.linalg.cholesky(cov[k])
        x = mu[k] + u @ chol.T  # (n, 2)
        own = np.argmax(teacher.component_log_prob(x), -1) == k
        own |= not own.any()
        weights = wu * abs(float(np.linalg.det(chol))) * own
        x.flags.writeable = weights.flags.writeable = False
        nodes.append((x, weights))
    return tuple(nodes)


@functools.lru_cache(maxsize=8)
def _teacher_core_masses(teacher: _GaussianComponents) -> np.ndarray:
    """The teacher's own mass in each of its modes' cores, (K,): the denominators of :func:`core_ratios`."""
    masses = _core_masses(teacher, [teacher])[0]
    masses.flags.writeable = False
    return masses


def core_ratios(teacher: Distribution, student: Distribution, low_density: float = LOW_DENSITY) -> np.ndarray:
    """Per teacher mode: the student's mass in the mode's core over the teacher's (see module docstring).

    Examples:
        >>> import kl_core as kc
        >>> teacher = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])
        >>> core_ratios(teacher, kc.Gaussian(3.0, 1.0)).round(3).tolist()
        [0.0, 2.0]
    """
    _check_pair(teacher, student)
    if isinstance(teacher, _GaussianComponents):
        return _core_masses(teacher, [student])[0] / _teacher_core_masses(teacher)
    cells, weights = teacher_modes(teacher, low_density)
    return np.exp(student.log_probs[tuple(cells.T)]) / weights


def mode_coverage(
    teacher: Distribution, student: Distribution, coverage: float = COVERAGE, low_density: float = LOW_DENSITY
) -> np.ndarray:
    """Boolean per teacher mode: does the student hold at least ``coverage`` x the teacher's mass in its core?"""
    _check_fraction("coverage", coverage)
    return core_ratios(teacher, student, low_density) >= coverage


def low_density_mass(teacher: Distribution, student: Distribution, low_density: float = LOW_DENSITY) -> float:
    """Student mass where the teacher is below ``low_density`` x its peak density (see module docstring)."""
    _check_fraction("low_density", low_density)
    _check_pair(teacher, student)
    return _low_density_mass(teacher, student, low_density, None)


def _low_density_mass(teacher: Distribution, student: Distribution, low_density: float, grid: _PairGrid | None):
    if isinstance(teacher, _GaussianComponents):
        if teacher.dim > 2:
            raise ValueError("low-density mass is computed for 1-D and 2-D teachers only")
        g = grid or _pair_grid(teacher, student)
        # the teacher's peak: the best grid point or component mean, polished by a local search
        _, mu, _ = teacher.components()
        means = mu[:, 0] if teacher.univariate else mu
        candidates = np.concatenate([g.x, means])
        lp_all = np.concatenate([g.lp, teacher.log_prob(means)])
        start = candidates[int(np.argmax(lp_all))]
        pts = (lambda t: t) if teacher.univariate else (lambda t: t[None])
        res = minimize(lambda t: -float(teacher.log_prob(pts(t))[0]), np.atleast_1d(start))
        level = max(lp_all.max(), -res.fun) + math.log(low_density)
        if teacher.univariate:  # panel edges where the teacher crosses the level (2-D: the same grid)
            x, w = panel_grid([teacher, student], breaks=roots(lambda t: teacher.log_prob(t) - level, g.x))
            lp, lq = teacher.log_prob(x), student.log_prob(x)
        else:
            w, lp, lq = g.w, g.lp, g.lq
        return float(np.sum(w * np.exp(lq) * (lp < level)))
    lp, lq = teacher.log_probs, student.log_probs
    return float(np.exp(lq)[lp < lp.max() + math.log(low_density)].sum())


def summarize(
    teacher: Distribution, student: Distribution, coverage: float = COVERAGE, low_density: float = LOW_DENSITY
) -> StudentSummary:
    """All the numbers of the results table for one student."""
    _check_fraction("coverage", coverage)
    _check_fraction("low_density", low_density)
    _check_pair(teacher, student)
    grid = _pair_grid(teacher, student) if isinstance(teacher, _GaussianComponents) and teacher.dim <= 2 else None
    shares = _mode_shares(teacher, student, low_density, grid)
    kls = _kl_pair(teacher, student)  # one quadrature for both KLs
    ratios = core_ratios(teacher, student, low_density)
    covered = tuple(int(i) for i in np.nonzero(ratios >= coverage)[0])
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
        forward_kl=float(kls[0]),
        reverse_kl=float(kls[1]),
        mode_shares=tuple(float(s) for s in shares),
        core_ratios=tuple(float(r) for r in ratios),
        modes_covered=covered,
        dominant_mode=int(np.argmax(shares)),
        low_density_mass=_low_density_mass(teacher, student, low_density, grid),
    )


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
