"""Student parametrisations for fitting: unconstrained parameter vectors, log-densities, gradients.

A *family* turns a flat parameter vector into a student and gives, for a batch of S starts at
once, the student's log-density ``log q(x)`` and the vector-Jacobian products the estimators need:

* ``log_prob_vjp``  -- ``sum_x c(x) d log q(x) / d theta``            (exact and score-function)
* ``path_vjp``      -- ``sum_x c(x) . dx / d theta`` for reparameterised samples  (pathwise)
* ``grad_x``        -- ``d log q(x) / dx`` at samples                   (pathwise)

Gradients are derived by hand (the landscape and the animation need thousands of cheap steps;
a framework's per-call overhead would dominate), and tested against finite differences.

Parameters (per start):

* 1-D Gaussian mixture, K components: ``[weight_logit_k (if K > 1), mean_k, log_std_k]``;
  a 1-D Gaussian is K = 1: ``[mean, log_std]``.
* N-D Gaussian mixture: ``[weight_logit_k (if K > 1), mean_k (d), log_chol_diag_k (d),
  chol_offdiag_k (d(d-1)/2)]``, covariance ``L L^T`` with L lower triangular.
* FactorizedCategorical: the per-position logits, concatenated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax, logsumexp, ndtr

from kl_core.distributions import (
    Categorical,
    Distribution,
    FactorizedCategorical,
    Gaussian,
    GaussianMixture,
    _GaussianComponents,
)

__all__ = ["Family", "family_for", "LEARNABLE"]

_LOG_2PI = math.log(2.0 * math.pi)
_BOX_STDS = 5.0  # a continuous student stays this many stds inside the integration box

# which names `learn=` accepts, per family
LEARNABLE = {
    "gaussian_1d": ("weight", "mean", "std"),
    "gaussian_nd": ("weight", "mean", "std", "corr"),
    "factorized": ("logits",),
}


class Family:
    """Interface shared by the student families (see module docstring)."""

    kind: str
    n_params: int
    param_names: list[str]
    continuous: bool = True
    reparameterisable: bool = True

    def mask(self, learn: tuple[str, ...] | None) -> np.ndarray:
        """1.0 for learnable parameters, 0.0 for held-fixed ones."""
        allowed = LEARNABLE[self.kind]
        if learn is None:
            return np.ones(self.n_params)
        learn = (learn,) if isinstance(learn, str) else tuple(learn)
        bad = [n for n in learn if n not in allowed]
        if bad or not learn:
            raise ValueError(f"learn must be a non-empty subset of {allowed}, got {learn!r}")
        return np.array([1.0 if self._group(n) in learn else 0.0 for n in self.param_names])

    @staticmethod
    def _group(param_name: str) -> str:
        head = param_name.split("[")[0]
        return {"weight_logit": "weight", "mean": "mean", "log_std": "std", "log_chol_diag": "std"}.get(head, head)

    def spread(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(weights (S, K), smallest std of each component in any direction (S, K), precisions
        (S, K, d, d)) of every start's components; None for a discrete family."""
        return None

    def narrow(self, theta: np.ndarray, floor: float) -> np.ndarray | None:
        """(S,) True where a component of weight above 1e-3 has a std below ``floor`` (None: discrete)."""
        spread = self.spread(theta)
        if spread is None:
            return None
        w, std, _ = spread
        return np.any((w > 1e-3) & (std < floor), axis=-1)


