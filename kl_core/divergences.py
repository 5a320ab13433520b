"""The registry of divergences between a teacher and a student, exact and Monte-Carlo.

Convention, obeyed everywhere in KL Lab:

    teacher = p (the target), student = q (the model being trained);
    argument order is always (teacher, student);
    forward_kl = KL(teacher || student)  (mode-covering),
    reverse_kl = KL(student || teacher)  (mode-seeking).

Every kind except ``akl`` is an f-divergence, written as one pointwise *integrand*
``g(log p, log q)`` with ``D = integral of g(log p(x), log q(x)) dx``. Each ``g`` is positively
homogeneous of degree one (``g(c p, c q) = c g(p, q)``), so the same function serves both paths:

* exact:        ``sum_i w_i g(log p(x_i), log q(x_i))`` over a quadrature grid or a whole table;
* Monte Carlo:  ``mean_j g(log p(x_j) - log r(x_j), log q(x_j) - log r(x_j))`` for ``x_j ~ r``.

Each kind also carries ``dg/dlog q``, which the fitting code chains with the student's score.
All maths is in log space; ``0 log 0 = 0``; a divergence that is infinite returns ``inf``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from kl_core.distributions import (
    Distribution,
    Gaussian,
    Seed,
    _GaussianComponents,
    as_generator,
    short,
)
from kl_core.quadrature import integrate_pair, integrate_pairs, panel_grid, roots, standard_frame

__all__ = [
    "Kind",
    "KINDS",
    "MCEstimate",
    "divergence",
    "integrand",
    "d_integrand",
    "resolve",
    "akl_weights",
    "kl_direction",
    "MAX_MC_SAMPLES",
]

MAX_MC_SAMPLES = 100_000_000  # n for method="mc": drawn in chunks of MC_CHUNK, so memory stays bounded
MC_CHUNK = 1 << 20

Array = np.ndarray
Integrand = Callable[..., Array]


@dataclass(frozen=True)
class Param:
    """One parameter of a divergence kind: its default and its allowed closed/open range."""

    default: float
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def check(self, kind: str, name: str, value: Any) -> float:
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        allowed = f"{lo}{self.low}, {self.high}{hi}"
        if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
            raise ValueError(f"{kind}: {name} must be a number in {allowed}, got {short(value)}")
        try:
            v = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{kind}: {name} must be a number in {allowed}, got {short(value)}") from None
        lo_ok = v > self.low if self.low_open else v >= self.low
        hi_ok = v < self.high if self.high_open else v <= self.high
        if not (math.isfinite(v) and lo_ok and hi_ok):
            raise ValueError(f"{kind}: {name} must be in {allowed}, got {short(value)}")
        return v


@dataclass(frozen=True)
class Kind:
    """A divergence kind: its integrand g(lp, lq), dg/dlq, parameters and default sampler."""

    name: str
    summary: str
    integrand: Integrand | None
    d_dlq: Integrand | None
    params: dict[str, Param] = field(default_factory=dict)
    sampler: str = "mixture"  # Monte-Carlo proposal: "teacher", "student" or "mixture" (half each)
    discrete_only: bool = False
    # (g, dg/dlq) in one pass for finite inputs (the fitting hot path); None: call both
    fused: Integrand | None = None

    def value_and_d(self, lp: Array, lq: Array, finite: bool = False, **par: float) -> tuple[Array, Array]:
        """(g, dg/dlq) together; ``finite=True`` promises no -inf in lp or lq (skips the masks)."""
        if finite and self.fused is not None:
            return self.fused(lp, lq, **par)
        return self.integrand(lp, lq, **par), self.d_dlq(lp, lq, **par)


KINDS: dict[str, Kind] = {}


def _register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def resolve(kind: str, params: dict[str, Any]) -> tuple[Kind, dict[str, float]]:
    """Look up a kind and validate its parameters (filling defaults); unknown names raise."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"unknown divergence kind {short(kind)}; valid kinds: {', '.join(KINDS)}")
    k = KINDS[kind]
    unknown = set(params) - set(k.params)
    if unknown:
        allowed = ", ".join(k.params) or "none"
        names = ", ".join(short(str(u)) for u in sorted(map(str, unknown))[:5])
        raise ValueError(f"{kind}: unknown parameter(s) {names}; allowed: {allowed}")
    return k, {n: p.check(kind, n, params.get(n, p.default)) for n, p in k.params.items()}


# ----------------------------------------------------------------------------------------------
# Integrands. lp = log p (teacher), lq = log q (student); both may hold -inf.
# ----------------------------------------------------------------------------------------------


