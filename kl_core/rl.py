"""Reverse KL as reinforcement learning: gradient estimators, the KL-regularised optimum, k1/k2/k3, PPO.

Four connections, each a small exact computation plus its sampled counterpart (teacher = T,
student = S; argument order (teacher, student) as everywhere in kl_core):

1. **Reverse KL is maximum-entropy RL.** ``KL(S||T) = -E_S[log T] - H(S)``: maximising the reward
   ``log T(x)`` plus the entropy bonus. Its gradient can be estimated from student samples by the
   pathwise (reparameterisation) estimator or the score-function (REINFORCE) estimator, without a
   baseline or with a leave-one-out baseline (:func:`gradient_estimates`, :func:`gradient_study`,
   :func:`train`).
2. **KL-regularised RL (the RLHF objective).** ``max_S E_S[r] - beta KL(S||ref)`` is solved by
   ``pi* = ref exp(r / beta) / Z`` (:func:`optimal_policy`), because
   ``E_S[r] - beta KL(S||ref) = -beta KL(S||pi*) + beta log Z``: the RL fit *is* the reverse-KL fit
   to ``pi*`` (:func:`regularised_fits`).
3. **The k1/k2/k3 KL estimators** (Schulman 2020, "Approximating KL divergence") and what their
   gradients estimate when used as a loss on detached on-policy samples
   (:func:`kl_estimator_moments`, :func:`kl_estimator_sweep`, :func:`surrogate_gradients`).
4. **PPO with a KL penalty** on a categorical bandit (:func:`ppo_bandit`).

Everything is numpy; randomness is an explicit ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_softmax, logsumexp

from kl_core.distributions import Categorical, FactorizedCategorical, Gaussian, GaussianMixture, Seed, as_generator
from kl_core.fitting import adam
from kl_core.tokens import kl_estimate

__all__ = [
    "ESTIMATORS",
    "KL_ESTIMATORS",
    "KL_PENALTIES",
    "GaussianProblem",
    "CategoricalProblem",
    "gradient_estimates",
    "GradientStudy",
    "gradient_study",
    "TrainingCurve",
    "train",
    "SETTINGS",
    "demo_problem",
    "training_curves",
    "demo_study",
    "optimal_policy",
    "regularised_objective",
    "forward_regularised_policy",
    "table_kl",
    "Bandit",
    "bandit",
    "RestrictedFit",
    "RegularisedFits",
    "regularised_fits",
    "kl_estimator_moments",
    "EstimatorSamples",
    "kl_estimator_samples",
    "EstimatorSweep",
    "kl_estimator_sweep",
    "SurrogateGradients",
    "surrogate_gradients",
    "PPORun",
    "ppo_bandit",
    "ppo_demo",
]

ESTIMATORS = ("pathwise", "score", "score_loo")  # gradient estimators of KL(S||T) from student samples
KL_ESTIMATORS = ("k1", "k2", "k3")
KL_PENALTIES = ("exact", "k1_reward", "k3_loss")
_LOG_2PI = math.log(2.0 * math.pi)


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (low < value if open_low else low <= value) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be a number in {bracket}{low:g}, {high:g}], got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------
# 1. Reverse KL is maximum-entropy RL: gradient estimators
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GaussianProblem:
    """KL(S||T) for a 1-D Gaussian student S = N(mean, exp(log_std)) against a 1-D teacher T.

    Parameters ``theta = (mean, log_std)``. Exact values integrate over the student's standardised
    coordinate ``z = (x - mean) / std`` in [-10, 10] by the trapezoid rule, with at least 4 points per
    teacher std (the rule converges exponentially on such smooth Gaussian-weighted integrands).
    """

    teacher: Gaussian | GaussianMixture
    param_names: tuple[str, ...] = ("mean", "log_std")
    has_pathwise: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.teacher, (Gaussian, GaussianMixture)) or not self.teacher.univariate:
            raise ValueError(f"teacher must be a 1-D Gaussian or GaussianMixture, got {self.teacher!r}")
        w, mu, cov = self.teacher.components()
        sd = np.sqrt(cov[:, 0, 0])
        object.__setattr__(self, "_finest", float(sd.min()))
        object.__setattr__(self, "_components", (np.log(w) - np.log(sd) - 0.5 * _LOG_2PI, mu[:, 0], sd))

    def teacher_log_prob(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log T(x), d log T / dx) at points of any shape (the mixture's maths, vectorised over x)."""
        log_norm, mu, sd = self._components
        u = (x[..., None] - mu) / sd  # (..., K)
        logn = log_norm - 0.5 * u * u
        top = logn.max(-1, keepdims=True)
        e = np.exp(logn - top)
        total = e.sum(-1)
        return top[..., 0] + np.log(total), -(e * (u / sd)).sum(-1) / total

    def _nodes(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        h = min(0.025, self._finest / (4.0 * s))
        count = 1 << int(np.ceil(np.log2(min(20.0 / h, 40_000))))  # a power of two: rows share grids
        z = np.linspace(-10.0, 10.0, count + 1)
        w = np.exp(-0.5 * z * z) * (z[1] - z[0]) / math.sqrt(2.0 * math.pi)  # E[f(eps)] = sum w f(z)
        return z, w

    def student(self, theta: np.ndarray) -> Gaussian:
        return Gaussian(float(theta[0]), math.exp(float(theta[1])))

    def exact(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """(KL(S||T), its gradient (2,)): KL = -H(S) - E[log T], H(S) = log s + (1 + log 2 pi) / 2."""
        m, log_s = float(theta[0]), float(theta[1])
        s = math.exp(log_s)
        z, w = self._nodes(s)
        x = m + s * z
        log_t, dlog_t = self.teacher_log_prob(x)
        entropy = log_s + 0.5 * (1.0 + _LOG_2PI)
        kl = -entropy - float(w @ log_t)
        grad = np.array([-(w @ dlog_t), -(w @ (dlog_t * s * z)) - 1.0])
        return kl, grad

    def kl_path(self, thetas: np.ndarray) -> np.ndarray:
        """KL(S||T) at many parameter rows (S, 2) at once: (S,); rows that need the same grid share it."""
        s = np.exp(thetas[:, 1])
        out = np.empty(len(thetas))
        sizes = np.array([self._nodes(v)[0].size for v in s])
        for size in np.unique(sizes):
            rows = sizes == size
            z, w = self._nodes(float(s[rows].max()))
            log_t = self.teacher_log_prob(thetas[rows, :1] + s[rows, None] * z)[0]  # (rows, Z)
            out[rows] = -(thetas[rows, 1] + 0.5 * (1.0 + _LOG_2PI)) - log_t @ w
        return out

    def estimates(self, theta: np.ndarray, estimator: str, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
        """``reps`` independent estimates of the gradient, each from ``n`` student samples: (reps, 2)."""
        m, log_s = float(theta[0]), float(theta[1])
        s = math.exp(log_s)
        eps = rng.standard_normal((reps, n))
        x = m + s * eps
        if estimator == "pathwise":
            # d/dtheta [log S(x(theta)) - log T(x(theta))] with x = m + s eps: log S(x) = -log s - eps^2/2 - ...
            dlog_t = self.teacher_log_prob(x)[1]
            return np.stack([-dlog_t.mean(-1), -(dlog_t * s * eps).mean(-1) - 1.0], axis=-1)
        # score function: f(x) = log S(x) - log T(x), grad log S(x) = (eps / s, eps^2 - 1)
        f = -log_s - 0.5 * eps**2 - 0.5 * _LOG_2PI - self.teacher_log_prob(x)[0]
        score = np.stack([eps / s, eps**2 - 1.0], axis=-1)  # (reps, n, 2)
        return np.einsum("rn,rnp->rp", _advantage(f, estimator), score) / n


@dataclass(frozen=True, eq=False)
class CategoricalProblem:
    """KL(S||T) for a categorical student S = softmax(logits) against a categorical teacher T (K,).

    Parameters ``theta = logits`` (K,). Exact values by enumeration: with ``f = log S - log T``,
    ``KL = sum S f`` and ``dKL/dlogits = S (f - KL)``.
    """

    log_teacher: np.ndarray
    has_pathwise: bool = False

    def __post_init__(self) -> None:
        lt = np.asarray(self.log_teacher, dtype=float)
        if lt.ndim != 1 or lt.size < 2 or not np.all(np.isfinite(lt)):
            raise ValueError("log_teacher must be a finite 1-D vector of >= 2 log-probabilities (no zero entries)")
        lt = lt - logsumexp(lt)
        lt.setflags(write=False)
        object.__setattr__(self, "log_teacher", lt)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f"logit[{k}]" for k in range(self.log_teacher.size))

    def student(self, theta: np.ndarray) -> Categorical:
        return Categorical(logits=np.asarray(theta, float))

    def exact(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_s = _log_softmax(np.asarray(theta, float))
        s = np.exp(log_s)
        f = log_s - self.log_teacher
        kl = float(s @ f)
        return kl, s * (f - kl)

    def kl_path(self, thetas: np.ndarray) -> np.ndarray:
        """KL(S||T) at many parameter rows (S, K) at once: (S,)."""
        log_s = log_softmax(thetas, axis=-1)
        return (np.exp(log_s) * (log_s - self.log_teacher)).sum(-1)

    def estimates(self, theta: np.ndarray, estimator: str, n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
        if estimator == "pathwise":
            raise ValueError("estimator 'pathwise' needs a continuous student; a categorical has 'score', 'score_loo'")
        log_s = _log_softmax(np.asarray(theta, float))
        s = np.exp(log_s)
        a = _sample_categorical(s, (reps, n), rng)  # (reps, n)
        c = _advantage((log_s - self.log_teacher)[a], estimator) / n  # (reps, n)
        # sum_i c_i (onehot(a_i) - S): a weighted count minus S times the total weight
        counts = np.zeros((reps, s.size))
        np.add.at(counts, (np.repeat(np.arange(reps), n), a.ravel()), c.ravel())
        return counts - c.sum(-1, keepdims=True) * s


def _log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis (plain numpy: scipy's has ~30 us of overhead per call in the hot loops)."""
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _sample_categorical(p: np.ndarray, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(p)
    return np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), p.size - 1)


def _advantage(f: np.ndarray, estimator: str) -> np.ndarray:
    """The per-sample weight of the score: f itself, or f minus the leave-one-out mean of the others."""
    if estimator == "score":
        return f
    if estimator == "score_loo":
        n = f.shape[-1]
        if n < 2:
            raise ValueError("the leave-one-out baseline needs n >= 2 samples")
        return (f - f.mean(-1, keepdims=True)) * (n / (n - 1))  # f_i - mean_{j != i} f_j
    raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")


Problem = GaussianProblem | CategoricalProblem


def gradient_estimates(
    problem: Problem, theta: Any, estimator: str, n: int, reps: int = 1, seed: Seed = 0
) -> np.ndarray:
    """``reps`` independent Monte-Carlo estimates of the gradient of KL(S||T), each from ``n`` samples.

    Args:
        problem: a :class:`GaussianProblem` or :class:`CategoricalProblem`.
        theta: the student's parameters.
        estimator: ``"pathwise"`` (reparameterisation; Gaussian only), ``"score"`` (REINFORCE,
            ``mean_i f(x_i) grad log S(x_i)`` with ``f = log S - log T``, no baseline) or
            ``"score_loo"`` (REINFORCE with the leave-one-out baseline ``b_i = mean_{j!=i} f(x_j)``;
            unbiased because ``b_i`` does not depend on ``x_i``).
        n: samples per estimate (2 .. 10^6).
        reps: independent estimates (1 .. 10^5).
        seed: seeds the samples.

    Returns:
        (reps, P) estimates.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    _check_int("n", n, 2, 1_000_000)
    _check_int("reps", reps, 1, 100_000)
    return problem.estimates(np.asarray(theta, float), estimator, n, reps, as_generator(seed))


@dataclass(frozen=True, eq=False)
class GradientStudy:
    """Estimator variance against sample size, at one student.

    Attributes:
        sizes: (m,) samples per estimate.
        estimators: the E estimator names.
        exact: (P,) the exact gradient.
        mean: (E, m, P) the mean of the ``reps`` estimates.
        variance: (E, m) total variance (sum over parameters of each coordinate's variance).
        reps: independent estimates per (estimator, size).
    """

    sizes: np.ndarray
    estimators: tuple[str, ...]
    exact: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    reps: int


def gradient_study(
    problem: Problem, theta: Any, sizes: Any = (2, 4, 16, 64, 256, 1024), reps: int = 400, seed: Seed = 0
) -> GradientStudy:
    """Mean and variance of every applicable estimator at each sample size (``reps`` repetitions)."""
    theta = np.asarray(theta, float)
    sizes = np.asarray(sizes, dtype=int)
    names = tuple(e for e in ESTIMATORS if e != "pathwise" or problem.has_pathwise)
    rng = as_generator(seed)
    means, variances = [], []
    for e in names:
        est = [gradient_estimates(problem, theta, e, int(n), reps, rng) for n in sizes]
        means.append([g.mean(0) for g in est])
        variances.append([g.var(0, ddof=1).sum() for g in est])
    return GradientStudy(sizes, names, problem.exact(theta)[1], np.array(means), np.array(variances), reps)


@dataclass(frozen=True, eq=False)
class TrainingCurve:
    """One fit: the exact KL(S||T) and the parameters after each step (row 0 is the start)."""

    estimator: str
    kl: np.ndarray  # (steps + 1,)
    params: np.ndarray  # (steps + 1, P)


def train(
    problem: Problem,
    theta0: Any,
    estimator: str = "exact",
    steps: int = 300,
    lr: float = 0.05,
    n: int = 16,
    seed: Seed = 0,
) -> TrainingCurve:
    """Minimise KL(S||T) by Adam with the exact gradient or one estimator (``n`` samples per step).

    The log std of a Gaussian student is kept in [log 0.02, log 50].
    """
    if estimator != "exact" and estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be 'exact' or one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    _check_int("steps", steps, 0, 100_000)
    if estimator != "exact":
        _check_int("n", n, 2, 1_000_000)
    if estimator == "pathwise" and not problem.has_pathwise:
        raise ValueError("estimator 'pathwise' needs a continuous student; a categorical has 'score', 'score_loo'")
    opt = adam(lr)
    rng = as_generator(seed)
    theta = np.array(theta0, dtype=float)
    state = opt.init(theta)
    params = np.empty((steps + 1, theta.size))
    for t in range(steps + 1):
        params[t] = theta
        if t == steps:
            break
        if estimator == "exact":
            grad = problem.exact(theta)[1]
        else:
            grad = problem.estimates(theta, estimator, n, 1, rng)[0]
        theta, state = opt.update(theta, grad, state)
        if isinstance(problem, GaussianProblem):
            theta[1] = np.clip(theta[1], math.log(0.02), math.log(50.0))
    kls = problem.kl_path(params)
    return TrainingCurve(estimator, kls, params)


DEMO_TEACHER = GaussianMixture(weights=[0.35, 0.65], means=[-2.0, 2.5], stds=[0.8, 1.0])
DEMO_ARMS = np.linspace(-4.0, 4.0, 20)
SETTINGS = ("gaussian", "categorical")
DEMO_SIZES = (2, 8, 32, 128, 512)


def demo_problem(setting: str = "gaussian") -> tuple[Problem, np.ndarray]:
    """The page's problem and starting student: the teacher ``DEMO_TEACHER`` (two modes, at -2 and 2.5);
    ``"gaussian"``: the student N(-4, 0.5); ``"categorical"``: the teacher discretised on 20 arms in
    [-4, 4], the student's logits ``-(x + 2)^2 / 8`` (a broad bump on the left)."""
    if setting == "gaussian":
        return GaussianProblem(DEMO_TEACHER), np.array([-4.0, math.log(0.5)])
    if setting == "categorical":
        return CategoricalProblem(log_softmax(DEMO_TEACHER.log_prob(DEMO_ARMS))), -((DEMO_ARMS + 2.0) ** 2) / 8.0
    raise ValueError(f"setting must be one of {', '.join(SETTINGS)}, got {setting!r}")


def demo_study(setting: str = "gaussian", seed: int = 0, reps: int = 300, n: int | None = None) -> GradientStudy:
    """:func:`gradient_study` at the start of :func:`demo_problem`, for n = 2, 8, 32, 128, 512 (and ``n``:
    the page's own sample size, so its text quotes the n it trains with)."""
    problem, theta0 = demo_problem(setting)
    sizes = DEMO_SIZES if n is None else tuple(sorted({*DEMO_SIZES, int(n)}))
    return gradient_study(problem, theta0, sizes, reps, seed)


def training_curves(
    setting: str = "gaussian", n: int = 16, steps: int = 300, lr: float = 0.05, seed: int = 0
) -> tuple[TrainingCurve, ...]:
    """The exact-gradient fit and one fit per applicable estimator, all from the same start and seed."""
    problem, theta0 = demo_problem(setting)
    names = ("exact",) + tuple(e for e in ESTIMATORS if e != "pathwise" or problem.has_pathwise)
    return tuple(train(problem, theta0, e, steps, lr, n, seed) for e in names)


# ----------------------------------------------------------------------------------------------
# 2. KL-regularised RL: the optimum pi* = ref exp(r / beta) / Z
# ----------------------------------------------------------------------------------------------


def _table_inputs(log_reference: Any, reward: Any, log_weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lr_ = np.asarray(log_reference, dtype=float)
    r = np.asarray(reward, dtype=float)
    if lr_.shape != r.shape:
        raise ValueError(f"Shape mismatch: log_reference has shape {lr_.shape}, reward {r.shape}")
    if lr_.size == 0 or np.any(np.isnan(lr_)) or np.any(lr_ == np.inf) or np.all(np.isneginf(lr_)):
        raise ValueError("log_reference must be non-empty, without NaN or +inf, with a finite entry")
    if not np.all(np.isfinite(r)):
        raise ValueError("reward must be finite everywhere")
    lw = np.zeros_like(lr_) if log_weights is None else np.broadcast_to(np.asarray(log_weights, float), lr_.shape)
    if np.any(np.isnan(lw)) or np.any(lw == np.inf):
        raise ValueError("log_weights must not contain NaN or +inf")
    return lr_, r, lw


def optimal_policy(log_reference: Any, reward: Any, beta: float, *, log_weights: Any = None) -> np.ndarray:
    """The maximiser of ``E_pi[r] - beta KL(pi || ref)``: ``log pi* = log ref + r / beta - log Z``.

    Args:
        log_reference: log pi_ref on a table (categorical) or a grid (a log-density; -inf allowed).
        reward: r at the same points.
        beta: the KL coefficient, > 0.
        log_weights: log quadrature weights of a grid, so that ``sum exp(log pi* + log_weights) = 1``
            (pi* is then a density); None for a table (weights 1).

    Returns:
        The normalised log pi*, same shape as ``log_reference``.

    Examples:
        >>> np.exp(optimal_policy(np.log([0.5, 0.5]), [0.0, np.log(3.0)], 1.0)).round(6).tolist()
        [0.25, 0.75]
    """
    beta = _check_float("beta", beta, 0.0, 1e6, open_low=True)
    lr_, r, lw = _table_inputs(log_reference, reward, log_weights)
    logits = lr_ + r / beta  # Gibbs variational principle (Donsker–Varadhan)
    return logits - logsumexp(logits + lw)


def regularised_objective(
    log_policy: Any, log_reference: Any, reward: Any, beta: float, *, log_weights: Any = None
) -> float:
    """``E_pi[r] - beta KL(pi || ref)`` for a policy given as (normalised) log-probabilities."""
    beta = _check_float("beta", beta, 0.0, 1e6)
    lr_, r, lw = _table_inputs(log_reference, reward, log_weights)
    lp = np.asarray(log_policy, float)
    if lp.shape != lr_.shape:
        raise ValueError(f"Shape mismatch: log_policy has shape {lp.shape}, log_reference {lr_.shape}")
    mass = np.exp(lp + lw)
    with np.errstate(invalid="ignore"):
        kl_terms = np.where(mass > 0, mass * (lp - lr_), 0.0)
    return float(mass @ r.ravel() if mass.ndim == 1 else (mass * r).sum()) - beta * float(kl_terms.sum())


def table_kl(log_p: Any, log_q: Any) -> float:
    """KL(p || q) = sum p (log p - log q) of two tables given by normalised log-probabilities (0 log 0 = 0)."""
    lp, lq = np.asarray(log_p, float), np.asarray(log_q, float)
    if lp.shape != lq.shape:
        raise ValueError(f"Shape mismatch: log_p has shape {lp.shape}, log_q {lq.shape}")
    p = np.exp(lp)
    with np.errstate(invalid="ignore"):
        return float(np.where(p > 0, p * (lp - lq), 0.0).sum())


def forward_regularised_policy(log_reference: Any, reward: Any, beta: float) -> np.ndarray:
    """The maximiser of ``E_pi[r] - beta KL(ref || pi)`` on a table (forward KL to the reference).

    Stationarity gives ``pi_k = beta ref_k / (beta + c - r_k)`` with ``c = E_pi[r]``, the unique
    root with ``c > max_k r_k - beta`` of ``sum_k beta ref_k / (beta + c - r_k) = 1``. This is
    where PPO settles when k3 is used as a loss on on-policy samples (its gradient is the forward
    KL's; see :func:`surrogate_gradients`).
    """
    beta = _check_float("beta", beta, 0.0, 1e6, open_low=True)
    lr_, r, _ = _table_inputs(log_reference, reward, None)
    ref = np.exp(lr_ - logsumexp(lr_))
    live = ref > 0
    low = float(r[live].max()) - beta

    def excess(c: float) -> float:
        return float(np.sum(beta * ref[live] / (beta + c - r[live]))) - 1.0

    # excess falls from +inf (c -> low) to -1 (c -> inf): bracket the root in t = c - low > 0
    lo, hi = 1.0, 1.0
    while excess(low + lo) < 0:
        lo *= 0.5
    while excess(low + hi) > 0:
        hi *= 2.0
    c = low + brentq(lambda t: excess(low + t), lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    pi = np.where(live, beta * ref / (beta + c - r), 0.0)
    with np.errstate(divide="ignore"):
        return np.log(pi / pi.sum())


@dataclass(frozen=True, eq=False)
class Bandit:
    """A categorical bandit: K responses at positions ``x`` in [-1, 1], a reference policy and a reward.

    The reference is a two-bump mixture (0.6 at x = -0.5, 0.4 at x = +0.5, std 0.15) discretised
    on the arms; the reward is ``tilt * x`` (tilt > 0 favours the right-hand responses).
    """

    x: np.ndarray
    log_reference: np.ndarray
    reward: np.ndarray
    beta: float

    @property
    def log_optimum(self) -> np.ndarray:
        return optimal_policy(self.log_reference, self.reward, self.beta)

    @property
    def log_normaliser(self) -> float:
        """log Z = log sum ref exp(r / beta); the optimum's value is beta log Z."""
        return float(logsumexp(self.log_reference + self.reward / self.beta))

    def objective(self, log_policy: Any) -> float:
        """E_pi[r] - beta KL(pi || ref) of a policy given by its log-probabilities."""
        return regularised_objective(log_policy, self.log_reference, self.reward, self.beta)


def bandit(arms: int = 24, tilt: float = 1.0, beta: float = 0.5) -> Bandit:
    """The classroom bandit (see :class:`Bandit`) with ``arms`` in [2, 200], tilt in [-10, 10], beta > 0."""
    arms = _check_int("arms", arms, 2, 200)
    tilt = _check_float("tilt", tilt, -10.0, 10.0)
    beta = _check_float("beta", beta, 0.0, 1e6, open_low=True)
    x = np.linspace(-1.0, 1.0, arms)
    ref = GaussianMixture(weights=[0.6, 0.4], means=[-0.5, 0.5], stds=[0.15, 0.15])
    return Bandit(x, log_softmax(ref.log_prob(x)), tilt * x, beta)


# -- the restricted student: a "discretised Gaussian" over the arms, two parameters ----------------


def _bars_log_probs(theta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log S over the arms for S ~ exp(-(x - m)^2 / (2 s^2)), theta = (m, log s); and d logits/d theta (K, 2)."""
    m, s = theta[0], math.exp(theta[1])
    u = (x - m) / s
    logits = -0.5 * u * u
    return _log_softmax(logits), np.stack([u / s, u * u], axis=-1)


def _fit_bars(x: np.ndarray, grad_logits, theta0: np.ndarray, steps: int, lr: float) -> np.ndarray:
    """Adam on theta = (m, log s) given the gradient with respect to the logits; (steps + 1, 2)."""
    opt = adam(lr)
    theta = theta0.astype(float).copy()
    state = opt.init(theta)
    out = np.empty((steps + 1, 2))
    for t in range(steps + 1):
        out[t] = theta
        if t == steps:
            break
        log_s, jac = _bars_log_probs(theta, x)
        theta, state = opt.update(theta, jac.T @ grad_logits(log_s), state)
        theta[1] = np.clip(theta[1], math.log(0.01), math.log(10.0))
    return out


@dataclass(frozen=True, eq=False)
class RestrictedFit:
    """A two-parameter student (m, log s) over the arms: its parameters per step and final log-probabilities."""

    objective: str
    params: np.ndarray  # (steps + 1, 2)
    log_probs: np.ndarray  # (K,) at the end


@dataclass(frozen=True, eq=False)
class RegularisedFits:
    """Part 2 of the RL page.

    Attributes:
        bandit: the problem; ``bandit.log_optimum`` is pi*.
        rl_full: a full categorical student (logits) trained by sampled policy gradient on
            ``E_S[r] - beta KL(S||ref)`` (REINFORCE with a leave-one-out baseline on the per-sample
            reward ``r(x) - beta (log S(x) - log ref(x))``): final log-probabilities (K,).
        rl_full_kl: (steps + 1,) KL(S||pi*) of that student along the way.
        reverse_full: the full categorical fitted by ``kl_core.fit`` to minimise KL(S||pi*) (K,).
        restricted: the two-parameter student fitted by the RL objective (exact policy gradient),
            by reverse KL to pi* and by forward KL to pi* (reward-weighted regression).
    """

    bandit: Bandit
    rl_full: np.ndarray
    rl_full_kl: np.ndarray
    reverse_full: np.ndarray
    restricted: dict[str, RestrictedFit]


def regularised_fits(
    arms: int = 24,
    tilt: float = 1.0,
    beta: float = 0.5,
    steps: int = 300,
    lr: float = 0.05,
    n: int = 64,
    seed: int = 0,
) -> RegularisedFits:
    """Fit students to the KL-regularised objective and to pi* (see :class:`RegularisedFits`)."""
    from kl_core.fitting import fit

    b = bandit(arms, tilt, beta)
    _check_int("steps", steps, 1, 100_000)
    _check_int("n", n, 2, 100_000)
    log_opt = b.log_optimum

    # full categorical, RL by sampled policy gradient
    rng = as_generator(seed)
    opt = adam(lr)
    logits = np.zeros(arms)
    state = opt.init(logits)
    kl_path = np.empty(steps + 1)
    for t in range(steps + 1):
        log_s = _log_softmax(logits)
        kl_path[t] = float(np.exp(log_s) @ (log_s - log_opt))
        if t == steps:
            break
        s = np.exp(log_s)
        a = _sample_categorical(s, (n,), rng)
        reward = b.reward[a] - beta * (log_s[a] - b.log_reference[a])
        c = _advantage(reward[None], "score_loo")[0] / n
        ascent = np.bincount(a, weights=c, minlength=arms) - c.sum() * s
        logits, state = opt.update(logits, -ascent, state)
    rl_full = log_softmax(logits)

    reverse = fit(Categorical(logits=log_opt), FactorizedCategorical(shape=(arms,)), "reverse_kl", steps=steps, lr=lr)
    reverse_full = reverse.final[0].logits[0]

    # the restricted student, exact gradients on the table (from the same start)
    theta0 = np.array([0.0, math.log(0.5)])

    def rl_grad(log_s: np.ndarray) -> np.ndarray:  # -d/dlogits (E_S[R] ), R = r - beta (log S - log ref)
        s = np.exp(log_s)
        reward = b.reward - beta * (log_s - b.log_reference)
        return -s * (reward - s @ reward)  # policy gradient: E_S[(R - E_S R) grad log S]

    def reverse_grad(log_s: np.ndarray) -> np.ndarray:
        s = np.exp(log_s)
        f = log_s - log_opt
        return s * (f - s @ f)

    def forward_grad(log_s: np.ndarray) -> np.ndarray:  # d/dlogits KL(pi*||S) = S - pi*
        return np.exp(log_s) - np.exp(log_opt)

    restricted = {}
    for name, g in (("rl", rl_grad), ("reverse_kl", reverse_grad), ("forward_kl", forward_grad)):
        params = _fit_bars(b.x, g, theta0, steps, lr)
        restricted[name] = RestrictedFit(name, params, _bars_log_probs(params[-1], b.x)[0])
    return RegularisedFits(b, rl_full, kl_path, reverse_full, restricted)


# ----------------------------------------------------------------------------------------------
# 3. k1, k2, k3 for q = N(0, 1) (student), p = N(mu, 1) (teacher)
# ----------------------------------------------------------------------------------------------


def kl_estimator_moments(mu: float) -> dict[str, tuple[float, float]]:
    """Exact (mean, std) of k1, k2, k3 for x ~ q = N(0, 1), p = N(mu, 1).

    ``log r = mu x - mu^2 / 2 ~ N(-mu^2/2, mu^2)``, so with KL = mu^2/2:
    k1: mean KL, std |mu|; k2: mean KL + mu^4/8 (relative bias mu^2/4), variance
    ``(2 s^4 + 4 s^2 a^2) / 4`` with ``a = -mu^2/2, s^2 = mu^2``; k3: mean KL, variance
    ``e^{mu^2} - 1 - mu^2`` (Var r + Var log r - 2 Cov(r, log r), Cov = mu^2).
    """
    mu = _check_float("mu", mu, -20.0, 20.0)
    kl, var = 0.5 * mu * mu, mu * mu
    a = -kl
    k2_var = (2.0 * var * var + 4.0 * var * a * a) / 4.0  # Var of L^2 / 2 for L ~ N(a, var)
    return {
        "k1": (kl, abs(mu)),
        "k2": (kl + mu**4 / 8.0, math.sqrt(k2_var)),
        "k3": (kl, math.sqrt(max(math.expm1(mu * mu) - mu * mu, 0.0))),
    }


@dataclass(frozen=True, eq=False)
class EstimatorSamples:
    """``n`` per-sample values of k1, k2, k3 at one separation ``mu``: ``values`` (3, n)."""

    mu: float
    true_kl: float
    values: np.ndarray


def kl_estimator_samples(mu: float, n: int = 2000, seed: Seed = 0) -> EstimatorSamples:
    """k1, k2, k3 on ``n`` samples x ~ q = N(0, 1) against p = N(mu, 1), via ``kl_core.tokens.kl_estimate``."""
    mu = _check_float("mu", mu, -20.0, 20.0)
    _check_int("n", n, 1, 10_000_000)
    x = as_generator(seed).standard_normal(n)
    log_ratio = mu * x - 0.5 * mu * mu  # log p(x) - log q(x)
    return EstimatorSamples(mu, 0.5 * mu * mu, np.stack([kl_estimate(log_ratio, k) for k in KL_ESTIMATORS]))


@dataclass(frozen=True, eq=False)
class EstimatorSweep:
    """Bias and standard deviation of k1, k2, k3 over separations: ``bias``/``std`` are (3, m),
    measured by Monte Carlo on ``n`` samples; ``exact_bias``/``exact_std`` from the closed forms."""

    mus: np.ndarray
    true_kl: np.ndarray
    bias: np.ndarray
    std: np.ndarray
    exact_bias: np.ndarray
    exact_std: np.ndarray
    n: int


def kl_estimator_sweep(mus: Any = None, n: int = 20_000, seed: Seed = 0) -> EstimatorSweep:
    """Per-sample bias and std of k1/k2/k3 against mu (default 0.1 .. 3 in 30 steps)."""
    mus = np.linspace(0.1, 3.0, 30) if mus is None else np.asarray(mus, float)
    rng = as_generator(seed)
    bias, std = np.empty((3, mus.size)), np.empty((3, mus.size))
    exact_bias, exact_std = np.empty((3, mus.size)), np.empty((3, mus.size))
    for j, mu in enumerate(mus):
        s = kl_estimator_samples(float(mu), n, rng)
        bias[:, j] = s.values.mean(-1) - s.true_kl
        std[:, j] = s.values.std(-1, ddof=1)
        moments = kl_estimator_moments(float(mu))
        exact_bias[:, j] = [moments[k][0] - s.true_kl for k in KL_ESTIMATORS]
        exact_std[:, j] = [moments[k][1] for k in KL_ESTIMATORS]
    return EstimatorSweep(mus, 0.5 * mus**2, bias, std, exact_bias, exact_std, n)


@dataclass(frozen=True, eq=False)
class SurrogateGradients:
    """What differentiating k1/k2/k3 as a loss on detached student samples estimates.

    Student S = N(mean, std) with parameters (mean, log std), teacher T = N(mu, teacher_std).

    Attributes:
        mean: (3, 2) the average gradient of each estimator's mean over ``n`` samples x ~ S held
            fixed, differentiated through log S(x) only.
        se: (3, 2) its standard error.
        reverse_kl: (2,) the exact gradient of KL(S||T); forward_kl: (2,) that of KL(T||S); zero: (2,) zeros.
        matches: per estimator, which exact gradient its expectation equals: ``"zero"`` (k1: the
            score has mean zero), ``"reverse_kl"`` (k2) or ``"forward_kl"`` (k3); derived
            analytically, ``mean`` checks it numerically.
        mean_kl: (3,) the estimators' means (the KL(S||T) estimates).
    """

    mean: np.ndarray
    se: np.ndarray
    reverse_kl: np.ndarray
    forward_kl: np.ndarray
    zero: np.ndarray
    matches: tuple[str, ...]
    mean_kl: np.ndarray
    true_kl: float


# d/dtheta k(log r) with log r = log T - log S(theta): k1' = -1, k2' = log r, k3' = r - 1, times -grad log S
_SURROGATE_MATCH = {"k1": "zero", "k2": "reverse_kl", "k3": "forward_kl"}


def surrogate_gradients(
    mu: float,
    n: int = 100_000,
    seed: Seed = 0,
    *,
    student_mean: float = 0.0,
    student_std: float = 1.0,
    teacher_std: float = 1.0,
) -> SurrogateGradients:
    """Differentiate each k as a loss on fixed student samples and compare with the exact gradients.

    Per sample, with ``g = grad log S(x)``: ``grad k1 = g`` (mean 0), ``grad k2 = -(log r) g =
    (log S - log T) g`` (mean ``grad KL(S||T)``), ``grad k3 = (1 - r) g`` (mean
    ``E_S[g] - E_T[g] = -E_T[g] = grad KL(T||S)``).
    """
    mu = _check_float("mu", mu, -20.0, 20.0)
    _check_int("n", n, 2, 10_000_000)
    m, s = float(student_mean), _check_float("student_std", student_std, 0.0, 1e3, open_low=True)
    st = _check_float("teacher_std", teacher_std, 0.0, 1e3, open_low=True)
    x = m + s * as_generator(seed).standard_normal(n)
    u = (x - m) / s
    g = np.stack([u / s, u * u - 1.0], axis=-1)  # grad of log S(x) wrt (mean, log std), (n, 2)
    log_ratio = Gaussian(mu, st).log_prob(x) - Gaussian(m, s).log_prob(x)  # log T - log S
    dk = {"k1": np.ones(n), "k2": -log_ratio, "k3": -np.expm1(log_ratio)}  # dk/dlog S, per sample
    per = np.stack([dk[k][:, None] * g for k in KL_ESTIMATORS])  # (3, n, 2)
    # KL(S||T) = log(st/s) + (s^2 + (m - mu)^2) / (2 st^2) - 1/2, and KL(T||S) with the roles swapped
    reverse = np.array([(m - mu) / st**2, s * s / st**2 - 1.0])
    forward = np.array([(m - mu) / s**2, 1.0 - (st * st + (m - mu) ** 2) / s**2])
    mean_kl = np.array([kl_estimate(log_ratio, k).mean() for k in KL_ESTIMATORS])
    true_kl = math.log(st / s) + (s * s + (m - mu) ** 2) / (2 * st * st) - 0.5
    return SurrogateGradients(
        mean=per.mean(1),
        se=per.std(1, ddof=1) / math.sqrt(n),
        reverse_kl=reverse,
        forward_kl=forward,
        zero=np.zeros(2),
        matches=tuple(_SURROGATE_MATCH[k] for k in KL_ESTIMATORS),
        mean_kl=mean_kl,
        true_kl=true_kl,
    )


# ----------------------------------------------------------------------------------------------
# 4. PPO with a KL penalty on the bandit
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PPORun:
    """A PPO run on a :class:`Bandit`: the policy and diagnostics after each update (row 0: the start).

    Attributes:
        probs: (updates + 1, K) the policy.
        kl_reference: (updates + 1,) KL(pi || ref), exact.
        kl_optimum: (updates + 1,) KL(pi || pi*), exact.
        objective: (updates + 1,) E_pi[r] - beta KL(pi || ref), exact.
        clip_fraction: (updates,) share of sample-gradients zeroed by the clip, over all epochs.
        target: (K,) log of where this KL penalty leads: pi* for ``exact`` and ``k1_reward``, the
            forward-KL-regularised optimum for ``k3_loss`` (see :func:`forward_regularised_policy`).
    """

    bandit: Bandit
    kl_penalty: str
    probs: np.ndarray
    kl_reference: np.ndarray
    kl_optimum: np.ndarray
    objective: np.ndarray
    clip_fraction: np.ndarray
    target: np.ndarray

    @property
    def kl_target(self) -> np.ndarray:
        """(updates + 1,) KL(pi || target) after each update (equals ``kl_optimum`` unless k3 is the loss)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(self.probs > 0, self.probs * (np.log(self.probs) - self.target), 0.0)
        return terms.sum(-1)


def ppo_bandit(
    problem: Bandit,
    kl_penalty: str = "exact",
    updates: int = 100,
    batch: int = 128,
    epochs: int = 4,
    minibatches: int = 4,
    clip: float = 0.2,
    lr: float = 0.02,
    seed: Seed = 0,
) -> PPORun:
    """PPO (Schulman et al. 2017) with a KL penalty to the reference, on a categorical policy (logits).

    Each update samples ``batch`` arms from the old policy; the advantage is the reward minus the
    leave-one-out mean of the batch (no std normalisation: it would rescale beta). For ``epochs``
    passes over ``minibatches`` shuffled minibatches, Adam descends
    ``-mean min(rho A, clip(rho, 1 - eps, 1 + eps) A) + penalty`` with ``rho = pi / pi_old``.

    ``kl_penalty``:
        ``"exact"``: ``beta KL(pi || ref)`` on the whole table (differentiated exactly);
        ``"k1_reward"``: ``-beta (log pi_old - log ref)`` added to each sample's reward
        (InstructGPT / TRL PPO); both converge to pi*;
        ``"k3_loss"``: ``beta mean k3`` on the minibatch samples with ``r = ref / pi`` (GRPO); its
        gradient is the forward KL's, so PPO settles at :func:`forward_regularised_policy`, not pi*.
    """
    if kl_penalty not in KL_PENALTIES:
        raise ValueError(f"kl_penalty must be one of {', '.join(KL_PENALTIES)}, got {kl_penalty!r}")
    _check_int("updates", updates, 1, 10_000)
    _check_int("batch", batch, 2, 100_000)
    _check_int("epochs", epochs, 1, 100)
    _check_int("minibatches", minibatches, 1, batch // 2 if batch >= 2 else 1)
    clip = _check_float("clip", clip, 0.0, 1.0, open_low=True)
    opt = adam(lr)
    rng = as_generator(seed)
    b, beta = problem, problem.beta
    K = b.x.size
    log_opt = b.log_optimum
    target = log_opt if kl_penalty != "k3_loss" else forward_regularised_policy(b.log_reference, b.reward, beta)
    logits = np.array(b.log_reference, dtype=float)  # start at the reference, as RLHF does
    state = opt.init(logits)
    probs = np.empty((updates + 1, K))
    clipped = np.empty(updates)
    for u in range(updates + 1):
        log_pi = _log_softmax(logits)
        probs[u] = np.exp(log_pi)
        if u == updates:
            break
        a = _sample_categorical(probs[u], (batch,), rng)
        log_old = log_pi[a]
        reward = b.reward[a] - (beta * (log_old - b.log_reference[a]) if kl_penalty == "k1_reward" else 0.0)
        adv = _advantage(reward[None], "score_loo")[0]
        n_clipped = 0
        for _ in range(epochs):
            for idx in np.array_split(rng.permutation(batch), minibatches):
                log_pi = _log_softmax(logits)
                pi = np.exp(log_pi)
                ai, A = a[idx], adv[idx]
                rho = np.exp(log_pi[ai] - log_old[idx])
                # the min picks the clipped term (zero gradient) once rho has left [1-eps, 1+eps] in A's direction
                off = ((A > 0) & (rho > 1 + clip)) | ((A < 0) & (rho < 1 - clip))
                n_clipped += int(off.sum())
                c = np.where(off, 0.0, rho * A) / idx.size  # d surrogate / d log pi(a_i)
                grad = -(np.bincount(ai, weights=c, minlength=K) - c.sum() * pi)
                if kl_penalty == "exact":
                    f = log_pi - b.log_reference
                    grad += beta * pi * (f - pi @ f)
                elif kl_penalty == "k3_loss":  # d k3 / d log pi(a) = 1 - ref(a) / pi(a)
                    ck = beta * -np.expm1(b.log_reference[ai] - log_pi[ai]) / idx.size
                    grad += np.bincount(ai, weights=ck, minlength=K) - ck.sum() * pi
                logits, state = opt.update(logits, grad, state)
        clipped[u] = n_clipped / (batch * epochs)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_probs = np.log(probs)
        kl_ref = np.where(probs > 0, probs * (log_probs - b.log_reference), 0.0).sum(-1)
        kl_opt = np.where(probs > 0, probs * (log_probs - log_opt), 0.0).sum(-1)
    return PPORun(b, kl_penalty, probs, kl_ref, kl_opt, probs @ b.reward - beta * kl_ref, clipped, target)


def ppo_demo(
    arms: int = 24,
    tilt: float = 1.0,
    beta: float = 0.5,
    kl_penalty: str = "exact",
    updates: int = 100,
    batch: int = 128,
    epochs: int = 4,
    clip: float = 0.2,
    lr: float = 0.02,
    seed: int = 0,
) -> PPORun:
    """:func:`ppo_bandit` on :func:`bandit` ``(arms, tilt, beta)`` with 4 minibatches (plain arguments, for caching)."""
    return ppo_bandit(bandit(arms, tilt, beta), kl_penalty, updates, batch, epochs, 4, clip, lr, seed)