class GaussianMixture1D(Family):
    """1-D Gaussian mixture (K = 1 is a Gaussian) with (weight logits, means, log stds)."""

    kind = "gaussian_1d"

    def __init__(self, n_components: int) -> None:
        self.K = int(n_components)
        self.n_logits = self.K if self.K > 1 else 0
        self.n_params = self.n_logits + 2 * self.K
        k = range(self.K)
        if self.K == 1:
            self.param_names = ["mean", "log_std"]
        else:
            self.param_names = (
                [f"weight_logit[{i}]" for i in k] + [f"mean[{i}]" for i in k] + [f"log_std[{i}]" for i in k]
            )

    # -- packing ---------------------------------------------------------------------------------
    def pack(self, student: _GaussianComponents) -> np.ndarray:
        w, mu, cov = student.components()
        theta = [np.log(w)] if self.K > 1 else []
        theta += [mu[:, 0], 0.5 * np.log(cov[:, 0, 0])]
        return np.concatenate(theta)

    def split(self, theta: np.ndarray):
        nl, K = self.n_logits, self.K
        logw = log_softmax(theta[..., :nl], axis=-1) if K > 1 else np.zeros(theta.shape[:-1] + (1,))
        return logw, theta[..., nl : nl + K], theta[..., nl + K :]

    def spread(self, theta: np.ndarray):
        logw, _, ls = self.split(theta)
        with np.errstate(over="ignore", under="ignore"):
            return np.exp(logw), np.exp(ls), np.exp(-2.0 * ls)[..., None, None]

    def narrow(self, theta: np.ndarray, floor: float) -> np.ndarray:
        if self.K == 1:  # one component of weight 1: only its std (the fit loop's per-step check)
            return np.exp(theta[:, 1]) < floor
        return super().narrow(theta, floor)

    def unpack(self, theta: np.ndarray) -> Distribution:
        logw, mu, ls = self.split(np.asarray(theta, float))
        if self.K == 1:
            return Gaussian(float(mu[0]), float(np.exp(ls[0])))
        return GaussianMixture(np.exp(logw), mu, np.exp(ls))

    # -- densities -------------------------------------------------------------------------------
    def log_prob(self, theta: np.ndarray, x: np.ndarray):
        """theta (S, P), x (G,) or (S, G) -> log q (S, G) and cached terms for the VJPs."""
        logw, mu, ls = self.split(theta)
        sig = np.exp(ls)
        xs = x[None, None, :] if x.ndim == 1 else x[:, None, :]
        z = (xs - mu[..., None]) * (1.0 / sig)[..., None]  # (S, K, G)
        if self.K == 1:
            lq = -0.5 * z[:, 0] * z[:, 0] - (ls + 0.5 * _LOG_2PI)
            return lq, (z, None, sig, logw)
        lc = -0.5 * z * z - (ls + 0.5 * _LOG_2PI - logw)[..., None]
        lq = logsumexp(lc, axis=1)
        r = np.exp(lc - lq[:, None, :])  # responsibilities (S, K, G)
        return lq, (z, r, sig, logw)

    def log_prob_vjp(self, theta: np.ndarray, aux, c: np.ndarray) -> np.ndarray:
        """sum_x c(x) d log q(x) / d theta for c (S, G) or (G,) -> (S, P)."""
        z, r, sig, logw = aux
        a = c[..., None, :] if r is None else c[..., None, :] * r  # (S, K, G), or (1, G) shared by starts
        az = a * z
        d_mu = az.sum(-1) / sig
        d_ls = (az * z).sum(-1) - a.sum(-1)  # (S, K)
        if self.K == 1:
            return np.concatenate([d_mu, d_ls], axis=-1)
        d_logit = a.sum(-1) - np.exp(logw) * c.sum(-1, keepdims=True)
        return np.concatenate([d_logit, d_mu, d_ls], axis=-1)

    # -- sampling and the pathwise derivative --------------------------------------------------
    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        logw, mu, ls = self.split(theta)
        S = theta.shape[0]
        if self.K == 1:
            comp = np.zeros((S, n), int)
        else:  # inverse-CDF draw of the component per start
            cdf = np.cumsum(np.exp(logw), axis=-1)
            comp = np.minimum((rng.random((S, n))[..., None] > cdf[:, None, :]).sum(-1), self.K - 1)
        eps = rng.standard_normal((S, n))
        return np.take_along_axis(mu, comp, 1) + np.take_along_axis(np.exp(ls), comp, 1) * eps

    def grad_x(self, theta: np.ndarray, aux) -> np.ndarray:
        z, r, sig, _ = aux
        g = -z / sig[..., None]
        return g[:, 0] if r is None else (r * g).sum(1)

    def path_vjp(self, theta: np.ndarray, x: np.ndarray, aux, cot: np.ndarray) -> np.ndarray:
        """sum_x cot(x) dx/dtheta, x drawn by `sample` (S, n).

        A mixture sample is not a smooth function of the weights through its component choice,
        so we use implicit reparameterisation (Figurnov et al. 2018): with F the CDF,
        dx/dtheta = -(dF/dtheta)(x) / q(x). For the location/scale parameters this is
        r_k(x) and r_k(x) (x - mu_k); for K = 1 it is the familiar 1 and sigma * eps.
        """
        z, r, sig, logw = aux
        _, mu, _ = self.split(theta)
        rr = np.ones_like(z) if r is None else r
        d_mu = (cot[:, None, :] * rr).sum(-1)
        d_ls = (cot[:, None, :] * rr * (x[:, None, :] - mu[..., None])).sum(-1)
        if self.K == 1:
            return np.concatenate([d_mu, d_ls], axis=-1)
        w = np.exp(logw)
        phi_cdf = ndtr(z)  # (S, K, n)
        F = (w[..., None] * phi_cdf).sum(1, keepdims=True)
        lq = logsumexp(-0.5 * z * z - (np.log(sig) + 0.5 * _LOG_2PI - logw)[..., None], axis=1, keepdims=True)
        dx_dlogit = -w[..., None] * (phi_cdf - F) * np.exp(-lq)
        d_logit = (cot[:, None, :] * dx_dlogit).sum(-1)
        return np.concatenate([d_logit, d_mu, d_ls], axis=-1)

    # -- starts and bounds --------------------------------------------------------------------
    def random_starts(self, teacher: _GaussianComponents, m: int, rng: np.random.Generator) -> np.ndarray:
        """m starts spread over the teacher's support: means uniform over mean +- 2 std,
        stds log-uniform in [1/4, 1] of the teacher's std (divided by K for mixtures)."""
        t_mean, t_std = float(teacher.mean), math.sqrt(float(teacher.variance))
        mu = rng.uniform(t_mean - 2 * t_std, t_mean + 2 * t_std, (m, self.K))
        ls = np.log(t_std / self.K) + rng.uniform(np.log(0.25), 0.0, (m, self.K))
        parts = [np.zeros((m, self.n_logits))] if self.K > 1 else []
        return np.concatenate(parts + [mu, ls], axis=-1)

    def clip(self, theta: np.ndarray, box: np.ndarray | None, scale: float) -> np.ndarray:
        """Keep every component inside the integration box (mean +- 5 std, so the quadrature sees
        all but 6e-7 of its mass) and its std within [1e-4, 1e3] x the teacher's scale."""
        nl, K = self.n_logits, self.K
        # np.minimum(np.maximum(.)) is np.clip's definition, minus its per-call overhead (every fit step)
        widest = math.log(1e3 * scale)
        if box is not None:
            lo, hi = box[0]
            widest = min(widest, math.log((hi - lo) / (2 * _BOX_STDS)))
        ls = np.minimum(np.maximum(theta[:, nl + K :], math.log(1e-4 * scale)), widest)
        if box is not None:
            reach = _BOX_STDS * np.exp(ls)
            theta[:, nl : nl + K] = np.minimum(np.maximum(theta[:, nl : nl + K], lo + reach), hi - reach)
        theta[:, nl + K :] = ls
        if nl:
            theta[:, :nl] = np.clip(theta[:, :nl] - theta[:, :nl].max(-1, keepdims=True), -50.0, 0.0)
        return theta


