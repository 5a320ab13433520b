"""Integration grids chosen from the teacher's and student's support (1-D and 2-D).

Two kinds of grid:

* :func:`panel_grid` -- composite Gauss-Legendre panels for exact divergences. Every Gaussian
  component of every distribution contributes breakpoints every ``step`` (conditional) standard
  deviations out to ``tail`` marginal standard deviations, so the grid is fine wherever any of the
  densities lives and absent where all of them are below ``exp(-tail**2 / 2)`` of their peak.
  The integrands are smooth, so a few Gauss-Legendre nodes per half standard deviation reach
  double precision; well-separated and nearly disjoint pairs are handled alike. One exception,
  in 1-D: where two components of a mixture cross, far out in both their tails, its log-density
  turns a corner (log(e^a + e^b) ~ max(a, b)) over a width of 1 / |slope difference|, which can be
  much narrower than any component's std (two modes of std 0.05 at +-1 under a student of std 5:
  a corner of width 0.001 at 0, inside a panel of width 2.5). There, :func:`_kink_breaks` puts a
  breakpoint on the corner and a geometric ladder of them around it.
* :func:`uniform_grid` -- an evenly spaced grid with trapezoid weights for fitting and figures,
  where the same points must serve every step of an optimisation.

Both return ``(x, w)``: points ((n,) in 1-D, (n, 2) in 2-D) and quadrature weights (n,), so that
``sum(w * f(x))`` approximates the integral of ``f``.

Limits (``ValueError`` beyond them, never a silent wrong answer or an unbounded allocation):

* a panel grid has at most ``MAX_NODES`` points (2**20) in all; a 2-D grid needs about
  (marginal std / conditional std) panels per component and axis, so a nearly degenerate
  covariance is refused rather than given a 19000 x 19000 grid;
* a node must be representable next to its component: every component's mean lies within
  ``MAX_REACH`` (1e8) of its own (conditional) std from the grid's centre, otherwise neighbouring nodes
  round to the same float (e.g. a mode of std 1e-8 at 1e9);
* :func:`integrate_pair` checks that the grid integrates both densities to 1 within ``MASS_TOL``:
  a grid that does not resolve a distribution raises instead of returning, e.g., a total variation above 1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from kl_core.distributions import Distribution, _GaussianComponents

__all__ = [
    "panel_grid",
    "uniform_grid",
    "integrate",
    "integrate_pair",
    "integrate_pairs",
    "support_box",
    "roots",
    "standard_frame",
    "MAX_NODES",
    "MAX_REACH",
]

Components = tuple[np.ndarray, np.ndarray]  # means (K, d), covariances (K, d, d)
TAIL = 12.0  # standard deviations; exp(-72) ~ 5e-32 of the peak is left out
MAX_NODES = 1 << 20  # points of a panel grid, all axes together (2-D presets use 30-50K)
MAX_REACH = 1e8  # |mean - centre| / std of a component, beyond which its nodes are not representable
MASS_TOL = 1e-6  # a grid must integrate each density to 1 within this


def _components(dists: Iterable[Distribution], extra: Sequence[Components] = ()) -> Components:
    mus, covs = [], []
    for d in dists:
        if not isinstance(d, _GaussianComponents):
            raise ValueError(f"quadrature grids need Gaussian or GaussianMixture distributions, got {type(d).__name__}")
        _, mu, cov = d.components()
        mus.append(mu)
        covs.append(cov)
    for mu, cov in extra:
        mus.append(np.asarray(mu, float).reshape(-1, covs[0].shape[-1] if covs else np.shape(mu)[-1]))
        covs.append(np.asarray(cov, float))
    dims = {m.shape[1] for m in mus}
    if len(dims) != 1:
        raise ValueError(f"Dimension mismatch between distributions: {sorted(dims)}")
    return np.concatenate(mus), np.concatenate(covs)


def _axis_breakpoints(centres: np.ndarray, spreads: np.ndarray, steps: np.ndarray, tail: float) -> np.ndarray:
    """Breakpoints along one axis: centre +- tail * spread, every step, for each component.

    Overlapping components would interleave their lattices; a breakpoint closer than 0.6 of the
    finest step covering it to the previous one is dropped, so each region gets about one panel
    per local step whatever the number of components.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        counts = np.ceil(tail * spreads / steps)
    if not np.all(np.isfinite(counts)) or 2 * counts.sum() + counts.size > MAX_NODES:
        raise ValueError(
            f"quadrature would need more than {MAX_NODES} panels on an axis: a component is too narrow across "
            "its own spread (a nearly degenerate covariance); use method='mc'"
        )
    pieces, lows, highs = [], [], []
    for c, s, h in zip(centres, spreads, steps):
        n = int(np.ceil(tail * s / h))
        pieces.append(c + h * np.arange(-n, n + 1))
        lows.append(c - n * h)
        highs.append(c + n * h)
    b = np.unique(np.concatenate(pieces))
    lows, highs = np.array(lows), np.array(highs)
    covering = (b[:, None] >= lows - 1e-12) & (b[:, None] <= highs + 1e-12)
    local = np.where(covering, steps[None, :], np.inf).min(1)
    keep = np.zeros(b.size, bool)
    keep[0] = keep[-1] = True
    last = b[0]
    for i in range(1, b.size - 1):
        if b[i] - last >= 0.6 * local[i]:
            keep[i] = True
            last = b[i]
    return b[keep]


