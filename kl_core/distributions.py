"""Teacher and student distributions: Gaussian, GaussianMixture, Categorical, FactorizedCategorical.

Every distribution is a small immutable value object holding read-only numpy arrays. It is
validated when it is built: a bad parameter raises ``ValueError`` naming the parameter and the
allowed range. Randomness is always an explicit ``seed`` (an int, a ``numpy.random.Generator``
or ``None`` for fresh entropy); the library never touches global random state.

Continuous distributions work on points ``x`` of shape ``(n,)`` in 1-D and ``(n, d)`` in N-D.
Discrete distributions work on index tuples of shape ``(n, ndim)`` (one column per table axis).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import log_softmax, logsumexp

__all__ = [
    "Distribution",
    "Gaussian",
    "GaussianMixture",
    "Categorical",
    "FactorizedCategorical",
    "MAX_COMPONENTS",
    "as_generator",
    "short",
]

MAX_COMPONENTS = 20
_LOG_2PI = math.log(2.0 * math.pi)

Seed = int | np.random.Generator | None
_ECHO = 40  # characters of a user's value that an error message echoes


def short(value: Any, limit: int = _ECHO) -> str:
    """``repr(value)`` cut to ``limit`` characters (then "…"): error messages never echo a 60 KB key."""
    try:
        big = isinstance(value, int) and abs(value) >= 10**limit
        text = f"<{value.bit_length()}-bit int>" if big else repr(value)
    except Exception:  # a repr that raises (or an int too long to print) is described, not shown
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_generator(seed: Seed) -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (returned as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, a numpy Generator or None, got {short(seed)}")
    return np.random.default_rng(seed)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _max_last(c: np.ndarray) -> np.ndarray:
    """``c.max(-1)``, the same numbers (NaN propagates), column by column: numpy's reduction over a short last
    axis (a mixture's K components at every point) is ~8x slower than K - 1 elementwise maxima."""
    if c.shape[-1] <= 1:
        return c.max(-1)
    top = c[..., 0].copy()
    for k in range(1, c.shape[-1]):
        np.maximum(top, c[..., k], out=top)
    return top


def _as_float_array(name: str, value: Any, ndim: int | None = None) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be numeric, in the float range (|x| < 1.8e308), got {short(value)}") from None
    if a.dtype == object or (a.size and isinstance(value, bool)):
        raise ValueError(f"{name} must be numeric, got {short(value)}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (no NaN or inf), got {short(value)}")
    return a


STD_RANGE = (1e-300, 1e300)  # standard deviations: their reciprocals stay finite
MEAN_LIMIT = 1e300  # |mean| <= this


def _check_positive(name: str, a: np.ndarray) -> None:
    lo, hi = STD_RANGE
    if np.any(a < lo) or np.any(a > hi):
        raise ValueError(f"{name} must be > 0 (allowed range: [{lo:g}, {hi:g}]), got {short(a.tolist())}")


def _check_mean(name: str, a: np.ndarray) -> None:
    if np.any(np.abs(a) > MEAN_LIMIT):
        raise ValueError(f"{name} must be in [-{MEAN_LIMIT:g}, {MEAN_LIMIT:g}], got {short(a.tolist())}")


def _check_cov(name: str, cov: np.ndarray) -> np.ndarray:
    """Validate a symmetric positive-definite matrix and return its Cholesky factor."""
    d = cov.shape[-1]
    if cov.shape[-2:] != (d, d):
        raise ValueError(f"{name} must be square, got shape {cov.shape}")
    if not np.allclose(cov, np.swapaxes(cov, -1, -2), rtol=1e-10, atol=1e-12):
        raise ValueError(f"{name} must be symmetric, got {short(cov.tolist())}")
    try:
        chol = np.linalg.cholesky(cov)
        diag = np.diagonal(chol, axis1=-2, axis2=-1)
        if not (np.all(np.isfinite(chol)) and np.all(diag >= STD_RANGE[0])):
            raise np.linalg.LinAlgError
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            if not np.all(np.isfinite(np.linalg.inv(chol))):
                raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{name} must be positive definite (all eigenvalues > 0), got {short(cov.tolist())}"
        ) from None
    return chol