def _xlog_ratio(la: Array, lb: Array) -> Array:
    """a * (log a - log b): 0 where a = 0, +inf where a > 0 = b."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(np.isneginf(la), 0.0, np.exp(la) * (la - lb))


def _log_mix(la: Array, lb: Array, a: float) -> Array:
    """log(a * A + (1 - a) * B) from log A, log B."""
    if a <= 0.0:
        return lb + 0.0
    if a >= 1.0:
        return la + 0.0
    return np.logaddexp(math.log(a) + la, math.log1p(-a) + lb)


def _forward_kl(lp: Array, lq: Array) -> Array:
    return _xlog_ratio(lp, lq)


def _d_forward_kl(lp: Array, lq: Array) -> Array:
    return -np.exp(lp)


def _reverse_kl(lp: Array, lq: Array) -> Array:
    return _xlog_ratio(lq, lp)


def _d_reverse_kl(lp: Array, lq: Array) -> Array:
    # d/dlq [q (lq - lp)] = q (lq - lp + 1)
    return _xlog_ratio(lq, lp) + np.exp(lq)


def _jsd(lp: Array, lq: Array, beta: float) -> Array:
    # generalized JSD (GKD, Agarwal et al. 2024): beta KL(p||m) + (1-beta) KL(q||m), m = beta p + (1-beta) q
    if beta == 0.0:
        return _forward_kl(lp, lq)
    if beta == 1.0:
        return _reverse_kl(lp, lq)
    lm = _log_mix(lp, lq, beta)
    return beta * _xlog_ratio(lp, lm) + (1.0 - beta) * _xlog_ratio(lq, lm)


def _d_jsd(lp: Array, lq: Array, beta: float) -> Array:
    if beta == 0.0:
        return _d_forward_kl(lp, lq)
    if beta == 1.0:
        return _d_reverse_kl(lp, lq)
    # the terms through log m cancel: d/dlq = (1-beta) q (lq - lm)
    return (1.0 - beta) * _xlog_ratio(lq, _log_mix(lp, lq, beta))


def _mix_gap(la: Array, lb: Array, w: float) -> Array:
    """log((1 - w) A + w B) - log A, 0 < w < 1: log1p(w expm1(lb - la)) where that is finite and exact."""
    with np.errstate(invalid="ignore", over="ignore"):
        gap = lb - la
        near = np.isfinite(gap) & (gap < 30.0)
        small = np.log1p(w * np.expm1(np.where(near, gap, 0.0)))
        large = np.logaddexp(math.log1p(-w) + la, math.log(w) + lb) - la
        return np.where(near, small, large)


def _jsd_scaled(lp: Array, lq: Array, beta: float) -> Array:
    # JSD_beta / (beta (1 - beta)): continuous in beta, forward KL at beta -> 0 and reverse KL at beta -> 1
    if beta == 0.0:
        return _forward_kl(lp, lq)
    if beta == 1.0:
        return _reverse_kl(lp, lq)
    with np.errstate(invalid="ignore"):
        teacher = np.where(np.isneginf(lp), 0.0, -np.exp(lp) * _mix_gap(lp, lq, 1.0 - beta))
        student = np.where(np.isneginf(lq), 0.0, -np.exp(lq) * _mix_gap(lq, lp, beta))
    return teacher / (1.0 - beta) + student / beta


def _d_jsd_scaled(lp: Array, lq: Array, beta: float) -> Array:
    if beta == 0.0:
        return _d_forward_kl(lp, lq)
    if beta == 1.0:
        return _d_reverse_kl(lp, lq)
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(lq), 0.0, -np.exp(lq) * _mix_gap(lq, lp, beta) / beta)


def _alpha(lp: Array, lq: Array, alpha: float) -> Array:
    # Amari alpha-divergence: 1/(a b) * [a p + b q - p^a q^b], b = 1 - a (Minka 2005, eq. 2)
    if alpha == 1.0:
        return _forward_kl(lp, lq)
    if alpha == 0.0:
        return _reverse_kl(lp, lq)
    a, b = alpha, 1.0 - alpha
    p, q = np.exp(lp), np.exp(lq)
    both = np.isfinite(lp) & np.isfinite(lq)
    d = np.where(both, lq - lp, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        # p^a q^b - p = p expm1(b d): written with expm1 so that a -> 1 (b -> 0) keeps its digits
        bd = b * d
        cross_minus_p = np.where(bd < 30.0, p * np.expm1(np.minimum(bd, 30.0)), np.exp(a * lp + b * lq) - p)
        finite = (b * (q - p) - cross_minus_p) / (a * b)
    # one side zero: p^a q^b is 0 (exponent > 0) or +inf (exponent < 0)
    only_q = q / a if a > 0 else np.inf  # p = 0 < q
    only_p = p / b if b > 0 else np.inf  # q = 0 < p
    out = np.where(both, finite, 0.0)
    out = np.where(np.isneginf(lp) & np.isfinite(lq), only_q, out)
    out = np.where(np.isneginf(lq) & np.isfinite(lp), only_p, out)
    return out


def _d_alpha(lp: Array, lq: Array, alpha: float) -> Array:
    if alpha == 1.0:
        return _d_forward_kl(lp, lq)
    if alpha == 0.0:
        return _d_reverse_kl(lp, lq)
    # d/dlq = (q - p^a q^b) / a = -q expm1(a (lp - lq)) / a
    with np.errstate(over="ignore", invalid="ignore"):
        v = -np.exp(lq) * np.expm1(alpha * (lp - lq)) / alpha
        # where q underflows under a ratio that overflows, 0 * inf: p^a q^b from its exponent instead
        # (a fit used to see NaN there, zero the start's whole gradient and freeze it)
        lost = np.isnan(v) & np.isfinite(lq) & np.isfinite(lp)
        if np.any(lost):
            v = np.where(lost, (np.exp(lq) - np.exp(alpha * lp + (1.0 - alpha) * lq)) / alpha, v)
    return np.where(np.isneginf(lq), 0.0, v)


def _skew_forward_kl(lp: Array, lq: Array, alpha: float) -> Array:
    # DistiLLM (Ko et al. 2024): KL(p || alpha p + (1-alpha) q)
    return _xlog_ratio(lp, _log_mix(lp, lq, alpha))


def _d_skew_forward_kl(lp: Array, lq: Array, alpha: float) -> Array:
    lm = _log_mix(lp, lq, alpha)
    with np.errstate(invalid="ignore"):
        v = -(1.0 - alpha) * np.exp(lp + lq - lm)
    return np.where(np.isneginf(lq) | np.isneginf(lp), 0.0, v)


def _skew_reverse_kl(lp: Array, lq: Array, alpha: float) -> Array:
    # DistiLLM: KL(q || alpha q + (1-alpha) p)
    return _xlog_ratio(lq, _log_mix(lq, lp, alpha))


def _d_skew_reverse_kl(lp: Array, lq: Array, alpha: float) -> Array:
    lm = _log_mix(lq, lp, alpha)
    with np.errstate(invalid="ignore"):
        share = np.exp(lq - lm) * alpha  # alpha q / m
    return np.where(np.isneginf(lq), 0.0, _xlog_ratio(lq, lm) + np.exp(lq) * (1.0 - share))


def _tv(lp: Array, lq: Array) -> Array:
    return 0.5 * np.abs(np.exp(lp) - np.exp(lq))


def _d_tv(lp: Array, lq: Array) -> Array:
    return -0.5 * np.sign(np.exp(lp) - np.exp(lq)) * np.exp(lq)


# Fused (g, dg/dlq) for finite lp and lq: the fitting hot path (one exp per density, no masks).
# numpy's vectorised exp leaves its fast path for every argument whose result is subnormal or 0
# (3-70x slower, and a wide grid is mostly such tails): densities are taken as exp(max(l, -700)).
# A density below e^-700 = 1e-304 then reads 1e-304, which changes no term by more than 1e-296.
# (jsd and tv take the teacher's p = _density(lp) precomputed, when a caller has it.)
EXP_FLOOR = -700.0


def _density(log_density: Array) -> Array:
    if log_density.min() < EXP_FLOOR:  # a min is cheaper than the floor: floor only where it helps
        return np.exp(np.maximum(log_density, EXP_FLOOR))
    return np.exp(log_density)


def _fused_forward_kl(lp: Array, lq: Array) -> tuple[Array, Array]:
    p = np.exp(lp)
    return p * (lp - lq), np.broadcast_to(-p, np.broadcast_shapes(np.shape(lp), np.shape(lq)))


def _fused_reverse_kl(lp: Array, lq: Array) -> tuple[Array, Array]:
    q = _density(lq)
    g = q * (lq - lp)
    return g, g + q


def _fused_jsd(lp: Array, lq: Array, beta: float, p: Array | None = None) -> tuple[Array, Array]:
    if beta == 0.0:
        return _fused_forward_kl(lp, lq)
    if beta == 1.0:
        return _fused_reverse_kl(lp, lq)
    # m = beta p + (1 - beta) q directly: two exps and a log instead of logaddexp's three and a
    # log1p (m >= e^-700 / 2 with the floored densities: log m is finite)
    p, q = _density(lp) if p is None else p, _density(lq)
    m = q * (1.0 - beta)
    m += beta * p
    lm = np.log(m, out=m)
    dg = lq - lm
    dg *= q
    dg *= 1.0 - beta  # (1 - beta) q (lq - lm)
    g = np.subtract(lp, lm, out=lm)
    g *= beta * p
    g += dg
    return g, dg


def _fused_alpha(lp: Array, lq: Array, alpha: float) -> tuple[Array, Array]:
    if alpha == 1.0:
        return _fused_forward_kl(lp, lq)
    if alpha == 0.0:
        return _fused_reverse_kl(lp, lq)
    a, b = alpha, 1.0 - alpha
    if min(abs(a), abs(b)) < 0.05:  # near forward / reverse KL: _alpha's expm1 form keeps the digits
        return _alpha(lp, lq, alpha), _d_alpha(lp, lq, alpha)
    # p^a q^b from its exponent (no product with an underflowing p, which is most of a wide
    # student's grid): (q - p^a q^b) / a and (a p + b q - p^a q^b) / (a b) = (dg - (q - p)) / b lose
    # at most a factor 1 / min(a, b) of digits to cancellation, absolute eps * (p + q) per point
    q = _density(lq)
    cross = lq * b
    cross += a * lp
    cross = _density(cross)
    dg = q - cross
    dg *= 1.0 / a
    g = np.subtract(q, _density(lp), out=q)
    np.subtract(dg, g, out=g)
    g *= 1.0 / b
    return g, dg


def _fused_tv(lp: Array, lq: Array, p: Array | None = None) -> tuple[Array, Array]:
    half_q = _density(lq)
    half_q *= 0.5
    gap = half_q - 0.5 * (_density(lp) if p is None else p)  # (q - p) / 2, exactly
    dg = np.copysign(half_q, gap, out=half_q)  # -sign(p - q) q / 2 ...
    if not gap.all():
        np.putmask(dg, gap == 0.0, 0.0)  # ... with sign(0) = 0
    return np.abs(gap, out=gap), dg


_register(
    Kind(
        "forward_kl",
        "KL(teacher || student): mode-covering",
        _forward_kl,
        _d_forward_kl,
        sampler="teacher",
        fused=_fused_forward_kl,
    )
)
_register(
    Kind(
        "reverse_kl",
        "KL(student || teacher): mode-seeking",
        _reverse_kl,
        _d_reverse_kl,
        sampler="student",
        fused=_fused_reverse_kl,
    )
)
_register(
    Kind(
        "jsd",
        "generalized Jensen-Shannon (GKD); beta=0 forward KL, beta=1 reverse KL",
        _jsd,
        _d_jsd,
        {"beta": Param(0.5, 0.0, 1.0)},
        fused=_fused_jsd,
    )
)
_register(
    Kind(
        "jsd_scaled",
        "generalized JSD / (beta (1-beta)): continuous, forward KL at beta->0, reverse KL at beta->1",
        _jsd_scaled,
        _d_jsd_scaled,
        {"beta": Param(0.5, 0.0, 1.0)},
    )
)
_register(
    Kind(
        "alpha",
        "Amari alpha-divergence; alpha->1 forward KL, alpha->0 reverse KL, alpha<=0 zero-forcing",
        _alpha,
        _d_alpha,
        {"alpha": Param(0.5, -1e6, 1e6)},
        fused=_fused_alpha,
    )
)
_register(
    Kind(
        "skew_forward_kl",
        "KL(teacher || a teacher + (1-a) student) (DistiLLM)",
        _skew_forward_kl,
        _d_skew_forward_kl,
        {"alpha": Param(0.1, 0.0, 1.0)},
        sampler="teacher",
    )
)
_register(
    Kind(
        "skew_reverse_kl",
        "KL(student || a student + (1-a) teacher) (DistiLLM)",
        _skew_reverse_kl,
        _d_skew_reverse_kl,
        {"alpha": Param(0.1, 0.0, 1.0)},
        sampler="student",
    )
)
_register(Kind("tv", "total variation: half the L1 distance", _tv, _d_tv, fused=_fused_tv))
_register(
    Kind(
        "akl",
        "adaptive KL (Wu et al. 2024): head/tail-weighted forward + reverse KL",
        None,
        None,
        {"mu": Param(0.5, 0.0, 1.0, low_open=True)},
        discrete_only=True,
    )
)


def kl_direction(kind: str, params: dict[str, float]) -> str | None:
    """ "forward" or "reverse" when ``kind`` with these parameters *is* plain KL, else None."""
    special = {
        "forward_kl": "forward",
        "reverse_kl": "reverse",
        ("jsd", 0.0): "forward",
        ("jsd", 1.0): "reverse",
        ("jsd_scaled", 0.0): "forward",
        ("jsd_scaled", 1.0): "reverse",
        ("alpha", 1.0): "forward",
        ("alpha", 0.0): "reverse",
        ("skew_forward_kl", 0.0): "forward",
        ("skew_reverse_kl", 0.0): "reverse",
    }
    if kind in special:
        return special[kind]
    value = next(iter(params.values()), None)
    return special.get((kind, value))


def integrand(kind: str, lp: Array, lq: Array, **params: Any) -> Array:
    """The pointwise integrand g(log p, log q) of ``kind``; summing it over a grid gives D."""
    k, par = resolve(kind, params)
    if k.integrand is None:
        raise ValueError(f"{kind} is not a pointwise integral; it is defined for discrete tables only")
    return k.integrand(np.asarray(lp, float), np.asarray(lq, float), **par)


def d_integrand(kind: str, lp: Array, lq: Array, **params: Any) -> Array:
    """dg/d(log q): the sensitivity of the integrand to the student's log-density."""
    k, par = resolve(kind, params)
    if k.d_dlq is None:
        raise ValueError(f"{kind} is not a pointwise integral; it is defined for discrete tables only")
    return k.d_dlq(np.asarray(lp, float), np.asarray(lq, float), **par)