@functools.cache
def _gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``order``-point Gauss-Legendre on [-1, 1] (an eigenproblem: computed once)."""
    t, wt = np.polynomial.legendre.leggauss(order)
    t.flags.writeable = wt.flags.writeable = False
    return t, wt


def _gauss_legendre_panels(breaks: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    t, wt = _gauss_legendre(int(order))
    a, b = breaks[:-1, None], breaks[1:, None]
    half = 0.5 * (b - a)
    return ((a + b) * 0.5 + half * t).ravel(), (half * wt).ravel()


def panel_grid(
    dists: Iterable[Distribution],
    *,
    extra: Sequence[Components] = (),
    step: float | None = None,
    order: int | None = None,
    tail: float = TAIL,
    breaks: Sequence[float] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre grid covering every component of ``dists`` (1-D or 2-D).

    ``extra`` adds more (means, covs) components to cover, e.g. the effective Gaussian of
    ``p**alpha * q**(1-alpha)`` when it lies outside both supports. ``breaks`` (1-D) adds panel
    edges where the integrand has a kink, such as the crossings of p and q for total variation.
    """
    dists = list(dists)
    mu, cov = _components(dists, extra)
    d = mu.shape[1]
    if d > 2:
        raise ValueError(f"quadrature grids support 1-D and 2-D only, got {d}-D; use method='mc'")
    # 1-D: 10 nodes per half std (cheap, double precision); 2-D: 8 nodes per 1.5 stds out to 8 stds
    # (a tensor grid squares the cost; ~1e-10 relative on the ring preset)
    step = (0.5 if d == 1 else 1.5) if step is None else step
    order = (10 if d == 1 else 8) if order is None else order
    tail = tail if d == 1 else min(tail, 8.0)
    rotation = _best_rotation(mu, cov, step, tail) if d == 2 else None
    if rotation is not None:  # a rotation is an isometry: same integral, weights unchanged
        mu, cov = mu @ rotation, np.swapaxes(rotation, 0, 1)[None] @ cov @ rotation[None]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    marginal, conditional = _spreads(cov)
    _check_reach(mu, conditional)
    axes = []
    for a in range(d):
        edges = _axis_breakpoints(mu[:, a], marginal[:, a], step * conditional[:, a], tail)
        if d == 1:
            inside = np.concatenate([np.asarray(breaks, float).ravel(), _kink_breaks(dists)])
            inside = inside[(inside > edges[0]) & (inside < edges[-1])]
            edges = np.unique(np.concatenate([edges, inside]))
        axes.append(_gauss_legendre_panels(edges, order))
    total = int(np.prod([len(a[1]) for a in axes]))
    if total > MAX_NODES:
        raise ValueError(
            f"quadrature would need {total} points (cap {MAX_NODES}): a component is too narrow for the "
            "others' spread (a nearly degenerate covariance); use method='mc'"
        )
    if d == 1:
        return axes[0]
    (x0, w0), (x1, w1) = axes
    X0, X1 = np.meshgrid(x0, x1, indexing="ij")
    pts = np.stack([X0.ravel(), X1.ravel()], axis=-1)
    return (pts if rotation is None else pts @ rotation.T), np.outer(w0, w1).ravel()


KINK_GAP = 40.0  # a crossing of two components is a corner of log p unless a third one is e^40 above both