def _normalised_weights(weights: Any, k: int | None = None) -> np.ndarray:
    w = _as_float_array("weights", weights, ndim=1)
    if w.size == 0:
        raise ValueError("weights must have at least 1 component, got 0")
    if w.size > MAX_COMPONENTS:
        raise ValueError(f"weights must have at most {MAX_COMPONENTS} components, got {w.size}")
    if k is not None and w.size != k:
        raise ValueError(f"Length mismatch: weights has {w.size} entries, means has {k}")
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0 (allowed range: [0, inf)), got {short(w.tolist())}")
    top = w.max()
    if top <= 0:
        raise ValueError("weights must sum to a positive number, got sum 0")
    w = w / top  # first by the largest: weights near 1.8e308 would overflow their sum
    return w / w.sum()


class Distribution:
    """Base of all distributions: value semantics (==, hash, pickle) over a few named arrays."""

    _fields: tuple[str, ...] = ()

    def _key(self) -> tuple:
        return tuple(np.asarray(getattr(self, f)).tobytes() for f in self._fields) + (type(self).__name__,)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in self._fields)

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        def fmt(v: Any) -> str:
            a = np.asarray(v)
            return repr(float(a)) if a.ndim == 0 else repr(np.round(a, 6).tolist())

        inner = ", ".join(f"{f}={fmt(getattr(self, f))}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_built", False):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:  # validated when first built: restore bit for bit
        for k, v in state.items():
            if isinstance(v, np.ndarray):
                v = _frozen(v)
            elif isinstance(v, tuple) and v and isinstance(v[0], np.ndarray):
                v = tuple(_frozen(a) for a in v)
            object.__setattr__(self, k, v)

    @property
    def is_discrete(self) -> bool:
        return isinstance(self, (Categorical, FactorizedCategorical))


# ----------------------------------------------------------------------------------------------
# Continuous: a Gaussian is the one-component case of a mixture; both share the maths below.
# ----------------------------------------------------------------------------------------------