# ----------------------------------------------------------------------------------------------
# Adaptive KL (discrete only): weights from where the student misses the teacher's head vs tail.
# ----------------------------------------------------------------------------------------------


def akl_weights(p: Array, q: Array, mu: float) -> tuple[Array, Array]:
    """(head weight, tail weight) of AKL along the last axis (Wu et al. 2024, Sec. 4).

    Sort the teacher's probabilities in decreasing order; the head is the shortest prefix whose
    cumulative mass reaches ``mu`` (always at least the top entry). ``g_head`` and ``g_tail`` are
    the L1 gaps between teacher and student over each part; weights are their shares (1/2 each
    when the two distributions are equal).
    """
    order = np.argsort(-p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, -1)
    qs = np.take_along_axis(q, order, -1)
    gap = np.abs(ps - qs)
    tail = np.cumsum(ps, axis=-1) > mu
    tail[..., 0] = False
    g_head = np.where(tail, 0.0, gap).sum(-1)
    g_tail = np.where(tail, gap, 0.0).sum(-1)
    total = g_head + g_tail
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, g_head / safe, 0.5), np.where(total > 0, g_tail / safe, 0.5)


def _akl_exact(lp: Array, lq: Array, mu: float) -> float:
    p, q = np.exp(lp).ravel(), np.exp(lq).ravel()
    w_head, w_tail = akl_weights(p, q, mu)
    fkl = _forward_kl(lp, lq).sum()
    rkl = _reverse_kl(lp, lq).sum()
    terms = [w * v for w, v in ((w_head, fkl), (w_tail, rkl)) if w > 0]
    return float(sum(terms))