def _kink_breaks(dists: Sequence[Distribution]) -> np.ndarray:
    """1-D breakpoints on the corners of each mixture's log-density, with a ladder around each.

    Components i and j of one mixture cross where their log-densities meet, the roots of a
    quadratic; a root is a corner of log p where both are within ``KINK_GAP`` of the largest
    component there. The corner is smooth over ``h = 1 / |slope_i - slope_j|``: breakpoints at
    ``c``, ``c +- h 2^k`` (k = 0, 1, ...) up to half the mixture's widest std, so each panel near
    the corner is as wide as its distance to it, where Gauss-Legendre converges geometrically.
    """
    out = []
    for dist in dists:
        w, mu, cov = dist.components()  # type: ignore[attr-defined]
        if len(w) < 2:
            continue
        m, sd = mu[:, 0], np.sqrt(cov[:, 0, 0])
        with np.errstate(divide="ignore", over="ignore", invalid="ignore", under="ignore"):
            lead = np.log(w) - np.log(sd)  # log of each component's peak height (up to 1 / sqrt(2 pi))
            widest = 0.5 * float(sd.max())
            for i in range(len(w)):
                for j in range(i + 1, len(w)):
                    for c in _crossing(m[i], sd[i], lead[i], m[j], sd[j], lead[j]):
                        lc = lead - 0.5 * ((c - m) / sd) ** 2
                        if not np.all(np.isfinite(lc)) or min(lc[i], lc[j]) < lc.max() - KINK_GAP:
                            continue
                        slope = abs((c - m[j]) / sd[j] ** 2 - (c - m[i]) / sd[i] ** 2)
                        h = 1.0 / slope
                        if not (math.isfinite(h) and 0.0 < h < widest):
                            continue
                        ladder = h * 2.0 ** np.arange(0, min(60, math.ceil(math.log2(widest / h)) + 1))
                        out.append(np.concatenate([[c], c - ladder, c + ladder]))
    return np.concatenate(out) if out else np.zeros(0)


def _crossing(m_i: float, s_i: float, a_i: float, m_j: float, s_j: float, a_j: float) -> list[float]:
    """Real x where a_i - (x - m_i)^2 / (2 s_i^2) = a_j - (x - m_j)^2 / (2 s_j^2), in u = x - m_i."""
    delta = m_j - m_i
    a2 = 0.5 / s_j**2 - 0.5 / s_i**2
    a1 = -delta / s_j**2
    a0 = a_i - a_j + 0.5 * delta**2 / s_j**2
    if not all(math.isfinite(v) for v in (a2, a1, a0)):
        return []
    if abs(a2) <= 1e-12 * (0.5 / s_j**2 + 0.5 / s_i**2):  # equal stds: one crossing
        return [m_i - a0 / a1] if a1 != 0.0 else []
    disc = a1 * a1 - 4.0 * a2 * a0
    if disc < 0.0:
        return []
    q = -0.5 * (a1 + math.copysign(math.sqrt(disc), a1))
    roots = [q / a2] + ([a0 / q] if q != 0.0 else [])
    return [m_i + u for u in roots if math.isfinite(u)]


def _panel_count(cov: np.ndarray, step: float, tail: float) -> float:
    """An upper bound on the tensor grid's panels (product over axes of every component's lattice)."""
    marginal, conditional = _spreads(cov)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        per_axis = (2.0 * np.ceil(tail * marginal / (step * conditional)) + 1.0).sum(0)
    return float(np.prod(per_axis)) if np.all(np.isfinite(per_axis)) else math.inf


def _best_rotation(mu: np.ndarray, cov: np.ndarray, step: float, tail: float) -> np.ndarray | None:
    """The 2-D frame (a component's principal axes) in which the tensor grid is smallest, or None.

    An axis-aligned tensor grid pays (marginal / conditional std) panels per axis for a tilted
    thin component; in that component's own principal axes it pays a handful. Only a frame that at
    least halves the grid is taken, so well-conditioned problems keep their axes (and digits).
    """
    best, best_cost = None, _panel_count(cov, step, tail)
    for c in cov:
        if not np.all(np.isfinite(c)):
            continue
        _, vecs = np.linalg.eigh(c)
        rotated = np.swapaxes(vecs, 0, 1)[None] @ cov @ vecs[None]
        cost = _panel_count(0.5 * (rotated + np.swapaxes(rotated, 1, 2)), step, tail)
        if cost < 0.5 * best_cost:
            best, best_cost = vecs, cost
    return best