@dataclass
class _GridTerms:
    """What :meth:`GaussianMixtureND.log_prob` on a shared grid keeps for its vjp."""

    x: np.ndarray  # the grid (G, d)
    monomials: np.ndarray  # (F, G): 1, u_i, u_i u_j (i <= j), u = x - the grid's centre
    m: np.ndarray  # (S, K, d): the component means, centred like u
    resp: np.ndarray | None  # (S, K, G) responsibilities; None for one component
    Linv: np.ndarray  # (S, K, d, d)
    L: np.ndarray  # (S, K, d, d)
    logw: np.ndarray  # (S, K)


class GaussianMixtureND(Family):
    """N-D Gaussian mixture (K = 1 is a Gaussian) with Cholesky-factor covariances."""

    kind = "gaussian_nd"

    def __init__(self, dim: int, n_components: int) -> None:
        self.d, self.K = int(dim), int(n_components)
        self.n_logits = self.K if self.K > 1 else 0
        self.n_off = self.d * (self.d - 1) // 2
        self.n_params = self.n_logits + self.K * (2 * self.d + self.n_off)
        self.reparameterisable = self.K == 1
        self.tril = np.tril_indices(self.d, -1)
        names = [f"weight_logit[{k}]" for k in range(self.n_logits)]
        for head, size in (("mean", self.d), ("log_chol_diag", self.d), ("chol_offdiag", self.n_off)):
            names += [f"{head}[{k},{j}]" for k in range(self.K) for j in range(size)]
        self.param_names = names

    @staticmethod
    def _group(param_name: str) -> str:
        head = param_name.split("[")[0]
        return {"weight_logit": "weight", "mean": "mean", "log_chol_diag": "std", "chol_offdiag": "corr"}[head]

    def pack(self, student: _GaussianComponents) -> np.ndarray:
        w, mu, cov = student.components()
        chol = np.linalg.cholesky(cov)
        parts = [np.log(w)] if self.K > 1 else []
        parts += [
            mu.ravel(),
            np.log(np.diagonal(chol, axis1=1, axis2=2)).ravel(),
            chol[:, self.tril[0], self.tril[1]].ravel(),
        ]
        return np.concatenate(parts)

    def split(self, theta: np.ndarray):
        S = theta.shape[:-1]
        nl, K, d = self.n_logits, self.K, self.d
        logw = log_softmax(theta[..., :nl], axis=-1) if K > 1 else np.zeros(S + (1,))
        i = nl
        mu = theta[..., i : i + K * d].reshape(S + (K, d))
        i += K * d
        logdiag = theta[..., i : i + K * d].reshape(S + (K, d))
        i += K * d
        off = theta[..., i:].reshape(S + (K, self.n_off))
        L = np.zeros(S + (K, d, d))
        L[..., np.arange(d), np.arange(d)] = np.exp(logdiag)
        L[..., self.tril[0], self.tril[1]] = off
        return logw, mu, logdiag, L

    def spread(self, theta: np.ndarray):
        logw, _, _, L = self.split(theta)
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            sv = np.linalg.svd(L, compute_uv=False)  # (S, K, d): the std along each principal axis
            Linv = np.linalg.inv(np.where(np.isfinite(L), L, 0.0) + 0.0)
            prec = np.swapaxes(Linv, -1, -2) @ Linv
        return np.exp(logw), sv.min(-1), prec

    def unpack(self, theta: np.ndarray) -> Distribution:
        logw, mu, _, L = self.split(np.asarray(theta, float))
        cov = L @ np.swapaxes(L, -1, -2)
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
        if self.K == 1:
            return Gaussian(mean=mu[0], cov=cov[0])
        return GaussianMixture(np.exp(logw), mu, covs=cov)

    # Two ways to the log-densities. On a grid shared by every start (the exact estimator: x is (G, d)),
    # each component's log-density is a quadratic polynomial in x, so log q = coefficients (S, K, F)
    # times the grid's fixed monomials (F, G): one product per step instead of a dozen passes over (S, K, G)
    # arrays, and the gradient needs only the cotangent's moments against the same monomials (one product
    # with a vector per monomial). At per-start samples (Monte Carlo: x is (S, n, d)) the densities are
    # computed one coordinate at a time on contiguous (S, K, n) arrays.

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_monomials", None)  # a per-grid cache: never pickled with a Trajectory
        return state

    def _grid_monomials(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(monomials (F, G), centre (d,)) of a shared grid x (G, d): rows 1, u_i, then u_i u_j (i <= j),
        with u = x - centre (the box's centre, so the expanded quadratic loses little to cancellation).

        Kept for the last grid seen (a fit passes the same array at every step)."""
        cached = self.__dict__.get("_monomials")
        if cached is not None and cached[0] is x:
            return cached[1], cached[2]
        centre = 0.5 * (x.min(0) + x.max(0))
        u = x - centre  # (G, d)
        rows = [np.ones(len(x))] + [u[:, i] for i in range(self.d)]
        rows += [u[:, i] * u[:, j] for i in range(self.d) for j in range(i, self.d)]
        monomials = np.ascontiguousarray(np.stack(rows))  # (F, G)
        self._monomials = (x, monomials, centre)
        return monomials, centre

    def _precisions(self, Linv: np.ndarray) -> np.ndarray:
        """Sigma^{-1} = L^{-T} L^{-1}, (S, K, d, d)."""
        return np.swapaxes(Linv, -1, -2) @ Linv

    def log_prob(self, theta: np.ndarray, x: np.ndarray):
        """theta (S, P), x (G, d) or (S, G, d) -> log q (S, G) and cached terms (see log_prob_vjp)."""
        if x.ndim == 2:
            return self._grid_log_prob(theta, x)
        return self._sample_log_prob(theta, x)

    def _grid_log_prob(self, theta: np.ndarray, x: np.ndarray):
        """log q on a shared grid: log N(x) = c0 + b^T u - 1/2 u^T P u with u = x - centre, m = mu - centre,
        P the precision, b = P m and c0 = -1/2 m^T P m - log|L| - d/2 log 2 pi (+ log w)."""
        logw, mu, logdiag, L = self.split(theta)
        Linv = np.linalg.inv(L)  # (S, K, d, d), lower triangular
        P = self._precisions(Linv)
        monomials, centre = self._grid_monomials(x)
        m = mu - centre  # (S, K, d)
        b = np.einsum("skij,skj->ski", P, m)
        c0 = -0.5 * (m * b).sum(-1) - logdiag.sum(-1) - 0.5 * self.d * _LOG_2PI + logw  # (S, K)
        quad = [-0.5 * P[..., i, i] if i == j else -P[..., i, j] for i in range(self.d) for j in range(i, self.d)]
        coef = np.concatenate([c0[..., None], b, np.stack(quad, -1)], -1)  # (S, K, F)
        S = theta.shape[0]
        # einsum, not @: a (S K, F) x (F, G) product with F = 6 is slower through a threaded BLAS on a busy machine
        lc = np.einsum("sf,fg->sg", coef.reshape(S * self.K, -1), monomials).reshape(S, self.K, -1)  # (S, K, G)
        aux = _GridTerms(x, monomials, m, None, Linv, L, logw)
        if self.K == 1:
            return lc[:, 0], aux
        lq = logsumexp(lc, axis=1)
        aux.resp = np.exp(lc - lq[:, None, :])
        return lq, aux

    def _sample_log_prob(self, theta: np.ndarray, x: np.ndarray):
        """log q at per-start points x (S, n, d) (or shared ones, (n, d)).

        The cached ``z`` is L^{-1} (x - mu) stored coordinate first, (d, S, K, n)."""
        logw, mu, logdiag, L = self.split(theta)
        Linv = np.linalg.inv(L)  # (S, K, d, d), lower triangular
        coords = [x[..., j] for j in range(self.d)]  # (G,) or (S, G) each
        diff = [
            (c[None, None, :] if c.ndim == 1 else c[:, None, :]) - mu[:, :, j, None] for j, c in enumerate(coords)
        ]  # (S, K, G) each
        z = np.empty((self.d,) + diff[0].shape)
        for i in range(self.d):
            z[i] = Linv[:, :, i, 0, None] * diff[0]
            for j in range(1, i + 1):
                z[i] += Linv[:, :, i, j, None] * diff[j]
        lc = -0.5 * (z * z).sum(0)  # (S, K, G)
        lc -= (logdiag.sum(-1) + 0.5 * self.d * _LOG_2PI - logw)[..., None]
        if self.K == 1:
            return lc[:, 0], (z, None, Linv, L, logw)
        lq = logsumexp(lc, axis=1)
        return lq, (z, np.exp(lc - lq[:, None, :]), Linv, L, logw)

    def _assemble(self, d_logit, d_mu, dL, L):
        d_logdiag = np.diagonal(dL, axis1=-2, axis2=-1) * np.diagonal(L, axis1=-2, axis2=-1)
        d_off = dL[..., self.tril[0], self.tril[1]]
        S = d_mu.shape[0]
        parts = [d_logit] if self.K > 1 else []
        parts += [d_mu.reshape(S, -1), d_logdiag.reshape(S, -1), d_off.reshape(S, -1)]
        return np.concatenate(parts, axis=-1)

    def _precision_z(self, z: np.ndarray, Linv: np.ndarray) -> np.ndarray:
        """L^{-T} z = Sigma^{-1} (x - mu), coordinate first (d, S, K, G)."""
        y = np.empty_like(z)
        for j in range(self.d):
            y[j] = Linv[:, :, j, j, None] * z[j]
            for i in range(j + 1, self.d):
                y[j] += Linv[:, :, i, j, None] * z[i]
        return y

    def log_prob_vjp(self, theta: np.ndarray, aux, c: np.ndarray) -> np.ndarray:
        if isinstance(aux, _GridTerms):
            return self._grid_vjp(aux, c)
        z, r, Linv, L, logw = aux
        c = np.broadcast_to(c, z.shape[1:2] + z.shape[3:4])  # (S, G)
        a = c[:, None, :] if r is None else c[:, None, :] * r  # (S, K, G)
        y = self._precision_z(z, Linv)
        d_mu = np.stack([(a * y[j]).sum(-1) for j in range(self.d)], axis=-1)  # (S, K, d)
        A = a.sum(-1)
        # d log N / dL = L^{-T} (z z^T - I), weighted by a and summed over the grid
        az = [a * z[i] for i in range(self.d)]
        M = np.empty(A.shape + (self.d, self.d))
        for i in range(self.d):
            for j in range(i + 1):
                M[..., i, j] = M[..., j, i] = (az[i] * z[j]).sum(-1)
        M -= A[..., None, None] * np.eye(self.d)
        dL = np.swapaxes(Linv, -1, -2) @ M
        d_logit = A - np.exp(logw) * c.sum(-1, keepdims=True)
        return self._assemble(d_logit, d_mu, np.tril(dL), L)

    def _grid_vjp(self, aux: _GridTerms, c: np.ndarray) -> np.ndarray:
        """The same vjp from the weighted moments of the grid: with a = c (times the responsibilities),
        A = sum a, m1 = sum a u, m2 = sum a u u^T, the sums over the grid of a (x - mu) and
        a (x - mu)(x - mu)^T are m1 - A m and m2 - m1 m^T - m m1^T + A m m^T."""
        monomials, m, r, Linv, L, logw = aux.monomials, aux.m, aux.resp, aux.Linv, aux.L, aux.logw
        S, K, d = m.shape
        if r is None and c.ndim == 1:  # one cotangent for every start (forward KL: -w p)
            moments = np.broadcast_to(monomials @ c, (S, K, monomials.shape[0]))
        else:
            a = np.broadcast_to(c, (S, monomials.shape[1]))[:, None, :]  # (S, 1, G)
            a = a if r is None else a * r  # (S, K, G)
            a = a.reshape(S * K, -1)
            moments = np.stack([a @ row for row in monomials], -1).reshape(S, K, -1)  # (S, K, F), one gemv a row
        A, m1 = moments[..., 0], moments[..., 1 : 1 + d]
        m2 = np.empty((S, K, d, d))
        col = 1 + d
        for i in range(d):
            for j in range(i, d):
                m2[..., i, j] = m2[..., j, i] = moments[..., col]
                col += 1
        first = m1 - A[..., None] * m  # sum a (x - mu)
        outer = m1[..., :, None] * m[..., None, :]
        second = m2 - outer - np.swapaxes(outer, -1, -2) + A[..., None, None] * m[..., :, None] * m[..., None, :]
        d_mu = np.einsum("skij,skj->ski", self._precisions(Linv), first)
        # d log N / dL = L^{-T} (z z^T - I) with z = L^{-1} (x - mu), weighted by a and summed over the grid
        M = Linv @ second @ np.swapaxes(Linv, -1, -2) - A[..., None, None] * np.eye(d)
        dL = np.swapaxes(Linv, -1, -2) @ M
        total = np.broadcast_to(c, (S, monomials.shape[1])).sum(-1, keepdims=True) if c.ndim > 1 else c.sum()
        d_logit = A - np.exp(logw) * total
        return self._assemble(d_logit, d_mu, np.tril(dL), L)

    def _sample_terms(self, theta: np.ndarray, aux) -> tuple:
        """The per-point terms of :meth:`_sample_log_prob` (recomputed when ``aux`` is a grid's)."""
        if isinstance(aux, _GridTerms):
            return self._sample_log_prob(theta, np.broadcast_to(aux.x, (theta.shape[0],) + aux.x.shape))[1]
        return aux

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        logw, mu, _, L = self.split(theta)
        S = theta.shape[0]
        if self.K == 1:
            comp = np.zeros((S, n), int)
        else:
            cdf = np.cumsum(np.exp(logw), axis=-1)
            comp = np.minimum((rng.random((S, n))[..., None] > cdf[:, None, :]).sum(-1), self.K - 1)
        eps = rng.standard_normal((S, n, self.d))
        s_idx = np.arange(S)[:, None]
        return mu[s_idx, comp] + np.einsum("snij,snj->sni", L[s_idx, comp], eps)

    def grad_x(self, theta: np.ndarray, aux) -> np.ndarray:
        z, r, Linv, _, _ = self._sample_terms(theta, aux)
        g = -np.moveaxis(self._precision_z(z, Linv), 0, -1)  # (S, K, G, d)
        return g[:, 0] if r is None else (r[..., None] * g).sum(1)

    def path_vjp(self, theta: np.ndarray, x: np.ndarray, aux, cot: np.ndarray) -> np.ndarray:
        if self.K != 1:
            raise ValueError("gradient='pathwise' needs a single-Gaussian N-D student; use gradient='score'")
        z, _, _, L, logw = self._sample_terms(theta, aux)
        eps = np.moveaxis(z[:, :, 0], 0, -1)  # x = mu + L eps  =>  eps = L^{-1} (x - mu) = z, (S, n, d)
        d_mu = cot.sum(1)[:, None, :]
        dL = np.tril(np.einsum("sni,snj->sij", cot, eps))[:, None]
        return self._assemble(None, d_mu, dL, L)

    def random_starts(self, teacher: _GaussianComponents, m: int, rng: np.random.Generator) -> np.ndarray:
        t_mean = np.asarray(teacher.mean, float)
        t_std = np.sqrt(np.diag(teacher.cov))
        mu = rng.uniform(t_mean - 2 * t_std, t_mean + 2 * t_std, (m, self.K, self.d))
        logdiag = np.log(t_std / math.sqrt(self.K)) + rng.uniform(np.log(0.25), 0.0, (m, self.K, self.d))
        parts = [np.zeros((m, self.n_logits))] if self.K > 1 else []
        parts += [mu.reshape(m, -1), logdiag.reshape(m, -1), np.zeros((m, self.K * self.n_off))]
        return np.concatenate(parts, axis=-1)

    def clip(self, theta: np.ndarray, box: np.ndarray | None, scale: float) -> np.ndarray:
        """As the 1-D family: each component's marginal +- 5 std stays inside the box."""
        nl, Kd = self.n_logits, self.K * self.d
        sl = slice(nl + Kd, nl + 2 * Kd)
        theta[:, sl] = np.clip(theta[:, sl], math.log(1e-4 * scale), math.log(1e3 * scale))
        if box is not None:
            _, mu, _, L = self.split(theta)
            row = np.sqrt((L * L).sum(-1))  # marginal std per axis (S, K, d)
            width = box[:, 1] - box[:, 0]
            shrink = np.minimum(1.0, width / (2 * _BOX_STDS * row))  # rows of L scaled to fit
            L = L * shrink[..., None]
            reach = _BOX_STDS * row * shrink
            mu = np.clip(mu, box[:, 0] + reach, box[:, 1] - reach)
            S = theta.shape[0]
            theta[:, nl : nl + Kd] = mu.reshape(S, -1)
            theta[:, sl] = np.log(np.diagonal(L, axis1=-2, axis2=-1)).reshape(S, -1)
            theta[:, nl + 2 * Kd :] = L[..., self.tril[0], self.tril[1]].reshape(S, -1)
        if nl:
            theta[:, :nl] = np.clip(theta[:, :nl] - theta[:, :nl].max(-1, keepdims=True), -50.0, 0.0)
        return theta


class Factorized(Family):
    """FactorizedCategorical student: one logit vector per position."""

    kind = "factorized"
    continuous = False
    reparameterisable = False

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(int(v) for v in shape)
        self.offsets = np.concatenate([[0], np.cumsum(self.shape)])
        self.n_params = int(self.offsets[-1])
        self.param_names = [f"logits[{i}][{v}]" for i, n in enumerate(self.shape) for v in range(n)]

    @staticmethod
    def _group(param_name: str) -> str:
        return "logits"

    def pack(self, student: FactorizedCategorical) -> np.ndarray:
        return np.concatenate(student.logits)

    def parts(self, theta: np.ndarray) -> list[np.ndarray]:
        return [log_softmax(theta[..., a:b], axis=-1) for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def unpack(self, theta: np.ndarray) -> Distribution:
        return FactorizedCategorical(logits=[np.asarray(p) for p in self.parts(np.asarray(theta, float))])

    def log_prob(self, theta: np.ndarray, x: np.ndarray | None):
        """x None: every cell of the table, (S, C) in C order; else index tuples (S, n, m)."""
        parts = self.parts(theta)  # list of (S, V_i)
        S = theta.shape[0]
        if x is None:
            out = np.zeros((S,) + self.shape)
            for i, lp in enumerate(parts):
                idx = [slice(None)] + [None] * len(self.shape)
                idx[1 + i] = slice(None)
                out = out + lp[tuple(idx)]
            return out.reshape(S, -1), (parts, None)
        lq = sum(np.take_along_axis(lp, x[..., i], axis=1) for i, lp in enumerate(parts))
        return lq, (parts, x)

    def log_prob_vjp(self, theta: np.ndarray, aux, c: np.ndarray) -> np.ndarray:
        parts, x = aux
        S = theta.shape[0]
        c = np.broadcast_to(c, (S,) + c.shape[-1:]) if x is None else c
        total = c.sum(-1, keepdims=True)
        grads = []
        if x is None:
            table = c.reshape((S,) + self.shape)
            for i, lp in enumerate(parts):
                other = tuple(1 + j for j in range(len(self.shape)) if j != i)
                grads.append(table.sum(axis=other) - np.exp(lp) * total)
        else:
            for i, lp in enumerate(parts):
                onehot = x[..., i][..., None] == np.arange(self.shape[i])  # (S, n, V_i)
                grads.append(np.einsum("sn,snv->sv", c, onehot) - np.exp(lp) * total)
        return np.concatenate(grads, axis=-1)

    def sample(self, theta: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        cols = []
        for lp in self.parts(theta):
            cdf = np.cumsum(np.exp(lp), axis=-1)
            u = rng.random((theta.shape[0], n))
            cols.append(np.minimum((u[..., None] > cdf[:, None, :]).sum(-1), lp.shape[-1] - 1))
        return np.stack(cols, axis=-1)  # (S, n, m)

    def random_starts(self, teacher: Categorical, m: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(0.0, 1.5, (m, self.n_params))

    def clip(self, theta: np.ndarray, box: np.ndarray | None, scale: float) -> np.ndarray:
        for a, b in zip(self.offsets[:-1], self.offsets[1:]):
            block = theta[:, a:b]
            theta[:, a:b] = np.clip(block - block.max(-1, keepdims=True), -50.0, 0.0)
        return theta


def family_for(student: Distribution) -> Family:
    """The family that can represent ``student`` (its type and shape fix the family)."""
    if isinstance(student, FactorizedCategorical):
        return Factorized(student.shape)
    if isinstance(student, _GaussianComponents):
        if student.univariate:
            return GaussianMixture1D(student.n_components)
        return GaussianMixtureND(student.dim, student.n_components)
    raise ValueError(
        f"student must be a Gaussian, GaussianMixture or FactorizedCategorical, got {type(student).__name__}"
    )