# ----------------------------------------------------------------------------------------------
# Closed forms for Gaussian pairs (any dimension)
# ----------------------------------------------------------------------------------------------


def _whitened_gap(p: Gaussian, q: Gaussian) -> Array:
    """L_q^{-1} (mean_p - mean_q), without forming a difference that overflows (means near +-1e300)."""
    lq_inv = q._prec_chol[0]
    with np.errstate(over="ignore", invalid="ignore"):
        diff = p._mu[0] - q._mu[0]
        if np.all(np.isfinite(diff)):
            return lq_inv @ diff
        return lq_inv @ p._mu[0] - lq_inv @ q._mu[0]


def _kl_gaussian_gaussian(p: Gaussian, q: Gaussian) -> float:
    """KL(p || q) = 1/2 [tr(Sq^-1 Sp) + (mq-mp)^T Sq^-1 (mq-mp) - d + ln(|Sq|/|Sp|)].

    From the Cholesky factors (tr(Sq^-1 Sp) = ||Lq^-1 Lp||_F^2): no covariance is formed, so stds
    from 1e-300 to 1e300 keep their digits (N(0, 1e-300) -> N(0, 1) is 690.28).
    """
    d = p.dim
    with np.errstate(over="ignore", invalid="ignore"):
        ratio = q._prec_chol[0] @ p._chol[0]  # (d, d)
        trace_term = float((ratio * ratio).sum())
        gap = _whitened_gap(p, q)
        mahalanobis = float(gap @ gap)
    log_det_ratio = 2.0 * float(q._log_det_half[0] - p._log_det_half[0])
    return 0.5 * ((trace_term - d) + mahalanobis + log_det_ratio)