def _spreads(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(marginal, conditional) std of every component along every axis, (K, d) each.

    From the Cholesky factor, not the inverse covariance: a 1-D std of 1e-300 has a variance that
    underflows to 0, its factor does not.
    """
    d = cov.shape[-1]
    if d == 1:
        s = np.sqrt(cov[:, :, 0])
        return s, s
    chol = np.linalg.cholesky(cov)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        inv = np.linalg.inv(chol)  # L^{-1}; (Sigma^{-1})_ii = sum_j (L^{-1})_ji^2
        marginal = np.sqrt((chol * chol).sum(-1))
        conditional = 1.0 / np.sqrt((inv * inv).sum(-2))
    return marginal, conditional


def _check_reach(mu: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The centre c minimising max_k |mu_k - c| / spread_k per axis; ValueError beyond MAX_REACH."""
    centre = np.empty(mu.shape[1])
    for a in range(mu.shape[1]):
        m, s = mu[:, a], spread[:, a]
        # the minimax centre is where two components' reach cones meet: try every pair (K is small)
        with np.errstate(over="ignore", invalid="ignore"):
            meet = (m[:, None] * s[None, :] + m[None, :] * s[:, None]) / (s[:, None] + s[None, :])
            cand = np.concatenate([m, meet.ravel()])
            reach = (np.abs(m[None, :] - cand[:, None]) / s[None, :]).max(1)
        best = int(np.nanargmin(np.where(np.isfinite(reach), reach, np.inf))) if np.any(np.isfinite(reach)) else 0
        if not reach[best] <= MAX_REACH:
            raise ValueError(
                f"means and stds: quadrature needs every component's mean within {MAX_REACH:g} of its own std "
                f"from a common centre, got {reach[best]:.3g} (its grid nodes would round to the same number); "
                "bring the modes closer relative to their widths, or use method='mc'"
            )
        centre[a] = cand[best]
    return centre


def support_box(dists: Iterable[Distribution], tail: float = 6.0) -> np.ndarray:
    """Axis-aligned box (d, 2) holding every component of ``dists`` out to ``tail`` std."""
    mu, cov = _components(dists)
    s = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    return np.stack([(mu - tail * s).min(0), (mu + tail * s).max(0)], axis=-1)


def uniform_grid(box: np.ndarray, n: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced points over ``box`` ((d, 2) bounds) with trapezoid weights.

    ``n`` is the number of points per axis. For densities that are negligible at the box edges the
    trapezoid rule converges faster than any power of the spacing.
    """
    box = np.asarray(box, float).reshape(-1, 2)
    d = box.shape[0]
    ns = [int(n)] * d if np.ndim(n) == 0 else [int(v) for v in n]
    axes = []
    for (lo, hi), k in zip(box, ns):
        if k < 3:
            raise ValueError(f"grid must have at least 3 points per axis, got {k}")
        x = np.linspace(lo, hi, k)
        w = np.full(k, (hi - lo) / (k - 1))
        w[[0, -1]] *= 0.5
        axes.append((x, w))
    if d == 1:
        return axes[0]
    if d != 2:
        raise ValueError(f"uniform grids support 1-D and 2-D only, got {d}-D")
    (x0, w0), (x1, w1) = axes
    X0, X1 = np.meshgrid(x0, x1, indexing="ij")
    return np.stack([X0.ravel(), X1.ravel()], axis=-1), np.outer(w0, w1).ravel()


def integrate(
    fn: Callable[[np.ndarray], np.ndarray],
    dists: Iterable[Distribution],
    *,
    extra: Sequence[Components] = (),
    breaks: Sequence[float] = (),
    chunk: int = 1 << 18,
) -> float:
    """Integral of ``fn`` over the support of ``dists`` on a :func:`panel_grid`, in chunks."""
    x, w = panel_grid(list(dists), extra=extra, breaks=breaks)
    total = 0.0
    for i in range(0, len(w), chunk):
        total += float(np.dot(w[i : i + chunk], fn(x[i : i + chunk])))
    return total


def integrate_pair(
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    p: Distribution,
    q: Distribution,
    *,
    extra: Sequence[Components] = (),
    breaks: Sequence[float] = (),
    chunk: int = 1 << 18,
) -> float:
    """Integral of ``fn(log p(x), log q(x))`` on a :func:`panel_grid`, after checking the grid.

    The same grid must integrate ``p`` and ``q`` to 1 within ``MASS_TOL``; otherwise it does not
    resolve them and the result could be impossible (a total variation above 1): ``ValueError``.
    """
    return integrate_pairs((fn,), p, q, extra=extra, breaks=breaks, chunk=chunk)[0]


def _dot(w: np.ndarray, values: np.ndarray) -> float:
    """``w @ values`` in numpy's own loop: BLAS would spread a long dot product over threads, which on a
    busy machine wait for a free core (and the sum would depend on the thread count)."""
    return float(np.einsum("i,i->", w, values))


def integrate_pairs(
    fns: Sequence[Callable[[np.ndarray, np.ndarray], np.ndarray]],
    p: Distribution,
    q: Distribution,
    *,
    extra: Sequence[Components] = (),
    breaks: Sequence[float] = (),
    chunk: int = 1 << 18,
) -> tuple[float, ...]:
    """:func:`integrate_pair` of several integrands on one grid: the grid and both log-densities computed once,
    each integral the same sums (to the last bit) as its own ``integrate_pair``."""
    x, w = panel_grid([p, q], extra=extra, breaks=breaks)
    totals, mass_p, mass_q = [0.0] * len(fns), 0.0, 0.0
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        for i in range(0, len(w), chunk):
            wi, xi = w[i : i + chunk], x[i : i + chunk]
            lp, lq = p.log_prob(xi), q.log_prob(xi)
            mass_p += _dot(wi, np.exp(lp))
            mass_q += _dot(wi, np.exp(lq))
            for j, fn in enumerate(fns):
                totals[j] += _dot(wi, fn(lp, lq))
    for name, mass in (("teacher", mass_p), ("student", mass_q)):
        if not abs(mass - 1.0) <= MASS_TOL:
            raise ValueError(
                f"quadrature does not resolve the {name} (the grid integrates it to {mass:.9g}, not 1); "
                "use method='mc'"
            )
    return tuple(totals)


def standard_frame(dists: Sequence[Distribution]) -> list[Distribution]:
    """The same distributions after one common shift and scale (x - c) / s, as new objects.

    Every divergence is invariant under a common invertible affine map, so integrals are done
    here: the centre ``c`` minimises the components' reach and ``s`` is the geometric mean of the
    smallest and largest std, so densities of stds 1e-300 or 1e300 neither overflow nor underflow.
    """
    from kl_core.distributions import Gaussian, GaussianMixture

    mu, _ = _components(dists)
    chols = [np.asarray(d._chol) for d in dists]  # type: ignore[attr-defined]
    d = mu.shape[1]
    diag = np.concatenate([np.abs(np.diagonal(c, axis1=1, axis2=2)).ravel() for c in chols])
    scale = math.sqrt(float(diag.min())) * math.sqrt(float(diag.max()))
    if d == 1:
        spread = np.concatenate([c[:, 0, 0] for c in chols])[:, None]
    else:
        spread = np.concatenate([_spreads(np.asarray(x.components()[2]))[1] for x in dists])
    centre = _check_reach(mu, spread)
    out = []
    for dist, chol in zip(dists, chols):
        w, m, cov = dist.components()  # type: ignore[attr-defined]
        m2 = (m - centre) / scale
        if d == 1:
            s2 = chol[:, 0, 0] / scale
            one = isinstance(dist, Gaussian)
            out.append(Gaussian(float(m2[0, 0]), float(s2[0])) if one else GaussianMixture(w, m2[:, 0], s2))
        else:
            c2 = cov / (scale * scale)
            one = isinstance(dist, Gaussian)
            out.append(Gaussian(mean=m2[0], cov=c2[0]) if one else GaussianMixture(w, m2, covs=c2))
    return out


def roots(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> list[float]:
    """Zeros of a smooth 1-D function: sign changes between consecutive points of ``x``, then Brent.

    Used to put panel edges on kinks (|p - q| for total variation, indicator edges for masses).
    """
    from scipy.optimize import brentq

    h = fn(x)
    flips = np.nonzero(np.sign(h[:-1]) * np.sign(h[1:]) < 0)[0]
    f = lambda t: float(fn(np.array([t]))[0])  # noqa: E731
    return [brentq(f, x[i], x[i + 1], xtol=1e-14, rtol=1e-15) for i in flips]