class _GaussianComponents(Distribution):
    """Shared maths for Gaussian and GaussianMixture, stored as K weighted components.

    Internal arrays: ``_w`` (K,), ``_mu`` (K, d), ``_cov`` (K, d, d), ``_chol`` (K, d, d).
    ``dim`` is 1 for a univariate distribution (points shaped (n,)), d for N-D (points (n, d)).
    """

    univariate: bool
    _w: np.ndarray
    _mu: np.ndarray
    _cov: np.ndarray
    _chol: np.ndarray

    def _set_components(self, w: np.ndarray, mu: np.ndarray, cov: np.ndarray, chol: np.ndarray) -> None:
        object.__setattr__(self, "_w", _frozen(w))
        object.__setattr__(self, "_mu", _frozen(mu))
        object.__setattr__(self, "_cov", _frozen(cov))
        object.__setattr__(self, "_chol", _frozen(chol))
        object.__setattr__(self, "_prec_chol", _frozen(np.linalg.inv(chol)))  # L^{-1}, (K, d, d)
        object.__setattr__(self, "_log_det_half", _frozen(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)))

    # -- shape helpers ---------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self._mu.shape[1])

    @property
    def n_components(self) -> int:
        return int(self._w.shape[0])

    def _points(self, x: Any) -> np.ndarray:
        """Points as a (n, d) float array (1-D accepts any shape of scalars)."""
        x = np.asarray(x, dtype=float)
        if self.univariate:
            return x.reshape(-1, 1)
        if x.shape[-1] != self.dim:
            raise ValueError(f"Shape mismatch: points have last dimension {x.shape[-1]}, distribution has {self.dim}")
        return x.reshape(-1, self.dim)

    def _out_shape(self, x: Any) -> tuple[int, ...]:
        x = np.asarray(x)
        return x.shape if self.univariate else x.shape[:-1]

    # -- densities -------------------------------------------------------------------------
    def component_log_prob(self, x: Any) -> np.ndarray:
        """log(w_k N(x; mu_k, Sigma_k)) for every component: shape (*batch, K)."""
        pts = self._points(x)  # (n, d)
        if self.univariate:  # the hot path of figures and landscapes: no einsum
            z = (pts - self._mu[:, 0]) * self._prec_chol[:, 0, 0]  # (n, K)
            logn = -0.5 * z * z - (self._log_det_half + 0.5 * _LOG_2PI)
        else:  # per component, z = L^{-1} (x - mu) row by row: L^{-1} is lower triangular
            cols = [pts[:, j] for j in range(self.dim)]
            logn = np.empty((pts.shape[0], self.n_components))
            for k in range(self.n_components):
                diff = [c - m for c, m in zip(cols, self._mu[k])]
                sq = np.zeros(pts.shape[0])
                for i in range(self.dim):
                    z = self._prec_chol[k, i, 0] * diff[0]
                    for j in range(1, i + 1):
                        z += self._prec_chol[k, i, j] * diff[j]
                    sq += z * z
                logn[:, k] = -0.5 * sq
            logn -= self._log_det_half + 0.5 * self.dim * _LOG_2PI
        with np.errstate(divide="ignore"):
            out = logn + np.log(self._w)
        return out.reshape(*self._out_shape(x), self.n_components)

    def log_prob(self, x: Any) -> np.ndarray:
        """Log-density at x (shape (n,) in 1-D, (n, d) in N-D); returns shape (n,)."""
        c = self.component_log_prob(x)
        if self.n_components == 1:
            return c[..., 0]
        top = _max_last(c)
        return top + np.log(np.exp(c - top[..., None]).sum(-1))

    def prob(self, x: Any) -> np.ndarray:
        return np.exp(self.log_prob(x))

    def responsibilities(self, x: Any) -> np.ndarray:
        """Posterior probability of each component given x: shape (*batch, K)."""
        c = self.component_log_prob(x)
        return np.exp(c - logsumexp(c, axis=-1, keepdims=True))

    def grad_log_prob(self, x: Any) -> np.ndarray:
        """Gradient of log-density with respect to x (same shape as x)."""
        pts = self._points(x)
        r = self.responsibilities(pts.reshape(-1) if self.univariate else pts)  # (n, K)
        prec = np.einsum("kji,kjl->kil", self._prec_chol, self._prec_chol)  # Sigma^{-1} = L^-T L^-1
        g = np.zeros_like(pts)
        for k in range(self.n_components):
            g -= r[:, k : k + 1] * ((pts - self._mu[k]) @ prec[k])
        return g.reshape(np.asarray(x).shape)

    def cdf(self, x: Any) -> np.ndarray:
        """Cumulative distribution function (1-D only)."""
        if not self.univariate:
            raise ValueError("cdf is defined for 1-D distributions only")
        from scipy.special import ndtr

        x = np.asarray(x, dtype=float)
        z = (x[..., None] - self._mu[:, 0]) * self._prec_chol[:, 0, 0]
        return (ndtr(z) * self._w).sum(-1)

    # -- moments ---------------------------------------------------------------------------
    @property
    def mean(self) -> float | np.ndarray:
        m = self._w @ self._mu
        return float(m[0]) if self.univariate else m

    @property
    def cov(self) -> np.ndarray:
        """Covariance matrix (d, d): sum_k w_k (Sigma_k + (mu_k - mean)(mu_k - mean)^T).

        Centred, so that a Gaussian at 1e50 keeps its variance (the textbook E[x x^T] - mean mean^T cancels).
        """
        m = self._w @ self._mu
        dev = self._mu - m
        return np.einsum("k,kij->ij", self._w, self._cov + np.einsum("ki,kj->kij", dev, dev))

    @property
    def variance(self) -> float | np.ndarray:
        v = np.diagonal(self.cov)
        return float(v[0]) if self.univariate else v.copy()

    @property
    def stddev(self) -> float | np.ndarray:
        return np.sqrt(self.variance) if not self.univariate else math.sqrt(self.variance)

    # -- sampling --------------------------------------------------------------------------
    def sample(self, n: int, seed: Seed = None) -> np.ndarray:
        """n independent draws: shape (n,) in 1-D, (n, d) in N-D."""
        n = _check_n(n)
        rng = as_generator(seed)
        comp = rng.choice(self.n_components, size=n, p=self._w) if self.n_components > 1 else np.zeros(n, int)
        eps = rng.standard_normal((n, self.dim))
        x = self._mu[comp] + np.einsum("nij,nj->ni", self._chol[comp], eps)
        return x[:, 0] if self.univariate else x

    def entropy(self) -> float:
        """Differential entropy in nats: closed form for a Gaussian, quadrature for a mixture."""
        if self.n_components == 1:
            return float(0.5 * self.dim * (1.0 + _LOG_2PI) + self._log_det_half[0])
        from kl_core.quadrature import integrate

        return float(-integrate(lambda x: _xlogx_from_log(self.log_prob(x)), [self]))

    # -- bounds used to choose grids ------------------------------------------------------------
    def components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weights (K,), means (K, d), covariances (K, d, d)) as read-only arrays."""
        return self._w, self._mu, self._cov


def _xlogx_from_log(logp: np.ndarray) -> np.ndarray:
    """p log p from log p, with 0 log 0 = 0."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(logp), 0.0, np.exp(logp) * logp)