def _log_alpha_overlap_1d(p: Gaussian, q: Gaussian, alpha: float) -> float:
    """log of integral p^a q^(1-a) for two 1-D Gaussians, in units of p's std; +inf when it diverges.

    integral = (sp^b sq^a / s*) exp(-a b (mp - mq)^2 / (2 s*^2)), s*^2 = a sq^2 + b sp^2 (b = 1 - a);
    with rho = sq / sp and delta = (mp - mq) / sp: a log rho - log(v) / 2 - a b delta^2 / (2 v), v = a rho^2 + b.
    """
    a, b = alpha, 1.0 - alpha
    log_rho = float(q._log_det_half[0] - p._log_det_half[0])
    with np.errstate(over="ignore", invalid="ignore"):
        rho2 = math.exp(2.0 * log_rho) if 2.0 * log_rho < 700.0 else math.inf
        v = a * rho2 + b
        if not v > 0.0:
            return math.inf
        delta = float(_whitened_gap(q, p)[0])
        return a * log_rho - 0.5 * math.log(v) - a * b * delta * delta / (2.0 * v)


def _log_alpha_overlap(p: Gaussian, q: Gaussian, alpha: float) -> float:
    """log of integral p^a q^(1-a) for two Gaussians; +inf when it diverges."""
    if p.univariate:
        return _log_alpha_overlap_1d(p, q, alpha)
    _, mp, sp = p.components()
    _, mq, sq = q.components()
    mp, sp, mq, sq = mp[0], sp[0], mq[0], sq[0]
    a, b = alpha, 1.0 - alpha
    lam_p, lam_q = np.linalg.inv(sp), np.linalg.inv(sq)
    lam = a * lam_p + b * lam_q
    if np.any(np.linalg.eigvalsh(lam) <= 0):
        return math.inf
    h = a * lam_p @ mp + b * lam_q @ mq
    m = np.linalg.solve(lam, h)
    d = mp.size
    quad = a * mp @ lam_p @ mp + b * mq @ lam_q @ mq - m @ h
    logdet = lambda s: np.linalg.slogdet(s)[1]  # noqa: E731
    return float(
        -0.5 * quad
        - 0.5 * a * (d * math.log(2 * math.pi) + logdet(sp))
        - 0.5 * b * (d * math.log(2 * math.pi) + logdet(sq))
        + 0.5 * (d * math.log(2 * math.pi) - logdet(lam))
    )


