"""Loss surfaces of a 1-D Gaussian student over (mean, log std), with their local minima.

For a Gaussian student q = N(m, s^2) the two KLs have fast, exact-to-quadrature forms:

* forward: KL(p || q) = -H(p) + log s + log(2 pi)/2 + (Var_p + (E_p - m)^2) / (2 s^2)
  (only the teacher's mean, variance and entropy enter: forward KL sees moments);
* reverse: KL(q || p) = -H(q) - E_q[log p], and E_q[log p] for every (m, s) is a Gaussian blur of
  log p, computed for all means at once by FFT convolution on a fine uniform grid.

jsd (0 < beta < 1) and alpha (0 < alpha < 1) are a constant plus an integral that lives only where
teacher and student overlap; it is a trapezoid sum on a lattice with ``log p`` computed once per
lattice (see :func:`_lattice_surface`). Every other kind is integrated directly on the fitting grid
(slower, same answer). Minima are located on the surface (cells lower than their 8 neighbours) and
then polished by BFGS (L-BFGS-B where a bound or a kink needs it) on the exact objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft
from scipy.interpolate import CubicSpline
from scipy.optimize import OptimizeResult, minimize

from kl_core.distributions import Gaussian, _GaussianComponents
from kl_core.divergences import kl_direction, resolve
from kl_core.families import GaussianMixture1D
from kl_core.fitting import _fit_box, _fit_grid, _Problem
from kl_core.quadrature import uniform_grid

__all__ = ["Landscape", "Minimum", "landscape", "default_ranges"]

_HALF_LOG_2PI_E = 0.5 * math.log(2 * math.pi * math.e)
# the polish: BFGS until |gradient| <= 1e-8, then one Newton step (see _bfgs); a tighter BFGS tolerance
# made the line search spend ~60 evaluations on values one ulp apart (rounding in the grid sums
# leaves ~1e-9 gradients at the optimum)
_BFGS = {"gtol": 1e-8, "maxiter": 500}


@dataclass(frozen=True)
class Minimum:
    """A local minimum of the objective: the student N(mean, std^2) and its value."""

    mean: float
    std: float
    value: float
    is_global: bool

    @property
    def log_std(self) -> float:
        return math.log(self.std)


@dataclass(frozen=True, eq=False)
class Landscape:
    """The objective over a (log std, mean) grid: ``values[i, j]`` is at ``(log_stds[i], means[j])``."""

    objective: str
    objective_params: dict[str, float]
    means: np.ndarray = field(repr=False)
    log_stds: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    minima: tuple[Minimum, ...]

    def __post_init__(self) -> None:
        for name in ("means", "log_stds", "values"):
            a = np.array(getattr(self, name), dtype=float)
            a.setflags(write=False)
            object.__setattr__(self, name, a)


def default_ranges(teacher: _GaussianComponents, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Means covering every mode with margin; log stds from a quarter of the narrowest mode to
    twice the teacher's overall std."""
    _, mu, cov = teacher.components()
    sd = np.sqrt(cov[:, 0, 0])
    lo, hi = float((mu[:, 0] - 2 * sd).min()), float((mu[:, 0] + 2 * sd).max())
    s_lo, s_hi = math.log(0.25 * sd.min()), math.log(2.0 * math.sqrt(teacher.variance))
    return np.linspace(lo, hi, n), np.linspace(s_lo, s_hi, n)


def _check_teacher(teacher: Any) -> None:
    if not (isinstance(teacher, _GaussianComponents) and teacher.univariate):
        raise ValueError("landscape needs a 1-D Gaussian or GaussianMixture teacher")


def _forward_kl_surface(teacher: _GaussianComponents, means: np.ndarray, log_stds: np.ndarray) -> np.ndarray:
    var_t, mean_t = teacher.variance, teacher.mean
    s2 = np.exp(2 * log_stds)[:, None]
    return (
        -teacher.entropy()
        + log_stds[:, None]
        + 0.5 * math.log(2 * math.pi)
        + (var_t + (mean_t - means) ** 2) / (2 * s2)
    )