MAX_SAMPLES = 100_000_000  # draws per sample() call: the array is the caller's, but bounded
MAX_TABLE_CELLS = 1 << 24  # cells of a FactorizedCategorical's joint table


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"n must be a positive integer, at most {MAX_SAMPLES}, got {short(n)}")
    return int(n)


class Gaussian(_GaussianComponents):
    """A normal distribution: 1-D ``Gaussian(mean, std)`` or N-D ``Gaussian(mean=[...], cov=[[...]])``.

    Examples:
        >>> Gaussian(0.0, 1.0).entropy()  # 0.5 * log(2 pi e)
        1.4189385332046727
        >>> Gaussian(mean=[0.0, 1.0], cov=[[1.0, 0.5], [0.5, 2.0]]).dim
        2
    """

    def __init__(self, mean: Any = 0.0, std: Any = None, cov: Any = None) -> None:
        m = _as_float_array("mean", mean)
        _check_mean("mean", m)
        if m.ndim == 0:
            if cov is not None:
                raise ValueError("a 1-D Gaussian takes std, not cov (pass mean as a list for N-D)")
            s = _as_float_array("std", 1.0 if std is None else std, ndim=0)
            _check_positive("std", s)
            object.__setattr__(self, "univariate", True)
            object.__setattr__(self, "_fields", ("mean", "std"))
            with np.errstate(over="ignore", under="ignore"):  # a variance beyond the float range: the factor is kept
                var = s**2
            self._set_components(np.ones(1), m.reshape(1, 1), var.reshape(1, 1, 1), s.reshape(1, 1, 1))
        elif m.ndim == 1:
            if std is not None:
                raise ValueError("an N-D Gaussian takes cov, not std")
            if m.size == 0:
                raise ValueError("mean must have at least 1 dimension, got 0")
            c = _as_float_array("cov", np.eye(m.size) if cov is None else cov, ndim=2)
            if c.shape != (m.size, m.size):
                raise ValueError(f"Shape mismatch: cov has shape {c.shape}, mean has length {m.size}")
            chol = _check_cov("cov", c)
            object.__setattr__(self, "univariate", False)
            object.__setattr__(self, "_fields", ("mean", "cov"))
            self._set_components(np.ones(1), m[None], c[None], chol[None])
        else:
            raise ValueError(f"mean must be a scalar (1-D) or a vector (N-D), got shape {m.shape}")
        object.__setattr__(self, "_built", True)

    @property
    def std(self) -> float:
        if not self.univariate:
            raise AttributeError("an N-D Gaussian has cov, not std")
        return float(self._chol[0, 0, 0])

    def rsample(self, eps: Any) -> np.ndarray:
        """Reparameterised samples x = mean + L eps from standard-normal noise eps ((n,) or (n, d))."""
        eps = np.asarray(eps, dtype=float)
        if self.univariate:
            return self._mu[0, 0] + self._chol[0, 0, 0] * eps
        return self._mu[0] + eps @ self._chol[0].T

    def to_torch(self):  # pragma: no cover - thin interop
        """The same distribution as a ``torch.distributions`` object."""
        import torch

        if self.univariate:
            return torch.distributions.Normal(torch.tensor(self.mean), torch.tensor(self.std))
        return torch.distributions.MultivariateNormal(torch.tensor(self._mu[0]), torch.tensor(self._cov[0]))