def _alpha_gaussian_gaussian(p: Gaussian, q: Gaussian, alpha: float) -> float:
    if alpha == 1.0:
        return _kl_gaussian_gaussian(p, q)
    if alpha == 0.0:
        return _kl_gaussian_gaussian(q, p)
    log_overlap = _log_alpha_overlap(p, q, alpha)
    if math.isinf(log_overlap):
        return math.inf
    with np.errstate(over="ignore"):  # a finite value beyond the float range is refused by divergence()
        return float(-np.expm1(log_overlap) / (alpha * (1.0 - alpha)))


def _closed_form(kind: str, teacher: Distribution, student: Distribution, par: dict[str, float]) -> float | None:
    if not (isinstance(teacher, Gaussian) and isinstance(student, Gaussian)):
        return None
    if kind == "forward_kl":
        return _kl_gaussian_gaussian(teacher, student)
    if kind == "reverse_kl":
        return _kl_gaussian_gaussian(student, teacher)
    if kind == "jsd" and par["beta"] in (0.0, 1.0):
        return _kl_gaussian_gaussian(*((teacher, student) if par["beta"] == 0.0 else (student, teacher)))
    if kind == "alpha":
        return _alpha_gaussian_gaussian(teacher, student, par["alpha"])
    return None


# ----------------------------------------------------------------------------------------------
# Exact and Monte-Carlo evaluation
# ----------------------------------------------------------------------------------------------


class MCEstimate(NamedTuple):
    """A Monte-Carlo estimate with its standard error (std of the terms / sqrt(n))."""

    value: float
    stderr: float
    n: int

    def __float__(self) -> float:
        return self.value


def _check_pair(teacher: Distribution, student: Distribution) -> None:
    for name, d in (("teacher", teacher), ("student", student)):
        if not isinstance(d, Distribution):
            raise ValueError(f"{name} must be a kl_core distribution, got {type(d).__name__}")
    if teacher.is_discrete != student.is_discrete:
        raise ValueError("teacher and student must both be continuous or both be discrete")
    if teacher.is_discrete:
        if teacher.shape != student.shape:
            raise ValueError(f"Shape mismatch: teacher table {teacher.shape} != student table {student.shape}")
    elif teacher.dim != student.dim:
        raise ValueError(f"Dimension mismatch: teacher is {teacher.dim}-D, student is {student.dim}-D")


def _alpha_extra_components(teacher: _GaussianComponents, student: _GaussianComponents, alpha: float):
    """Effective Gaussians of p_i^a q_j^(1-a) per component pair: where alpha's integrand lives."""
    mus, covs = [], []
    _, mp, cp = teacher.components()
    _, mq, cq = student.components()
    for i in range(len(mp)):
        for j in range(len(mq)):
            lam_p, lam_q = np.linalg.inv(cp[i]), np.linalg.inv(cq[j])
            lam = alpha * lam_p + (1 - alpha) * lam_q
            if np.all(np.linalg.eigvalsh(lam) > 0):
                cov = np.linalg.inv(lam)
                mus.append(cov @ (alpha * lam_p @ mp[i] + (1 - alpha) * lam_q @ mq[j]))
                covs.append(cov)
    return [(np.array(mus), np.array(covs))] if mus else []


def _alpha_diverges(teacher: _GaussianComponents, student: _GaussianComponents, alpha: float) -> bool:
    """For alpha outside [0, 1], is the integral of p^a q^(1-a) infinite?

    Along a ray x = t v, a mixture's log-density falls like -t^2/2 * min_k v^T Lambda_k v (its
    widest component in that direction wins), so p^a q^(1-a) is integrable iff, for every
    direction v, a * min_i v^T Lp_i v + (1-a) * min_j v^T Lq_j v > 0. 1-D has one direction;
    2-D checks 720 of them (the forms are smooth in the angle).
    """
    if 0.0 <= alpha <= 1.0:
        return False
    _, _, cp = teacher.components()
    _, _, cq = student.components()
    v = _alpha_directions(cp.shape[-1])
    form = lambda covs: np.einsum("ai,kij,aj->ak", v, np.linalg.inv(covs), v).min(-1)  # noqa: E731
    return bool(np.any(alpha * form(cp) + (1.0 - alpha) * form(cq) <= 0.0))


def _alpha_directions(d: int) -> np.ndarray:
    """The directions v (A, d) along which :func:`_alpha_diverges` (and ``kc.fit``'s per-start check) test the
    decay of p^a q^(1-a): the one direction of 1-D, 720 angles in 2-D, the axes beyond."""
    if d == 1:
        return np.ones((1, 1))
    if d == 2:
        ang = np.linspace(0.0, np.pi, 720, endpoint=False)
        return np.stack([np.cos(ang), np.sin(ang)], -1)
    return np.eye(d)


def _crossings(teacher: _GaussianComponents, student: _GaussianComponents) -> list[float]:
    """Points where p(x) = q(x) in 1-D: the kinks of |p - q|."""
    x, _ = panel_grid([teacher, student])
    return roots(lambda t: teacher.log_prob(t) - student.log_prob(t), x)