def _reverse_kl_surface(teacher: _GaussianComponents, means: np.ndarray, log_stds: np.ndarray) -> np.ndarray:
    """-H(q) - E_q[log p] with E_q[log p](m) = (log p * N(0, s^2))(m) by FFT on a uniform grid.

    The grid spacing is a quarter of the narrowest student or teacher std (the trapezoid rule is
    then exact to ~1e-12 for the Gaussian kernel). When the means are evenly spaced the grid is
    aligned so every mean is a grid point; otherwise the blurred rows are splined (O(h^4)).
    """
    stds = np.exp(log_stds)
    _, _, cov = teacher.components()
    h = min(stds.min(), math.sqrt(cov[:, 0, 0].min())) / 4.0
    spacing = np.diff(means)
    aligned = np.allclose(spacing, spacing[0], rtol=1e-9, atol=0.0)
    if aligned:
        h = spacing[0] / math.ceil(spacing[0] / h)
    else:
        h /= 4.0  # the spline's O(h^4) error: 256x smaller
    j = int(math.ceil(8.5 * stds.max() / h))  # kernel half-width: exp(-8.5^2/2) ~ 2e-16 of the peak
    lo = means.min() - j * h
    n_x = int(math.ceil((means.max() - lo) / h - 1e-9)) + j + 1
    x = lo + h * np.arange(n_x)
    log_p = teacher.log_prob(x)
    # The kernel h N(k h; 0, s^2) at every integer k, wrapped on a circle of `size` >= n_x points, has
    # the discrete Fourier transform exp(-2 pi^2 s^2 f^2) at f = 0 .. 1/(2h) (Poisson summation: its
    # aliases are below exp(-pi^2 (s/h)^2 / 2) < 1e-34 for s >= 4h), so it is written down instead of
    # sampled and transformed. An output point (j .. n_x - 1 - j) meets the wrapped copy of an input
    # point at least j + 1 steps away, where the kernel is below exp(-8.5^2 / 2) ~ 2e-16.
    size = next_fast_len(n_x, real=True)
    freq = np.arange(size // 2 + 1) / (size * h)
    spectrum = np.exp((-2.0 * math.pi**2) * np.square(stds)[:, None] * np.square(freq)[None, :])
    blurred = irfft(spectrum * rfft(log_p, n=size), n=size, axis=-1)
    if aligned:
        expected_log_p = blurred[:, np.rint((means - lo) / h).astype(int)]
    else:
        expected_log_p = CubicSpline(x, blurred[:, :n_x], axis=1)(means)
    return -(_HALF_LOG_2PI_E + log_stds[:, None]) - expected_log_p


# ----------------------------------------------------------------------------------------------
# jsd and alpha (0 < alpha < 1): a trapezoid rule on a lattice, only where the integrand lives
# ----------------------------------------------------------------------------------------------

_TAIL = 8.0  # stds: a Gaussian's density there is exp(-32) ~ 1e-14 of its peak
_PER_STD = 4.0  # lattice points per narrowest std (teacher or student), as the fitting grid uses
_MAX_LATTICE = 100_000  # lattice points of one row (its students use 100-300 of them each)
_CHUNK = 1 << 18  # (students x lattice points) evaluated at once


def _kink_spacing(mu: np.ndarray, sd: np.ndarray, power: float) -> float:
    """A lattice spacing that resolves ``p^power`` where log p turns from one mode to the next.

    Between modes i and j, log p bends over a width ``w = s_i s_j / |mu_i - mu_j|``: p has complex
    zeros about ``pi w`` off the real axis, so the trapezoid rule's error there is about
    ``e * exp(-2 pi^2 w / h)``, with ``e ~ exp(-power z^2 / 2)``, ``z = |mu_i - mu_j| / (s_i + s_j)``,
    the integrand's size at the bend relative to its peak. The spacing keeps that estimate below
    1e-7 (it overstates the error some 100-1000x: far_modes, alpha = 0.05 at h = std / 4 is predicted
    2e-3 off and is 2e-6 off in the integral; inf where every bend is negligible). Small alpha needs
    it: p^0.05 is still 0.16 of its peak halfway between far_modes' modes.
    """
    h = math.inf
    order = np.argsort(mu, kind="stable")
    for i, j in zip(order[:-1], order[1:]):  # neighbours in the mean: their bends are the ones on the line
        gap = float(mu[j] - mu[i])
        if gap == 0.0:
            continue
        log_size = -0.5 * power * (gap / float(sd[i] + sd[j])) ** 2
        if log_size > math.log(1e-7):
            h = min(h, 2 * math.pi**2 * float(sd[i] * sd[j]) / gap / (log_size - math.log(1e-7)))
    return h


def _lattice_kinds(name: str, par: dict[str, float]) -> bool:
    """The kinds :func:`_lattice_surface` computes: jsd with 0 < beta < 1, alpha with 0 < alpha < 1."""
    return (name == "jsd" and 0.0 < par["beta"] < 1.0) or (name == "alpha" and 0.0 < par["alpha"] < 1.0)


def _lattice_surface(
    teacher: _GaussianComponents,
    name: str,
    par: dict[str, float],
    means: np.ndarray,
    log_stds: np.ndarray,
    direct_row: Callable[[float], np.ndarray],
) -> np.ndarray:
    """jsd or alpha over the grid from the part of the integral where teacher and student overlap.

    Both are a constant plus the integral of a term that vanishes where either density does:

    * jsd: ``H(beta) - integral of [m log m - A log A - B log B]`` with ``A = beta p``,
      ``B = (1 - beta) q``, ``m = A + B`` (the term is ``A log(m/A) + B log(m/B)``, at most
      ``min(A, B) (1 + |log(A/B)|)``);
    * alpha: ``(1 - integral of p^a q^b) / (a b)``, ``b = 1 - a`` (``p^a`` lives on the teacher's
      components widened by ``1/sqrt(a)``, ``q^b`` on the student widened by ``1/sqrt(b)``).

    For each row (one student std s) the integral is a trapezoid sum on the lattice ``h Z`` with
    ``h = min(narrowest teacher std, s) / 4`` (finer where ``log p`` bends sharply between two modes
    and the term is not negligible there: :func:`_kink_spacing`), over the lattice points within 8 (widened) stds of
    some teacher component *and* of the student: the rule is the same as summing over the whole
    line (the left-out points add below 1e-13), but each student needs ~100-200 points instead of
    the fitting grid's thousands, and ``log p`` is evaluated once per lattice. A row whose lattice
    would exceed ``_MAX_LATTICE`` points (a teacher whose widths differ by orders of magnitude, a
    student far narrower than the grid's means are apart) is computed by ``direct_row(log std)``.
    """
    _, mu, cov = teacher.components()
    mu, sd = mu[:, 0], np.sqrt(cov[:, 0, 0])
    if name == "jsd":
        beta = par["beta"]
        log_a, log_b = math.log(beta), math.log1p(-beta)
        widen_p = widen_q = 1.0
        const = -(beta * log_a + (1.0 - beta) * log_b)
    else:
        a = par["alpha"]
        b = 1.0 - a
        widen_p, widen_q = 1.0 / math.sqrt(a), 1.0 / math.sqrt(b)
    reach_p = _TAIL * widen_p * sd
    out = np.empty((log_stds.size, means.size))
    cache: dict[float, tuple[np.ndarray, tuple[np.ndarray, ...]] | None] = {}
    wide_h, s_max = min(float(sd.min()) / _PER_STD, _kink_spacing(mu, sd, 1.0 / widen_p**2)), math.exp(log_stds.max())
    for i, ls in enumerate(log_stds):
        s = math.exp(ls)
        h = min(wide_h, s / _PER_STD)
        reach_q = _TAIL * widen_q * s
        # the teacher's lattice points that some student of this row can reach (the rows wider than the
        # narrowest teacher component share one lattice: it is cut for the widest of them)
        wide = h == wide_h
        reach_cut = _TAIL * widen_q * s_max if wide else reach_q
        lo, hi = means[0] - reach_cut, means[-1] + reach_cut
        key = h
        if not wide or key not in cache:
            bounds = [(math.ceil(max(c - r, lo) / h), math.floor(min(c + r, hi) / h)) for c, r in zip(mu, reach_p)]
            if sum(max(hi_k - lo_k + 1, 0) for lo_k, hi_k in bounds) > _MAX_LATTICE:
                cache[key] = None
            else:
                x = h * np.unique(np.concatenate([np.arange(lo_k, hi_k + 1) for lo_k, hi_k in bounds]))
                lp = teacher.log_prob(x) if x.size else x
                # what the integrand needs of p, once per lattice: (log A, A) for jsd, a log p for alpha
                cache[key] = (x, (lp + log_a, np.exp(lp + log_a)) if name == "jsd" else (a * lp,))
        if cache[key] is None:
            out[i] = direct_row(ls)
            continue
        x, pre = cache[key]
        if x.size == 0:  # no student of this row overlaps the teacher
            out[i] = const if name == "jsd" else 1.0 / (a * b)
            continue
        first = np.searchsorted(x, means - reach_q)
        count = np.searchsorted(x, means + reach_q, side="right") - first
        width = max(int(count.max()), 1)
        start = np.minimum(first, x.size - width)
        offset = -(ls + 0.5 * math.log(2 * math.pi))  # log q = offset - z^2 / 2
        step = max(1, _CHUNK // width)  # students at once: bounded memory on fine grids
        for c in range(0, means.size, step):
            cols = slice(c, c + step)
            idx = start[cols, None] + np.arange(width)[None, :]
            z = (x[idx] - means[cols, None]) / s
            if name == "jsd":
                la, big_a = pre[0][idx], pre[1][idx]
                lb = (offset + log_b) - 0.5 * z * z
                big_b = np.exp(lb)
                m = big_a + big_b
                with np.errstate(divide="ignore", invalid="ignore"):
                    term = np.where(m > 0, m * np.log(m), 0.0) - big_a * la - big_b * lb
                out[i, cols] = const - h * term.sum(-1)
            else:
                overlap = h * np.exp(pre[0][idx] + (b * offset - 0.5 * b * z * z)).sum(-1)
                out[i, cols] = (1.0 - overlap) / (a * b)
    # rounding can leave a cell 1e-17 below 0 (student = teacher) or above jsd's bound H(beta)
    return np.clip(out, 0.0, const if name == "jsd" else None)


def _direct_row(prob: _Problem, means: np.ndarray, log_std: float) -> np.ndarray:
    """One row of the surface integrated on the fitting grid."""
    theta = np.stack([means, np.full_like(means, log_std)], axis=-1)
    return prob.exact(theta, with_grad=False)[0]


def _direct_surface(prob: _Problem, means: np.ndarray, log_stds: np.ndarray) -> np.ndarray:
    return np.stack([_direct_row(prob, means, ls) for ls in log_stds])


def _local_minima(values: np.ndarray) -> list[tuple[int, int]]:
    """Interior cells no higher than any of their 8 neighbours and lower than at least one.

    Ties (a minimum halfway between two grid cells) give two cells; polishing merges them.
    Flat plateaus give none.
    """
    v = values
    core = v[1:-1, 1:-1]
    no_higher = np.ones_like(core, dtype=bool)
    some_lower = np.zeros_like(core, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                nb = v[1 + di : v.shape[0] - 1 + di, 1 + dj : v.shape[1] - 1 + dj]
                no_higher &= core <= nb
                some_lower |= core < nb
    return [(i + 1, j + 1) for i, j in zip(*np.nonzero(no_higher & some_lower))]


def _finite_log_std(teacher: _GaussianComponents, alpha: float) -> tuple[float | None, float | None]:
    """Bounds on a Gaussian student's log std inside which the alpha-divergence is finite.

    p^a q^(1-a) is integrable iff a / s_max^2 + (1 - a) / s^2 > 0 (s_max: the teacher's widest
    component): for alpha < 0, s^2 < s_max^2 (1 - a) / (-a); for alpha > 1, s^2 > s_max^2 (a - 1) / a.
    The polish stays 1e-6 (in log std) inside, where L-BFGS-B cannot step into the +inf region.
    """
    if 0.0 <= alpha <= 1.0:
        return (None, None)
    _, _, cov = teacher.components()
    log_widest = 0.5 * math.log(float(cov[:, 0, 0].max()))
    if alpha < 0:
        return (None, log_widest + 0.5 * math.log((1.0 - alpha) / -alpha) - 1e-6)
    return (log_widest + 0.5 * math.log((alpha - 1.0) / alpha) + 1e-6, None)


def _bfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray) -> OptimizeResult:
    """BFGS to a gradient of 1e-8, then one Newton step with the Hessian from central differences of
    the gradient (4 evaluations), kept where it lowers the gradient without raising the value beyond
    rounding: the optimum to ~1e-12 instead of ~1e-8 / curvature."""
    res = minimize(fun, start, jac=True, method="BFGS", options=_BFGS)
    x, f, g = res.x, float(res.fun), np.asarray(res.jac, float)
    if not (np.isfinite(f) and np.all(np.isfinite(g))):
        return res
    eps = 1e-5
    cols = [(fun(x + eps * e)[1] - fun(x - eps * e)[1]) / (2 * eps) for e in np.eye(2)]
    hess = np.array(cols).T
    hess = 0.5 * (hess + hess.T)
    if np.all(np.isfinite(hess)) and np.all(np.linalg.eigvalsh(hess) > 0):
        step = -np.linalg.solve(hess, g)
        if np.abs(step).max() <= 1e-4:
            f2, g2 = fun(x + step)
            if f2 <= f + 1e-14 * max(1.0, abs(f)) and np.abs(g2).max() < np.abs(g).max():
                res.x, res.fun, res.jac = x + step, float(f2), g2
    return res


def _polish_nearby(k, par, teacher: _GaussianComponents, family, start: np.ndarray):
    """BFGS from ``start`` on a grid around it (8 points per narrowest std and per bend of log p
    between modes, over the teacher and the start e-fold widened out to 8 stds: hundreds of points,
    not the whole landscape's thousands), or None where that grid would be too large or the optimum
    leaves it (then the landscape's grid is used)."""
    _, mu, cov = teacher.components()
    sd = np.sqrt(cov[:, 0, 0])
    s = math.exp(start[1])
    box = _fit_box(teacher, [Gaussian(float(start[0]), math.e * s)])
    # log p's bends between modes weigh fully here (reverse KL integrates q log p): power 0
    h = min(float(sd.min()) / 8.0, s / 8.0, _kink_spacing(mu[:, 0], sd, 0.0))
    n = int(math.ceil((box[0, 1] - box[0, 0]) / h)) + 1
    if not 3 <= n <= 20_000:
        return None
    x, w = uniform_grid(box, n)
    prob = _Problem(k, par, teacher, family, x, w, teacher.log_prob(x))
    fun = lambda th: tuple(a[0] for a in prob.exact(th[None]))  # noqa: E731
    res = _bfgs(fun, start)
    m_end, s_end = float(res.x[0]), math.exp(float(res.x[1]))
    inside = box[0, 0] + 8.0 * s_end <= m_end <= box[0, 1] - 8.0 * s_end and s_end <= math.e * s
    return res if inside else None


def landscape(
    teacher: _GaussianComponents,
    objective: str = "reverse_kl",
    means: np.ndarray | None = None,
    log_stds: np.ndarray | None = None,
    n: int = 120,
    polish: bool = True,
    **objective_params: Any,
) -> Landscape:
    """The objective D(teacher, N(m, s^2)) over a grid of means m and log stds log s.

    Args:
        teacher: a 1-D Gaussian or GaussianMixture.
        objective: any continuous divergence kind, with its parameters as keywords.
        means, log_stds: grid axes; default :func:`default_ranges` with ``n`` points each.
        polish: refine each located minimum with L-BFGS-B on the exact objective.

    Examples:
        >>> import kl_core as kc
        >>> t = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])
        >>> [round(m.mean, 3) + 0.0 for m in landscape(t, "reverse_kl").minima]
        [-2.984, 2.984, 0.0]
    """
    _check_teacher(teacher)
    k, par = resolve(objective, objective_params)
    if k.discrete_only:
        raise ValueError(f"{objective} is defined for discrete distributions only")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 3 <= n <= 1000:
        raise ValueError(f"n must be an integer in [3, 1000], got {n!r}")
    d_means, d_log_stds = default_ranges(teacher, n)
    means = d_means if means is None else np.asarray(means, float)
    log_stds = d_log_stds if log_stds is None else np.asarray(log_stds, float)
    for name, a in (("means", means), ("log_stds", log_stds)):
        if a.ndim != 1 or a.size < 3 or not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
            raise ValueError(f"{name} must be an increasing 1-D array of at least 3 finite values")

    family = GaussianMixture1D(1)
    widest = math.exp(log_stds.max())
    corners = [Gaussian(float(means.min()), widest), Gaussian(float(means.max()), widest)]
    x, w = _fit_grid(teacher, _fit_box(teacher, corners), None)
    prob = _Problem(k, par, teacher, family, x, w, teacher.log_prob(x))

    direction = kl_direction(k.name, par)
    if direction == "forward":
        values = _forward_kl_surface(teacher, means, log_stds)
    elif direction == "reverse":
        values = _reverse_kl_surface(teacher, means, log_stds)
    elif _lattice_kinds(k.name, par):
        values = _lattice_surface(teacher, k.name, par, means, log_stds, lambda ls: _direct_row(prob, means, ls))
    else:
        values = _direct_surface(prob, means, log_stds)

    bounds = [(None, None), _finite_log_std(teacher, par["alpha"]) if k.name == "alpha" else (None, None)]
    # BFGS where the objective is smooth and finite everywhere: it runs in numpy, while scipy's L-BFGS-B
    # calls a threaded BLAS whose wake-ups cost 20-60 ms per two-parameter polish on a loaded machine
    # (for ~1 ms of work); L-BFGS-B keeps the bounds of alpha outside [0, 1] and the kinks of tv
    smooth = k.name != "tv" and bounds[1] == (None, None)
    found = []
    for i, j in _local_minima(values):
        m, ls, v = means[j], log_stds[i], values[i, j]
        if polish and np.isfinite(v):
            lo, hi = bounds[1]
            start = np.array([m, min(max(ls, -np.inf if lo is None else lo), np.inf if hi is None else hi)])
            fun = lambda th: tuple(a[0] for a in prob.exact(th[None]))  # noqa: E731
            with np.errstate(over="ignore", invalid="ignore"):
                if smooth:
                    res = _polish_nearby(k, par, teacher, family, start)
                    if res is None:
                        res = _bfgs(fun, start)
                else:
                    options = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 500}
                    res = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
            if np.isfinite(res.fun) and res.fun <= v:
                m, ls, v = float(res.x[0]), float(res.x[1]), float(res.fun)
        if not any(abs(m - f[0]) < 1e-3 and abs(ls - f[1]) < 1e-3 for f in found):
            found.append((m, ls, v))
    best = min((f[2] for f in found), default=math.nan)
    tie = 1e-9 * max(1.0, abs(best))
    # by value; minima equal to rounding (a symmetric teacher's pair) by mean, so the order is stable
    found.sort(key=lambda f: (round((f[2] - best) / tie), f[0]) if math.isfinite(f[2] - best) else (math.inf, f[0]))
    minima = tuple(Minimum(m, math.exp(ls), v, abs(v - best) <= tie) for m, ls, v in found)
    return Landscape(objective, par, means, log_stds, values, minima)