class GaussianMixture(_GaussianComponents):
    """A weighted sum of Gaussians (at most 20 components); weights are normalised.

    1-D: ``GaussianMixture(weights, means, stds)``; N-D: ``GaussianMixture(weights, means=(K, d), covs=(K, d, d))``.

    Examples:
        >>> t = GaussianMixture(weights=[1, 1], means=[-3.0, 3.0], stds=[1.0, 1.0])
        >>> t.weights.tolist(), t.mean, t.variance
        ([0.5, 0.5], 0.0, 10.0)
    """

    def __init__(self, weights: Any, means: Any, stds: Any = None, covs: Any = None) -> None:
        mu = _as_float_array("means", means)
        _check_mean("means", mu)
        if mu.ndim == 1:
            if covs is not None:
                raise ValueError("a 1-D mixture takes stds, not covs (pass means with shape (K, d) for N-D)")
            w = _normalised_weights(weights, None)
            if mu.size != w.size:
                raise ValueError(f"Length mismatch: weights has {w.size} entries, means has {mu.size}")
            s = _as_float_array("stds", np.ones_like(mu) if stds is None else stds, ndim=1)
            if s.size != mu.size:
                raise ValueError(f"Length mismatch: stds has {s.size} entries, means has {mu.size}")
            _check_positive("stds", s)
            object.__setattr__(self, "univariate", True)
            object.__setattr__(self, "_fields", ("weights", "means", "stds"))
            with np.errstate(over="ignore", under="ignore"):
                var = s**2
            self._set_components(w, mu[:, None], var[:, None, None], s[:, None, None])
        elif mu.ndim == 2:
            if stds is not None:
                raise ValueError("an N-D mixture takes covs, not stds")
            w = _normalised_weights(weights, None)
            k, d = mu.shape
            if k != w.size:
                raise ValueError(f"Length mismatch: weights has {w.size} entries, means has {k}")
            if d == 0:
                raise ValueError("means must have at least 1 dimension per component, got 0")
            c = _as_float_array("covs", np.broadcast_to(np.eye(d), (k, d, d)) if covs is None else covs, ndim=3)
            if c.shape != (k, d, d):
                raise ValueError(f"Shape mismatch: covs has shape {c.shape}, expected {(k, d, d)}")
            chol = _check_cov("covs", c)
            object.__setattr__(self, "univariate", False)
            object.__setattr__(self, "_fields", ("weights", "means", "covs"))
            self._set_components(w, mu, c, chol)
        else:
            raise ValueError(f"means must have shape (K,) for 1-D or (K, d) for N-D, got {mu.shape}")
        object.__setattr__(self, "_built", True)

    @property
    def weights(self) -> np.ndarray:
        return self._w

    @property
    def means(self) -> np.ndarray:
        return self._mu[:, 0] if self.univariate else self._mu

    @property
    def stds(self) -> np.ndarray:
        if not self.univariate:
            raise AttributeError("an N-D mixture has covs, not stds")
        return np.sqrt(self._cov[:, 0, 0])

    @property
    def covs(self) -> np.ndarray:
        return self._cov

    def to_torch(self):  # pragma: no cover - thin interop
        import torch
        import torch.distributions as D

        mix = D.Categorical(probs=torch.tensor(self._w))
        if self.univariate:
            comp = D.Normal(torch.tensor(self.means), torch.tensor(self.stds))
        else:
            comp = D.MultivariateNormal(torch.tensor(self._mu), torch.tensor(self._cov))
        return D.MixtureSameFamily(mix, comp)