def _exact(k: Kind, teacher: Distribution, student: Distribution, par: dict[str, float]) -> float:
    if teacher.is_discrete:
        lp, lq = teacher.log_probs, student.log_probs
        if k.name == "akl":
            return _akl_exact(lp, lq, par["mu"])
        with np.errstate(over="ignore", invalid="ignore"):
            return float(k.integrand(lp, lq, **par).sum())
    if k.discrete_only:
        raise ValueError(f"{k.name} is defined for discrete distributions only")
    closed = _closed_form(k.name, teacher, student, par)
    if closed is not None:
        return closed
    if teacher.dim > 2:
        raise ValueError(
            f"exact {k.name} in {teacher.dim}-D has no closed form for these distributions; use method='mc'"
        )
    # f-divergences are invariant under a common affine map: integrate in a well-scaled frame
    teacher, student = standard_frame([teacher, student])
    extra = []
    if k.name == "alpha":
        if _alpha_diverges(teacher, student, par["alpha"]):
            return math.inf
        extra = _alpha_extra_components(teacher, student, par["alpha"])
    breaks = _crossings(teacher, student) if k.name == "tv" and teacher.dim == 1 else ()
    value = integrate_pair(lambda lp, lq: k.integrand(lp, lq, **par), teacher, student, extra=extra, breaks=breaks)
    return max(value, 0.0) if abs(value) < 1e-15 else value


def _bound(k: Kind, par: dict[str, float]) -> float:
    """The largest value the kind can take (inf where it is unbounded)."""
    if k.name == "tv":
        return 1.0
    if k.name == "jsd" and 0.0 < par["beta"] < 1.0:  # beta KL(p||m) + (1-beta) KL(q||m) <= H(beta, 1 - beta)
        b = par["beta"]
        return -(b * math.log(b) + (1.0 - b) * math.log1p(-b))
    if k.name == "jsd_scaled" and 0.0 < par["beta"] < 1.0:
        b = par["beta"]
        return -(b * math.log(b) + (1.0 - b) * math.log1p(-b)) / (b * (1.0 - b))
    if k.name in ("skew_forward_kl", "skew_reverse_kl"):  # KL(p || a p + (1-a) q) <= -log a
        return -math.log(par["alpha"]) if par["alpha"] > 0 else math.inf
    return math.inf


def _checked(k: Kind, teacher: Distribution, student: Distribution, par: dict[str, float], value: float) -> float:
    """The exact value, or ValueError where it is NaN or an overflow of a finite answer; rounding past a
    kind's bound (TV 1 + 1e-15) is clipped to the bound, never returned."""
    if math.isnan(value):
        raise ValueError(f"{k.name} could not be computed for these distributions (NaN); use method='mc'")
    if math.isinf(value):
        legit = (
            _discrete_infinite(k, teacher, student, par)
            if teacher.is_discrete
            else k.name == "alpha" and _alpha_diverges(teacher, student, par["alpha"])
        )
        if not legit:
            detail = f" (alpha={par['alpha']:g})" if "alpha" in par else ""
            raise ValueError(
                f"{k.name}{detail} of these distributions is finite but beyond the float range (> 1.8e308); "
                "bring the distributions closer (or alpha closer to [0, 1])"
            )
        return value
    return min(max(value, 0.0), _bound(k, par))


def _discrete_infinite(k: Kind, teacher: Distribution, student: Distribution, par: dict[str, float]) -> bool:
    """Is an infinite table divergence real (a support mismatch), not an overflow of finite cells?"""
    lp, lq = teacher.log_probs, student.log_probs
    both = np.isfinite(lp) & np.isfinite(lq)
    if k.integrand is None:  # akl: forward and reverse KL are finite on common support
        return not np.all(both == (np.isfinite(lp) | np.isfinite(lq)))
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(k.integrand(lp[both], lq[both], **par).sum()))


def mc_terms(k: Kind, teacher: Distribution, student: Distribution, par: dict[str, float], n: int, seed: Seed) -> Array:
    """The n i.i.d. Monte-Carlo terms whose mean estimates the divergence (x ~ the kind's sampler)."""
    rng = as_generator(seed)
    if k.sampler == "teacher":
        x = teacher.sample(n, seed=rng)
    elif k.sampler == "student":
        x = student.sample(n, seed=rng)
    else:  # an equal mixture of both: bounded importance weights for every symmetric kind
        from_teacher = rng.random(n) < 0.5
        n_t = int(from_teacher.sum())
        parts = []
        if n_t:
            parts.append(teacher.sample(n_t, seed=rng))
        if n - n_t:
            parts.append(student.sample(n - n_t, seed=rng))
        x = np.concatenate(parts)
    lp, lq = teacher.log_prob(x), student.log_prob(x)
    if k.sampler == "teacher":
        lr = lp
    elif k.sampler == "student":
        lr = lq
    else:
        lr = np.logaddexp(lp, lq) - math.log(2.0)
    return k.integrand(lp - lr, lq - lr, **par)