# ----------------------------------------------------------------------------------------------
# Discrete
# ----------------------------------------------------------------------------------------------


def _table_log_probs(probs: Any, logits: Any) -> np.ndarray:
    if (probs is None) == (logits is None):
        raise ValueError("pass exactly one of probs or logits")
    if probs is not None:
        p = _as_float_array("probs", probs)
        if p.ndim == 0 or p.size == 0:
            raise ValueError(f"probs must be a non-empty table, got shape {p.shape}")
        if np.any(p < 0):
            raise ValueError(f"probs must be >= 0 (allowed range: [0, inf)), got min {p.min()}")
        top = p.max()
        if top <= 0:
            raise ValueError("probs must sum to a positive number, got sum 0")
        p = p / top  # first by the largest: entries near 1.8e308 would overflow their sum
        with np.errstate(divide="ignore"):
            return np.log(p / p.sum())
    try:
        lg = np.asarray(logits, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"logits must be numeric and within the float range, got {short(logits)}") from None
    if lg.ndim == 0 or lg.size == 0:
        raise ValueError(f"logits must be a non-empty table, got shape {lg.shape}")
    if np.any(np.isnan(lg)) or np.any(lg == np.inf):
        raise ValueError("logits must not contain NaN or +inf (-inf marks an impossible outcome)")
    if np.all(np.isneginf(lg)):
        raise ValueError("logits must have at least one finite entry")
    return lg - logsumexp(lg)


class Categorical(Distribution):
    """A distribution over the cells of a table of any shape (all axes are the event).

    Examples:
        >>> c = Categorical(probs=[[0.5, 0.0], [0.0, 0.5]])
        >>> round(c.entropy(), 6)  # log 2
        0.693147
    """

    _fields = ("probs",)

    def __init__(self, probs: Any = None, logits: Any = None) -> None:
        object.__setattr__(self, "_logp", _frozen(_table_log_probs(probs, logits)))
        object.__setattr__(self, "_built", True)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._logp.shape

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self._logp)

    @property
    def log_probs(self) -> np.ndarray:
        """Log-probability of every cell, shape ``self.shape``; -inf for impossible cells."""
        return self._logp

    def log_prob(self, idx: Any) -> np.ndarray:
        """Log-probability of index tuples, shape (n, ndim) (or (n,) for a 1-axis table)."""
        return self._logp[_index_tuple(idx, self.shape)]

    def sample(self, n: int, seed: Seed = None) -> np.ndarray:
        """n index tuples, shape (n, ndim)."""
        n = _check_n(n)
        flat = as_generator(seed).choice(self._logp.size, size=n, p=self.probs.ravel())
        return np.stack(np.unravel_index(flat, self.shape), axis=-1)

    def entropy(self) -> float:
        return float(-_xlogx_from_log(self._logp).sum())

    def marginals(self) -> list[np.ndarray]:
        """Per-axis marginal probabilities."""
        p = self.probs
        axes = range(p.ndim)
        return [p.sum(axis=tuple(a for a in axes if a != i)) for i in axes]


class FactorizedCategorical(Distribution):
    """A product of independent categoricals, one per position: q(x) = prod_i q_i(x_i).

    Build from ``shape`` (uniform), or from per-position ``logits`` / ``probs`` (a sequence of
    vectors, one per position). This is the student that cannot represent correlations.

    Examples:
        >>> q = FactorizedCategorical(shape=(3, 2))
        >>> q.table().shape, float(q.table().sum())
        ((3, 2), 1.0)
    """

    _fields = ("logits",)

    def __init__(
        self,
        shape: Sequence[int] | None = None,
        logits: Sequence[Any] | None = None,
        probs: Sequence[Any] | None = None,
    ) -> None:
        given = sum(a is not None for a in (shape, logits, probs))
        if given != 1:
            raise ValueError("pass exactly one of shape, logits or probs")
        if shape is not None:
            shape = tuple(shape)
            if not shape or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in shape):
                raise ValueError(f"shape must be a non-empty sequence of positive integers, got {short(shape)}")
            if math.prod(int(v) for v in shape) > MAX_TABLE_CELLS:
                raise ValueError(f"shape must have at most {MAX_TABLE_CELLS} cells in all, got {short(shape)}")
            parts = [np.zeros(int(v)) for v in shape]
        else:
            raw = logits if logits is not None else probs
            if isinstance(raw, np.ndarray) and raw.ndim == 1:
                raw = [raw]
            if len(raw) == 0:
                raise ValueError("need at least one position")
            name = "logits" if logits is not None else "probs"
            parts = []
            for i, r in enumerate(raw):
                v = np.asarray(r, dtype=float)
                if v.ndim != 1 or v.size == 0:
                    raise ValueError(f"{name}[{i}] must be a non-empty vector, got shape {v.shape}")
                parts.append(_table_log_probs(v, None) if probs is not None else _table_log_probs(None, v))
        object.__setattr__(self, "_logq", tuple(_frozen(log_softmax(p)) for p in parts))
        object.__setattr__(self, "_built", True)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return len(self._logq) == len(other._logq) and all(
            np.array_equal(a, b) for a, b in zip(self._logq, other._logq)
        )

    def __hash__(self) -> int:
        return hash(tuple(a.tobytes() for a in self._logq))

    def __repr__(self) -> str:
        return f"FactorizedCategorical(probs={[np.round(np.exp(a), 6).tolist() for a in self._logq]})"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self._logq)

    @property
    def logits(self) -> list[np.ndarray]:
        """Normalised per-position log-probabilities."""
        return list(self._logq)

    def marginals(self) -> list[np.ndarray]:
        return [np.exp(a) for a in self._logq]

    @property
    def log_probs(self) -> np.ndarray:
        """Log-probability of every cell of the joint table, shape ``self.shape``."""
        out = np.zeros(self.shape)
        for i, a in enumerate(self._logq):
            idx = [None] * len(self.shape)
            idx[i] = slice(None)
            out = out + a[tuple(idx)]
        return out

    def table(self) -> np.ndarray:
        """The joint probability table, shape ``self.shape``."""
        return np.exp(self.log_probs)

    def log_prob(self, idx: Any) -> np.ndarray:
        ix = _index_tuple(idx, self.shape)
        return sum(a[i] for a, i in zip(self._logq, ix))

    def sample(self, n: int, seed: Seed = None) -> np.ndarray:
        n = _check_n(n)
        rng = as_generator(seed)
        cols = [rng.choice(a.size, size=n, p=np.exp(a)) for a in self._logq]
        return np.stack(cols, axis=-1)

    def entropy(self) -> float:
        return float(sum(-_xlogx_from_log(a).sum() for a in self._logq))


def _index_tuple(idx: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    ix = np.asarray(idx)
    if not np.issubdtype(ix.dtype, np.integer):
        raise ValueError(f"indices must be integers, got dtype {ix.dtype}")
    if ix.ndim == 1 and len(shape) == 1:
        ix = ix[:, None]
    if ix.ndim != 2 or ix.shape[1] != len(shape):
        raise ValueError(f"Shape mismatch: indices must have shape (n, {len(shape)}), got {ix.shape}")
    if np.any(ix < 0) or np.any(ix >= np.asarray(shape)):
        raise ValueError(f"indices out of range for table shape {shape}")
    return tuple(ix.T)