def divergence(
    teacher: Distribution,
    student: Distribution,
    kind: str = "forward_kl",
    method: str = "exact",
    n: int = 10_000,
    seed: Seed = None,
    **params: Any,
) -> float | MCEstimate:
    """The divergence ``kind`` from student to teacher, in nats.

    Args:
        teacher: the target distribution p.
        student: the model distribution q (same dimension, or same table shape).
        kind: one of :data:`KINDS` (``forward_kl``, ``reverse_kl``, ``jsd``, ``alpha``,
            ``skew_forward_kl``, ``skew_reverse_kl``, ``tv``, ``akl``).
        method: ``"exact"`` (closed form, exact sum or quadrature; returns a float) or ``"mc"``
            (Monte Carlo with the kind's natural sampler; returns an :class:`MCEstimate`).
        n: Monte-Carlo sample size, in [2, MAX_MC_SAMPLES = 1e8] (drawn in chunks of 2**20: memory is bounded).
        seed: Monte-Carlo randomness.
        **params: the kind's parameters (``beta``, ``alpha``, ``mu``); bools and strings are refused.

    Limits (``ValueError`` beyond them, naming the cause): Gaussian pairs use closed forms from the
    Cholesky factors, exact for stds anywhere in [1e-300, 1e300]. Quadrature is done after a
    common shift and scale (divergences are invariant under it) and needs every component's mean
    within 1e8 of its own std of a common centre, at most 2**20 nodes (a nearly degenerate 2-D
    covariance is refused), and a grid that integrates both densities to 1 within 1e-6. A result
    is never NaN and never past the kind's bound (TV <= 1, JSD <= the entropy of (beta, 1 - beta));
    ``inf`` only where the divergence is infinite (disjoint table supports, an alpha outside
    [0, 1] whose integral diverges); a finite value beyond the float range raises.

    Examples:
        >>> import kl_core as kc
        >>> round(kc.divergence(kc.Gaussian(0, 1), kc.Gaussian(1, 2), "forward_kl"), 6)  # ln 2 - 1/4
        0.443147
    """
    k, par = resolve(kind, params)
    _check_pair(teacher, student)
    direction = kl_direction(k.name, par)
    if direction is not None:  # the limits (jsd beta=0/1, alpha=1/0, skew alpha=0) are exactly KL
        k, par = KINDS[f"{direction}_kl"], {}
    if method == "exact":
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            value = _exact(k, teacher, student, par)
        return _checked(k, teacher, student, par, value)
    if method == "mc":
        if k.integrand is None:
            raise ValueError(f"{kind} has no Monte-Carlo estimator; use method='exact'")
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or not 2 <= n <= MAX_MC_SAMPLES:
            raise ValueError(f"n must be an integer in [2, {MAX_MC_SAMPLES}], got {short(n)}")
        return _mc(k, teacher, student, par, int(n), seed)
    raise ValueError(f"method must be 'exact' or 'mc', got {short(method)}")


def _kl_pair(teacher: Distribution, student: Distribution) -> tuple[float, float]:
    """(forward KL, reverse KL), exact: ``divergence(teacher, student, "forward_kl")`` and ``"reverse_kl"`` to the
    last bit, from one quadrature where both need one (its grid and both log-densities computed once)."""
    _check_pair(teacher, student)
    kinds = (KINDS["forward_kl"], KINDS["reverse_kl"])
    if teacher.is_discrete or teacher.dim > 2 or _closed_form("forward_kl", teacher, student, {}) is not None:
        return divergence(teacher, student, "forward_kl"), divergence(teacher, student, "reverse_kl")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        frame = standard_frame([teacher, student])  # as _exact does
        values = integrate_pairs([lambda lp, lq, k=k: k.integrand(lp, lq) for k in kinds], *frame)
    out = [max(v, 0.0) if abs(v) < 1e-15 else v for v in values]
    return _checked(kinds[0], teacher, student, {}, out[0]), _checked(kinds[1], teacher, student, {}, out[1])


def _mc(k: Kind, teacher: Distribution, student: Distribution, par: dict[str, float], n: int, seed: Seed):
    """Monte Carlo in chunks of MC_CHUNK draws (memory bounded for any n), combined exactly."""
    rng = as_generator(seed)
    total, total_sq, count = 0.0, 0.0, 0
    shift = None  # terms are accumulated around the first chunk's mean: no cancellation in the variance
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for lo in range(0, n, MC_CHUNK):
            terms = mc_terms(k, teacher, student, par, min(MC_CHUNK, n - lo), rng)
            if not np.all(np.isfinite(terms)):
                if teacher.is_discrete and _discrete_infinite(k, teacher, student, par):
                    return MCEstimate(math.inf, math.inf, n)
                raise ValueError(
                    f"{k.name}: Monte-Carlo terms overflow the float range for these distributions; "
                    "bring them closer, or use method='exact'"
                )
            shift = float(terms.mean()) if shift is None else shift
            centred = terms - shift
            total += float(centred.sum())
            total_sq += float(centred @ centred)
            count += terms.size
    mean = total / count
    var = max(total_sq - count * mean * mean, 0.0) / (count - 1)
    return MCEstimate(shift + mean, math.sqrt(var / count), n)
