"""fit(): train a student against a teacher under any divergence, all starts at once.

The student's parameters for every start live in one array (S, P) and advance together in one
vectorised step. The gradient of ``D(teacher, student)`` comes from one of three estimators,
each built from the divergence's integrand ``g(log p, log q)`` and its derivative ``g'``:

* ``exact``: ``grad = sum_x w(x) g'(log p, log q) d log q / d theta`` on a quadrature grid
  (continuous, 1-D/2-D) or over the whole table (discrete).
* ``mc`` with teacher samples (off-policy; the default for forward-type kinds). For forward KL
  this is maximum likelihood on teacher data, classic distillation:
  ``grad = mean_{x~T} g'(0, log q - log p) d log q / d theta``.
* ``mc`` with student samples (on-policy; the default for every other kind). With
  ``h(x) = g(log p - log q, 0)`` the per-sample loss:

  - ``gradient="pathwise"``: reparameterised samples, ``d/dtheta h(x(theta), theta)``;
  - ``gradient="score"``: REINFORCE, ``mean (h - b) d log q/d theta + dh/dtheta`` with a
    leave-one-out mean baseline ``b`` (unbiased). For reverse KL, ``-h = log p - log q`` is the
    reward of maximum-entropy RL with reward ``log p``.

Optimisers are small pure (init, update) pairs in the style of optax: :func:`adam`, :func:`sgd`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from kl_core.distributions import Distribution, Seed, _GaussianComponents, as_generator, short
from kl_core.divergences import (
    EXP_FLOOR,
    Kind,
    _alpha_directions,
    _check_pair,
    _density,
    kl_direction,
    resolve,
)
from kl_core.families import _BOX_STDS, Family, GaussianMixture1D, family_for
from kl_core.quadrature import support_box, uniform_grid

__all__ = ["fit", "Trajectory", "Optimizer", "adam", "sgd", "ESTIMATORS", "GRADIENTS", "MAX_MC_DRAWS"]

ESTIMATORS = ("exact", "mc")
GRADIENTS = ("pathwise", "score")
MAX_MC_DRAWS = 1 << 20  # n x inits: Monte-Carlo draws per step, all starts together (memory ~ 100 MB)
_LOG_2PI = math.log(2.0 * math.pi)
MAX_REACH = 1e8  # the fitting box's extent over the teacher's narrowest std, beyond which the grid is not representable


# ----------------------------------------------------------------------------------------------
# Optimisers: pure functions over (params, grads, state), vectorised over starts
# ----------------------------------------------------------------------------------------------


class Optimizer(NamedTuple):
    """A gradient-descent rule: ``state = init(params)``; ``params, state = update(params, grads, state)``."""

    name: str
    init: Callable[[np.ndarray], Any]
    update: Callable[[np.ndarray, np.ndarray, Any], tuple[np.ndarray, Any]]


def adam(lr: float = 0.05, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba 2015) with bias correction."""
    _check_lr(lr)

    def init(params: np.ndarray):
        return (np.zeros_like(params), np.zeros_like(params), 0)

    def update(params: np.ndarray, grads: np.ndarray, state):
        m, v, t = state
        t += 1
        m = b1 * m + (1 - b1) * grads
        v = b2 * v + (1 - b2) * grads * grads
        step = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        return params - step * m / (np.sqrt(v) + eps), (m, v, t)

    update.adam_hyper = (lr, b1, b2, eps)  # fit's Gaussian-student loop runs this same update in place
    return Optimizer("adam", init, update)


def sgd(lr: float = 0.05, momentum: float = 0.0) -> Optimizer:
    """Plain gradient descent, optionally with heavy-ball momentum."""
    _check_lr(lr)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {short(momentum)}")

    def init(params: np.ndarray):
        return np.zeros_like(params)

    def update(params: np.ndarray, grads: np.ndarray, velocity):
        velocity = momentum * velocity + grads
        return params - lr * velocity, velocity

    return Optimizer("sgd", init, update)


def _check_lr(lr: float) -> None:
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0.0 < lr <= 10.0):
        raise ValueError(f"lr must be in (0, 10], got {short(lr)}")


# ----------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Immutable record of a fit: parameters and loss per step per start (numpy arrays).

    Attributes:
        params: (steps + 1, inits, P) unconstrained parameters; row 0 is the starting point.
        loss: (steps + 1, inits) the objective at each row of ``params`` (exact where a grid or
            table exists, else the Monte-Carlo estimate of that step).
        param_names: the P parameter names (e.g. ``["mean", "log_std"]``).
        dropped: (inits,) booleans, True for a start that was stopped: its objective was infinite
            at the start, or the student degenerated (non-finite parameters, a std that collapsed
            below what the grid resolves, an alpha-divergence that became infinite). A dropped
            start is frozen at its last finite state (an infinite start keeps loss ``inf``).
        reasons: (inits,) strings, ``""`` for a fine start, else why and at which step it was dropped.
    """

    teacher: Distribution
    family: Family = field(repr=False)
    params: np.ndarray = field(repr=False)
    loss: np.ndarray = field(repr=False)
    objective: str
    objective_params: dict[str, float]
    estimator: str
    gradient: str | None
    sampler: str | None
    optimizer: str
    seed: int | None
    dropped: np.ndarray | None = field(default=None, repr=False)
    reasons: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("params", "loss"):
            a = np.array(getattr(self, name), dtype=float)
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        inits = self.params.shape[1]
        dropped = np.zeros(inits, bool) if self.dropped is None else np.array(self.dropped, dtype=bool)
        reasons = ("",) * inits if self.reasons is None else tuple(str(r) for r in self.reasons)
        if dropped.shape != (inits,) or len(reasons) != inits:
            raise ValueError(f"dropped and reasons must have one entry per start ({inits})")
        dropped.setflags(write=False)
        object.__setattr__(self, "dropped", dropped)
        object.__setattr__(self, "reasons", reasons)

    @property
    def kept(self) -> list[int]:
        """Indices of the starts that were not dropped."""
        return [i for i in range(self.inits) if not self.dropped[i]]

    def kept_only(self) -> Trajectory:
        """The same fit restricted to the starts that were not dropped (renumbered from 0; the
        original numbers are in :meth:`drop_note`). ``self`` when none was dropped."""
        if not self.dropped.any():
            return self
        keep = np.array(self.kept, dtype=int)
        if keep.size == 0:
            raise ValueError(f"every start was dropped: {self.drop_note()}")
        return replace(self, params=self.params[:, keep], loss=self.loss[:, keep], dropped=None, reasons=None)

    def drop_note(self) -> str:
        """One sentence naming the dropped starts and why ("" when none was dropped)."""
        parts = [f"start {i}: {self.reasons[i]}" for i in range(self.inits) if self.dropped[i]]
        if not parts:
            return ""
        return f"{len(parts)} of {self.inits} starts were dropped ({'; '.join(parts)})."

    @property
    def steps(self) -> int:
        return self.params.shape[0] - 1

    @property
    def inits(self) -> int:
        return self.params.shape[1]

    @property
    def param_names(self) -> list[str]:
        return list(self.family.param_names)

    def student(self, step: int, i: int = 0) -> Distribution:
        """The student of start ``i`` after ``step`` steps (negative steps count from the end)."""
        if not -self.steps - 1 <= step <= self.steps:
            raise ValueError(f"step must be in [0, {self.steps}], got {step}")
        if not 0 <= i < self.inits:
            raise ValueError(f"i must be in [0, {self.inits - 1}], got {i}")
        return self.family.unpack(self.params[step, i])

    @property
    def final(self) -> list[Distribution]:
        """The fitted students, one per start; start 0 began at the student passed to fit()."""
        return [self.student(self.steps, i) for i in range(self.inits)]

    @property
    def final_loss(self) -> np.ndarray:
        return self.loss[-1]

    @property
    def best(self) -> int:
        """Index of the start with the lowest final loss among the starts that were not dropped."""
        final = np.where(self.dropped, np.inf, self.loss[-1])
        return int(np.argmin(final)) if np.any(np.isfinite(final)) else int(np.argmin(self.loss[-1]))


# ----------------------------------------------------------------------------------------------
# The problem: what is integrated against what
# ----------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    """The objective on a fixed grid (continuous) or the whole table (discrete).

    A 1-D Gaussian student on a 1-D grid (the common case) takes a shorter road to the same grid
    sum: forward KL from the teacher's three grid moments (``sum w p log q`` is a quadratic in x:
    no grid pass per step), every other kind in one pass with the kind's fused integrand that keeps
    ``z`` and ``z^2`` for the gradient and folds the weights into matrix-vector products (alpha's
    loss, too, from those sums), on buffers kept for the fit (:class:`_GaussianGrid`, and
    :class:`_GaussianAdamLoop` for fit's steps). tests/test_fitting.py checks both against the
    general path.
    """

    kind: Kind
    par: dict[str, float]
    teacher: Distribution
    family: Family
    x: np.ndarray | None  # grid points (continuous) or None (discrete: whole table)
    w: np.ndarray | None  # quadrature weights (None: plain sum over the table)
    lp: np.ndarray | None  # teacher log-density on the grid / table

    def __post_init__(self) -> None:
        # continuous students have finite log-densities; so does the teacher on a grid it covers
        self.finite = self.family.continuous and self.lp is not None and bool(np.all(np.isfinite(self.lp)))
        self.forward = kl_direction(self.kind.name, self.par) == "forward" and self.lp is not None
        if self.forward:  # forward KL only ever needs the teacher's weights: sum w p (log p - log q)
            wp = np.exp(self.lp) * (1.0 if self.w is None else self.w)
            self.wp, self.neg_entropy = wp, float(np.sum(np.where(wp > 0, wp * self.lp, 0.0)))
        self.gaussian = (
            isinstance(self.family, GaussianMixture1D)
            and self.family.K == 1
            and self.finite
            and self.w is not None
            and self.x.ndim == 1
        )
        self.moments = self.alpha_sums = self._grid = None
        self.p = _density(self.lp) if self.gaussian else None
        a = self.par.get("alpha") if self.kind.name == "alpha" else None
        if self.gaussian and a is not None and min(abs(a), abs(1.0 - a)) >= 0.05:
            # alpha's loss from sums the gradient needs anyway: sum w g = (sum w dg - sum w q + sum w p) / b
            self.alpha_sums = (a, 1.0 - a, float(_density(self.lp) @ self.w))
        if self.gaussian and self.forward:
            m0 = float(self.wp.sum())
            centre = float(self.wp @ self.x) / m0  # moments about the teacher's (grid) mean: no cancellation
            dx = self.x - centre
            self.moments = (centre, m0, float(self.wp @ dx), float(self.wp @ (dx * dx)))

    def exact(self, theta: np.ndarray, with_grad: bool = True):
        """(loss (S,), grad (S, P)) from the grid or table."""
        if self.moments is not None:
            return self._forward_moments(theta, with_grad)
        if self.gaussian:
            return self._gaussian(theta, with_grad)
        lq, aux = self.family.log_prob(theta, self.x)
        if self.forward:
            loss = self.neg_entropy - lq @ self.wp
            return loss, (self.family.log_prob_vjp(theta, aux, -self.wp) if with_grad else None)
        if not with_grad:
            g = self.kind.integrand(self.lp, lq, **self.par)
            return (g if self.w is None else g * self.w).sum(-1), None
        g, dg = self.kind.value_and_d(self.lp, lq, finite=self.finite, **self.par)
        if self.w is None:
            return g.sum(-1), self.family.log_prob_vjp(theta, aux, dg)
        return g @ self.w, self.family.log_prob_vjp(theta, aux, dg * self.w)

    def _forward_moments(self, theta: np.ndarray, with_grad: bool):
        """Forward KL of a Gaussian student from the teacher's grid moments M_k = sum w p (x - c)^k:
        ``sum w p z^2 = (M2 - 2 d M1 + d^2 M0) / sigma^2`` with ``d = mean - c`` (the grid sum, regrouped)."""
        centre, m0, m1, m2 = self.moments
        d, ls = theta[:, 0] - centre, theta[:, 1]
        inv_var = np.exp(-2.0 * ls)
        sq = (m2 - 2.0 * d * m1 + d * d * m0) * inv_var  # sum w p z^2
        loss = self.neg_entropy + 0.5 * sq + (ls + 0.5 * _LOG_2PI) * m0
        if not with_grad:
            return loss, None
        grad = np.empty((theta.shape[0], 2))
        grad[:, 0] = (d * m0 - m1) * inv_var
        grad[:, 1] = m0 - sq
        return loss, grad

    def _gaussian(self, theta: np.ndarray, with_grad: bool):
        """A Gaussian student on the grid: the same sums as family.log_prob + log_prob_vjp, fewer passes."""
        grid = self.sums_for(theta.shape[0]) if with_grad else None
        if not isinstance(grid, _GaussianGrid):
            return self._gaussian_general(theta, with_grad)
        grid.theta[...] = theta
        np.exp(grid.theta[:, 1:], out=grid.sig)
        with np.errstate(over="ignore"):  # tv's sign overflows to inf by design; fit's loop ignores it too
            grid.sums()
        return grid.out[2].copy(), grid.out[:2].T.copy()

    def sums_for(self, S: int) -> _GaussianGrid | _MomentSums | None:
        """The buffered sums of a Gaussian student for S starts (None: not a Gaussian student's kind)."""
        if self._grid is None or self._grid.S != S:
            kernel = self._kernel()
            if self.moments is not None:
                self._grid = _MomentSums(self, S)
            else:
                self._grid = None if kernel is None else _GaussianGrid(self, kernel, S)
        return self._grid

    def _kernel(self) -> str | None:
        if not self.gaussian or self.moments is not None:
            return None
        name, value = self.kind.name, next(iter(self.par.values()), None)
        if name == "reverse_kl" or (name, value) in (("jsd", 1.0), ("alpha", 0.0)):
            return "reverse"
        if name == "jsd" and 0.0 < value < 1.0:
            return "jsd"
        if name == "alpha" and self.alpha_sums is not None:
            return "alpha"
        return "tv" if name == "tv" else None

    def _gaussian_general(self, theta: np.ndarray, with_grad: bool):
        """The Gaussian-student sums for any kind, from the kind's (fused) integrand."""
        ls = theta[:, 1:]
        sig = np.exp(ls)
        z = (self.x - theta[:, :1]) * (1.0 / sig)  # (S, G)
        zz = z * z
        lq = zz * -0.5
        lq -= ls + 0.5 * _LOG_2PI
        if not with_grad:
            return self.kind.integrand(self.lp, lq, **self.par) @ self.w, None
        w = self.w
        if self.alpha_sums is None:
            if self.kind.name in ("jsd", "tv") and self.kind.fused is not None:  # the teacher's p, taken once
                g, dg = self.kind.fused(self.lp, lq, p=self.p, **self.par)
            else:
                g, dg = self.kind.value_and_d(self.lp, lq, finite=True, **self.par)
            loss = g @ w
        else:  # the fused alpha kernel's terms, summed without forming g
            a, b, pw = self.alpha_sums
            q = _density(lq)
            cross = lq * b
            cross += a * self.lp
            cross = _density(cross)
            dg = np.subtract(q, cross, out=cross)
            dg *= 1.0 / a  # (q - p^a q^b) / a
            loss = (dg @ w - q @ w + pw) / b
        grad = np.empty((theta.shape[0], 2))
        np.divide(np.multiply(dg, z, out=z) @ w, sig[:, 0], out=grad[:, 0])
        np.subtract(np.multiply(dg, zz, out=zz) @ w, dg @ w, out=grad[:, 1])
        return loss, grad


class _MomentSums:
    """:meth:`_Problem._forward_moments` on buffers, for fit's loop: set ``theta`` (S, 2) and ``sig``
    (``exp`` of its log stds, not needed here), call :meth:`sums`; ``out`` (3, S) then holds
    d/d mean, d/d log std and the loss (the same expressions: the same numbers)."""

    def __init__(self, prob: _Problem, S: int) -> None:
        self.S, self.moments, self.neg_entropy = S, prob.moments, prob.neg_entropy
        self.theta, self.sig, self.out = np.empty((S, 2)), np.empty((S, 1)), np.empty((3, S))

    def sums(self) -> None:
        centre, m0, m1, m2 = self.moments
        d, ls, out = self.theta[:, 0] - centre, self.theta[:, 1], self.out
        inv_var = np.exp(-2.0 * ls)
        sq = (m2 - 2.0 * d * m1 + d * d * m0) * inv_var
        np.multiply(d * m0 - m1, inv_var, out[0])
        np.subtract(m0, sq, out[1])
        np.add(self.neg_entropy + 0.5 * sq, (ls + 0.5 * _LOG_2PI) * m0, out[2])


class _GaussianGrid:
    """A Gaussian student's grid sums for S starts, on preallocated buffers: set ``theta`` (S, 2) and
    ``sig = exp(log std)`` (S, 1), call :meth:`sums`; ``out`` rows 0-2 then hold d/d mean, d/d log std
    and the loss (rows 3-5: the weighted sums of dg, dg z and dg z^2 they come from).

    The same float operations in the same order as :meth:`_Problem._gaussian_general` with the fused
    integrands of kl_core.divergences (the same numbers: bit for bit in every case tested), only
    cheaper: no allocation per step; five or six (S, G) buffers (at 8 x 2048 the working set stays in
    a core's L2 cache); the teacher's terms broadcast to (S, G) once per fit and the per-start shifts
    and scales applied row by row with 0-d operands (numpy's loops over an (S, 1) broadcast, a scalar
    ``maximum`` or ``copysign`` are 2-4x slower than over contiguous arrays); the density floor as a
    ``clip`` with 0-d bounds (it changes nothing where ``log q >= -700``); the four weighted sums as
    one matrix-vector product where that rounds as four do; alpha's ``sum w dg`` taken once for the
    loss and the gradient; tv's sign from a clip, its halving after the sums (exact: a power of two).
    """

    FULL_CAP = 1 << 20  # points x starts up to which the teacher's rows are stored in full (8 MB each)

    def __init__(self, prob: _Problem, kernel: str, S: int) -> None:
        x, lp, G = prob.x, prob.lp, prob.x.size
        shape = (S, G)
        copy = S * G <= self.FULL_CAP

        def full(a) -> np.ndarray:
            rows = np.broadcast_to(a, shape)
            return rows.copy() if copy else rows

        self.kernel, self.S, self.w, self.x = kernel, S, prob.w, x
        self.theta, self.sig, self.out = np.empty((S, 2)), np.empty((S, 1)), np.empty((6, S))
        self.floor, self.inf = np.array(EXP_FLOOR), np.array(np.inf)
        # the four terms summed against w, stacked (4, S, G): g (or q for alpha), dg, dg z, dg z^2; lq and
        # q live in the first two (or in an extra buffer) as the kernel allows
        self.stack = np.empty((4,) + shape)
        a, b, self.z, self.zz = self.stack
        self.lq, self.q = {"reverse": (a, b), "jsd": (b, np.empty(shape)), "tv": (a, b), "alpha": (b, a)}[kernel]
        # one matrix-vector product for the four where S is a multiple of 4 (OpenBLAS's x86 dgemv takes
        # rows in blocks of 4: each row's sum is then the one of four products over S rows, bit for bit)
        self.flat = self.stack.reshape(4 * S, G) if S % 4 == 0 else None
        self.inv, self.shift = np.empty((S, 1)), np.empty((S, 1))
        self.one, self.half_log_2pi, self.minus_one = np.array(1.0), np.array(0.5 * _LOG_2PI), np.array(-1.0)
        # views taken once: the output rows, log std and std by start, and of each start the rows of
        # z and lq with 0-d views of its mean, 1 / sig and log sig + log(2 pi) / 2
        self.rows_out, self.weighted = tuple(self.out), self.out[2:]
        self.weighted_flat = self.weighted.reshape(-1)
        self.ls_col, self.sig_row = self.theta[:, 1:], self.sig[:, 0]
        scalars = [
            [v[s, j : j + 1].reshape(()) for v, j in ((self.theta, 0), (self.inv, 0), (self.shift, 0))]
            for s in range(S)
        ]
        self.rows = [(self.z[s], self.lq[s], *scalars[s]) for s in range(S)]
        if kernel in ("reverse", "jsd"):
            self.lp = full(lp)
        if kernel == "jsd":
            self.c = 1.0 - prob.par["beta"]
            self.beta_p = full(prob.par["beta"] * prob.p)
            self.m = a
        elif kernel == "tv":
            self.p = full(prob.p)
            self.sign = np.empty(shape)
        elif kernel == "alpha":
            self.alpha, self.b_alpha, self.pw = prob.alpha_sums
            self.alpha_lp = full(self.alpha * lp)

    def sums(self) -> None:
        w, x, z, zz, lq, q = self.w, self.x, self.z, self.zz, self.lq, self.q
        grad_mu, grad_ls, loss, s_dg, s_z, s_zz = self.rows_out
        subtract, multiply, matmul = np.subtract, np.multiply, np.matmul
        np.divide(self.one, self.sig, self.inv)
        np.add(self.ls_col, self.half_log_2pi, self.shift)
        for z_s, _, mu_s, inv_s, _ in self.rows:  # z = (x - mu) * (1 / sig)
            multiply(subtract(x, mu_s, z_s), inv_s, z_s)
        multiply(z, z, zz)
        multiply(zz, -0.5, lq)
        for _, lq_s, _, _, shift_s in self.rows:  # lq = -z^2 / 2 - (log sig + log(2 pi) / 2)
            subtract(lq_s, shift_s, lq_s)
        np.exp(lq.clip(self.floor, self.inf, q), q)  # q = _density(lq)
        kernel = self.kernel
        if kernel == "reverse":  # g = q (lq - lp), dg = g + q
            g = subtract(lq, self.lp, lq)
            g *= q
            dg = np.add(g, q, q)
        elif kernel == "jsd":  # m = (1 - beta) q + beta p; dg = (1 - beta) q (lq - lm), g = beta p (lp - lm) + dg
            m = multiply(q, self.c, self.m)
            m += self.beta_p
            lm = np.log(m, m)
            dg = subtract(lq, lm, lq)
            dg *= q
            dg *= self.c
            g = subtract(self.lp, lm, lm)
            g *= self.beta_p
            g += dg
        elif kernel == "tv":  # g = |q - p| / 2, dg = -sign(p - q) q / 2 (sign(0) = 0); halved after the sums
            gap = subtract(q, self.p, lq)
            # sign(q - p) without numpy's slow sign/copysign loops, exactly: q and p are at least
            # e^-700 > 2^-1010, so a nonzero gap is at least 2^-1062 and 2^1200 times it at least 2^138
            sign = multiply(gap, 2.0**600, self.sign)
            sign *= 2.0**600
            sign.clip(self.minus_one, self.one, sign)
            np.abs(gap, gap)
            dg = multiply(q, sign, q)  # 2 dg
        else:  # alpha: dg = (q - p^a q^b) / a; sum w g = (sum w dg - sum w q + sum w p) / b
            cross = multiply(lq, self.b_alpha, lq)
            cross += self.alpha_lp
            cross = np.exp(cross.clip(self.floor, self.inf, cross), cross)
            dg = subtract(q, cross, cross)
            dg *= 1.0 / self.alpha
        multiply(dg, z, z)
        multiply(dg, zz, zz)
        if self.flat is not None:
            matmul(self.flat, w, self.weighted_flat)
        else:
            for terms, total in zip(self.stack, self.weighted):
                matmul(terms, w, total)
        if kernel == "alpha":  # the first sum was sum w q
            np.divide(s_dg - loss + self.pw, self.b_alpha, loss)
        elif kernel == "tv":  # the loss and dg were doubled: halving them is exact
            multiply(self.weighted, 0.5, self.weighted)
        np.divide(s_z, self.sig_row, grad_mu)
        subtract(s_zz, s_dg, grad_ls)


class _GaussianAdamLoop:
    """fit's loop for its common case, the same arithmetic as the general loop (bit for bit) in fewer
    numpy calls: a Gaussian student on a 1-D grid, every parameter learned, :func:`adam`, every start
    alive. Per step: the buffered grid sums, Adam's two moments as one (2, 2, S) array, the
    keep-in-box clip in place, and one finiteness / std-floor check that stands for the guard's
    (which then has nothing to do). Anything else (a non-finite loss or gradient, a start to drop)
    hands the step back to the general loop, which does it as always.
    """

    def __init__(self, sums: _GaussianGrid | _MomentSums, hyper, box, scale: float, floor: float) -> None:
        self.kernel = sums
        self.lr, self.b1, self.b2, self.eps = hyper
        lo, hi = box[0]
        self.lo, self.hi, self.floor = lo, hi, floor
        # the log-std bounds GaussianMixture1D.clip takes per step, taken once (the same expressions)
        self.ls_bounds = (math.log(1e-4 * scale), min(math.log(1e3 * scale), math.log((hi - lo) / (2 * _BOX_STDS))))

    @classmethod
    def make(cls, prob: _Problem, opt: Optimizer, family: Family, learn_all: bool, box, scale, guard: _Guard, S):
        hyper = getattr(opt.update, "adam_hyper", None)
        ok = hyper is not None and learn_all and box is not None and guard.alpha is None and guard.floor is not None
        if not (ok and isinstance(family, GaussianMixture1D) and family.K == 1):
            return None
        sums = prob.sums_for(S)
        return None if sums is None else cls(sums, hyper, box, scale, guard.floor)

    def run(self, t: int, theta: np.ndarray, state, params: np.ndarray, losses: np.ndarray, guard: _Guard):
        """Steps t.. (theta: step t's parameters, not yet recorded) until the end or until the general
        loop must take over; returns (the step it is to do next, its parameters, Adam's state)."""
        steps, S, kernel = params.shape[0] - 1, theta.shape[0], self.kernel
        lr, b1, b2, floor, sums = self.lr, self.b1, self.b2, self.floor, kernel.sums
        # 0-d arrays and full rows, not Python floats or broadcasts: numpy's fastest loops
        constants = (self.eps, _BOX_STDS, self.lo, self.hi, *self.ls_bounds)
        eps, five, lo, hi, ls_lo, ls_hi = (np.array(v) for v in constants)
        cur, sig = kernel.theta, kernel.sig  # the kernel's inputs, updated in place; views of them
        cur[...] = theta
        cur_t, mu, ls, ls_col, sig_row = cur.T, cur[:, 0], cur[:, 1], cur[:, 1:], sig[:, 0]
        np.exp(ls_col, sig)
        m, v, n = state
        mv = np.stack([m.T, v.T])  # (2, 2, S): Adam's first and second moments, parameters by row
        m_t, v_t = mv
        decay = np.stack([np.full((2, S), b1), np.full((2, S), b2)])
        mix_m, mix_v = np.full((2, S), 1 - b1), np.full((2, S), 1 - b2)
        tmp, den, upd = np.empty_like(mv), np.empty((2, S)), np.empty((2, S))
        tmp_m, tmp_v = tmp
        out = kernel.out[:3]  # d/d mean, d/d log std, loss
        grad, loss, flat, ones = out[:2], out[2], out.reshape(-1), np.ones(3 * S)
        reach, low, high = np.empty(S), np.empty(S), np.empty(S)
        finite, add, minimum, maximum, multiply = math.isfinite, np.add, np.minimum, np.maximum, np.multiply

        def hand_back(t_next: int, th: np.ndarray):
            return t_next, th, (m_t.T.copy(), v_t.T.copy(), n)

        while True:
            params[t] = cur
            sums()
            if not finite(flat.dot(ones)):  # a non-finite loss or gradient: the general loop's case
                return hand_back(t, params[t])
            losses[t] = loss
            if t == steps:
                return hand_back(t + 1, params[t])
            # Adam: m = b1 m + (1 - b1) g, v = b2 v + ((1 - b2) g) g, params - (step m) / (sqrt(v) + eps)
            multiply(mv, decay, mv)
            multiply(grad, mix_m, tmp_m)
            multiply(multiply(grad, mix_v, tmp_v), grad, tmp_v)
            add(mv, tmp, mv)
            n += 1
            step = lr * math.sqrt(1 - b2**n) / (1 - b1**n)
            add(np.sqrt(v_t, den), eps, den)
            np.divide(multiply(m_t, step, upd), den, upd)
            np.subtract(cur_t, upd, cur_t)
            # GaussianMixture1D.clip: the log std into its bounds, the mean 5 stds inside the box
            minimum(maximum(ls, ls_lo, out=ls), ls_hi, out=ls)
            np.exp(ls_col, sig)
            multiply(sig_row, five, reach)
            minimum(maximum(mu, add(reach, lo, low), out=mu), np.subtract(hi, reach, high), out=mu)
            # the guard's check: finite parameters (clipped: only a NaN is left to catch), every std >= floor
            if not (finite(mu.dot(sig_row)) and min(sig_row.tolist()) >= floor):
                return hand_back(t + 1, guard.check_params(t + 1, cur.copy(), params[t]))
            t += 1


def _teacher_log_prob(teacher: Distribution, x: np.ndarray) -> np.ndarray:
    """Teacher log-density at per-start samples x ((S, n) or (S, n, d) or (S, n, m) indices)."""
    S, n = x.shape[:2]
    flat = x.reshape((S * n,) + x.shape[2:])
    return teacher.log_prob(flat).reshape(S, n)


def _mc_teacher_samples(prob: _Problem, theta: np.ndarray, n: int, rng: np.random.Generator):
    """Off-policy: x ~ teacher. D = E_T[g(0, lq - lp)]; grad = E_T[g'(0, lq - lp) dlq/dtheta]."""
    S = theta.shape[0]
    x = prob.teacher.sample(S * n, seed=rng)
    x = x.reshape((S, n) + x.shape[1:])
    lp = _teacher_log_prob(prob.teacher, x)
    lq, aux = prob.family.log_prob(theta, x)
    zero = np.zeros_like(lq)
    terms = prob.kind.integrand(zero, lq - lp, **prob.par)
    c = prob.kind.d_dlq(zero, lq - lp, **prob.par) / n
    return terms.mean(-1), prob.family.log_prob_vjp(theta, aux, c)


def _mc_student_samples(prob: _Problem, theta: np.ndarray, n: int, rng: np.random.Generator, gradient: str):
    """On-policy: x ~ student. h = g(lp - lq, 0); dh/dlq = g'(a, 0) - g(a, 0) with a = lp - lq."""
    fam = prob.family
    x = fam.sample(theta, n, rng)
    lp = _teacher_log_prob(prob.teacher, x)
    lq, aux = fam.log_prob(theta, x)
    a = lp - lq
    zero = np.zeros_like(a)
    h = prob.kind.integrand(a, zero, **prob.par)
    dh_dlq = prob.kind.d_dlq(a, zero, **prob.par) - h  # by homogeneity of g
    if gradient == "score":
        baseline = (h.sum(-1, keepdims=True) - h) / (n - 1)  # leave-one-out: keeps it unbiased
        c = (h - baseline + dh_dlq) / n
        grad = fam.log_prob_vjp(theta, aux, c)
    else:
        dx_lq = fam.grad_x(theta, aux)
        xs = x if x.ndim == 3 else x[..., None]
        dx_lp = prob.teacher.grad_log_prob(xs.reshape(-1, xs.shape[-1]) if x.ndim == 3 else x.reshape(-1))
        dx_lp = dx_lp.reshape(dx_lq.shape)
        scale = dh_dlq if x.ndim == 2 else dh_dlq[..., None]
        grad = fam.log_prob_vjp(theta, aux, dh_dlq / n) + fam.path_vjp(theta, x, aux, scale * (dx_lq - dx_lp) / n)
    return h.mean(-1), grad


# ----------------------------------------------------------------------------------------------
# fit()
# ----------------------------------------------------------------------------------------------


def _fit_box(teacher: _GaussianComponents, starts: list[Distribution]) -> np.ndarray:
    """The integration box (d, 2): the teacher's components +- 6 std, its overall spread +- 7 std
    and every starting student +- 8 std. Students are kept 5 of their stds inside it (see the
    families' ``clip``: all but 6e-7 of their mass is on the grid); the slack lets a student widen
    on its way to an optimum."""
    mean = np.atleast_1d(np.asarray(teacher.mean, float))
    spread = np.sqrt(np.atleast_1d(np.diag(np.atleast_2d(teacher.cov))))
    overall = np.stack([mean - 7.0 * spread, mean + 7.0 * spread], axis=-1)
    parts = [overall, support_box([teacher], tail=6.0), support_box(starts, tail=8.0)]
    return np.stack([np.min([p[:, 0] for p in parts], 0), np.max([p[:, 1] for p in parts], 0)], axis=-1)


def _fit_grid(teacher: _GaussianComponents, box: np.ndarray, n: int | None):
    """A uniform grid over ``box``, fine enough for the teacher's narrowest (conditional) std.

    The trapezoid rule on a Gaussian-like integrand has error ~exp(-2 pi^2 (std/h)^2): 2 points per
    std already gives 1e-34; 1-D uses 4 (it is cheap), 2-D uses 2 (a tensor grid squares the cost).
    """
    d = teacher.dim
    default = 2048 if d == 1 else 128
    n = default if n is None else int(n)
    _, _, cov = teacher.components()
    finest = (1.0 / np.sqrt(np.diagonal(np.linalg.inv(cov), axis1=1, axis2=2))).min(0)  # (d,)
    per_std = 4.0 if d == 1 else 2.0
    cap = 20_000 if d == 1 else 400
    extent = np.abs(box).max()
    if not (np.all(np.isfinite(box)) and np.all(extent <= MAX_REACH * finest)):
        raise ValueError(
            f"the teacher's narrowest std ({finest.min():.3g}) is too small for a fitting grid reaching "
            f"{extent:.3g} (at most {MAX_REACH:g} stds); shift and rescale the teacher and the student"
        )
    needed = np.ceil((box[:, 1] - box[:, 0]) * per_std / finest).astype(int) + 1
    if np.any(needed > cap):
        raise ValueError(
            f"the fitting grid would need {int(needed.max())} points per axis (cap {cap}): the teacher's "
            f"narrowest std ({finest.min():.3g}) is too small for the region the starts cover "
            f"[{box[:, 0].min():.3g}, {box[:, 1].max():.3g}]; start the student closer, or use estimator='mc'"
        )
    per_axis = np.maximum(n, needed)
    return uniform_grid(box, per_axis if d > 1 else int(per_axis[0]))


def fit(
    teacher: Distribution,
    student: Distribution,
    objective: str = "reverse_kl",
    steps: int = 500,
    lr: float = 0.05,
    inits: int = 1,
    seed: Seed = 0,
    estimator: str = "exact",
    gradient: str = "pathwise",
    learn: tuple[str, ...] | str | None = None,
    *,
    n: int = 256,
    sampler: str | None = None,
    optimizer: str | Optimizer = "adam",
    grid: int | None = None,
    **objective_params: Any,
) -> Trajectory:
    """Fit ``student`` to ``teacher`` by minimising ``objective``; every start runs at once.

    Args:
        teacher: the target p (Gaussian / GaussianMixture / Categorical).
        student: the initial q of start 0 (Gaussian, GaussianMixture or FactorizedCategorical);
            its type fixes the family (a K-component mixture stays a K-component mixture).
        objective: a divergence kind (see ``kl_core.KINDS``), its parameters as keywords.
        steps: optimisation steps (0 .. 100000).
        lr: learning rate for the default optimiser.
        inits: number of starts (1 .. 64); starts 1.. are seeded random starts spread over the
            teacher's support.
        seed: seeds the random starts and the Monte-Carlo samples.
        estimator: ``"exact"`` or ``"mc"``.
        gradient: for on-policy Monte Carlo, ``"pathwise"`` (reparameterisation) or ``"score"``
            (REINFORCE with a leave-one-out baseline).
        learn: parameter groups to train (``"mean"``, ``"std"``, ``"weight"``, ``"corr"``,
            ``"logits"``); the rest stay at their starting values. Default: all.
        n: Monte-Carlo samples per step and start; ``n * inits`` at most ``MAX_MC_DRAWS`` (2**20).
        sampler: ``"teacher"`` (off-policy) or ``"student"`` (on-policy) for ``estimator="mc"``;
            default: teacher for forward-type kinds, student otherwise.
        optimizer: ``"adam"``, ``"sgd"`` or an :class:`Optimizer` (then ``lr`` is not used).
        grid: points per axis of the fitting grid (default 2048 in 1-D, 128 in 2-D; raised
            automatically to 4 points per narrowest teacher std).

    Returns:
        A :class:`Trajectory`. Starts whose objective is infinite at the start, or whose student
        degenerates (non-finite parameters, a std below half the grid spacing, an alpha-divergence
        that becomes infinite), are frozen and flagged in ``dropped`` / ``reasons``; the others
        train on. If every start is infinite at the start, ``ValueError``.

    Limits: continuous means in [-1e100, 1e100] and stds in [1e-100, 1e100]; the fitting grid
    (at most 20000 points in 1-D, 400 per axis in 2-D) must resolve the teacher's narrowest std
    over the region the starts cover, else ``ValueError``.

    Examples:
        >>> import kl_core as kc
        >>> t = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])
        >>> traj = kc.fit(t, kc.Gaussian(0.5, 1.0), "forward_kl", steps=600, lr=0.1)
        >>> s = traj.final[0]
        >>> round(s.mean, 2), round(s.std ** 2, 1)  # moment matching: mean 0, variance 10
        (0.0, 10.0)
    """
    k, par = resolve(objective, objective_params)
    _check_pair(teacher, student)
    _check_int("steps", steps, 0, 100_000)
    _check_int("inits", inits, 1, 64)
    _check_int("n", n, 2, 1_000_000)
    if estimator == "mc" and n * inits > MAX_MC_DRAWS:
        raise ValueError(
            f"n x inits must be at most {MAX_MC_DRAWS} Monte-Carlo draws per step, got {n} x {inits} = {n * inits}"
        )
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {short(estimator)}")
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {short(gradient)}")
    if sampler not in (None, "teacher", "student"):
        raise ValueError(f"sampler must be 'teacher', 'student' or None, got {short(sampler)}")
    if isinstance(optimizer, str):
        makers = {"adam": adam, "sgd": sgd}
        if optimizer not in makers:
            raise ValueError(f"optimizer must be one of {tuple(makers)} or an Optimizer, got {short(optimizer)}")
        opt = makers[optimizer](lr)
    elif isinstance(optimizer, Optimizer):
        opt = optimizer
    else:
        raise ValueError(f"optimizer must be 'adam', 'sgd' or an Optimizer, got {short(optimizer)}")

    _check_fit_domain(teacher, student)
    family = family_for(student)
    mask = family.mask(learn)
    learn_all = bool(np.all(mask == 1.0))
    if k.integrand is None and estimator == "mc":
        raise ValueError(f"{objective} has no Monte-Carlo estimator; use estimator='exact'")
    if family.continuous and k.discrete_only:
        raise ValueError(f"{objective} is defined for discrete distributions only")

    rng = as_generator(seed)
    theta0 = family.pack(student)[None]
    if inits > 1:
        theta0 = np.concatenate([theta0, family.random_starts(teacher, inits - 1, rng)])
    theta = theta0 * mask + theta0[:1] * (1 - mask)  # fixed parameters stay at start 0's values

    # where the exact loss can be evaluated: a grid (continuous, 1-D/2-D) or the whole table
    if family.continuous:
        scale = math.sqrt(float(np.mean(np.diag(np.atleast_2d(teacher.cov)))))
        box = _fit_box(teacher, [family.unpack(t) for t in theta]) if teacher.dim <= 2 else None
        x, w = _fit_grid(teacher, box, grid) if box is not None else (None, None)
        prob = _Problem(k, par, teacher, family, x, w, None if x is None else teacher.log_prob(x))
        has_exact = x is not None
    else:
        scale, box = 1.0, None
        prob = _Problem(k, par, teacher, family, None, None, teacher.log_probs.reshape(-1))
        has_exact = True
    if estimator == "exact" and not has_exact:
        raise ValueError(f"estimator='exact' needs a 1-D or 2-D teacher, got {teacher.dim}-D; use estimator='mc'")

    use_sampler = sampler or ("teacher" if k.sampler == "teacher" else "student")
    if estimator == "mc" and use_sampler == "student" and gradient == "pathwise" and not family.reparameterisable:
        raise ValueError(
            "gradient='pathwise' needs a reparameterisable student (continuous, and "
            "1-D if a mixture); use gradient='score'"
        )

    if k.name == "akl":
        step_fn = _akl_step(prob)
    elif estimator == "exact":
        step_fn = prob.exact
    else:
        mc_rng = rng

        def step_fn(th: np.ndarray, with_grad: bool = True):
            if use_sampler == "teacher":
                est, grad = _mc_teacher_samples(prob, th, n, mc_rng)
            else:
                est, grad = _mc_student_samples(prob, th, n, mc_rng, gradient)
            return (prob.exact(th, with_grad=False)[0] if has_exact else est), grad

    guard = _Guard(objective, k, par, teacher, family, prob.x, scale)
    params = np.empty((steps + 1,) + theta.shape)
    losses = np.empty((steps + 1, theta.shape[0]))
    state = opt.init(theta)
    fast = None
    if estimator == "exact" and k.name != "akl":
        fast = _GaussianAdamLoop.make(prob, opt, family, learn_all, box, scale, guard, theta.shape[0])
    t = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        while True:
            if fast is not None and t > 0 and guard.every:  # the common case's loop, until it hands back
                t, theta, state = fast.run(t, theta, state, params, losses, guard)
                fast = None
                if t > steps:
                    break
            loss, grad = step_fn(theta)  # an infinite objective is flagged just below
            loss = np.array(loss, dtype=float)
            if t == 0:
                guard.check_start(theta, loss)
            else:
                guard.check_loss(t, loss, theta, params[t - 1], losses[t - 1])
            params[t], losses[t] = theta, loss
            if t == steps:
                break
            if not (guard.every and np.isfinite(grad).all()):  # a frozen start or a stray NaN: zero its gradient
                grad = np.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0) * guard.alive[:, None]
            new, state = opt.update(theta, grad if learn_all else grad * mask, state)
            new = family.clip(new, box, scale)
            theta = guard.check_params(t + 1, new, theta)
            t += 1
    return Trajectory(
        teacher=teacher,
        family=family,
        params=params,
        loss=losses,
        objective=objective,
        objective_params=par,
        estimator=estimator,
        gradient=gradient if (estimator == "mc" and use_sampler == "student") else None,
        sampler=use_sampler if estimator == "mc" else None,
        optimizer=opt.name,
        seed=seed if isinstance(seed, (int, type(None))) else None,
        dropped=~guard.alive,
        reasons=tuple(guard.reasons),
    )


class _Guard:
    """Watches every start during a fit and freezes the ones that degenerate (see Trajectory.dropped).

    A start is dropped when its objective is infinite at the start; when its parameters stop being
    finite, its loss becomes infinite, a weighted component's std falls below half the grid spacing
    (the grid no longer resolves the student: the loss would be wrong) or, for an alpha outside
    [0, 1], the student leaves the region where the divergence is finite. It then keeps its last
    finite state. If every start is infinite at the start, fit raises ``ValueError``.
    """

    def __init__(self, objective, k: Kind, par, teacher, family: Family, x, scale: float) -> None:
        self.objective, self.k, self.par, self.teacher, self.family = objective, k, par, teacher, family
        self.alive: np.ndarray | None = None
        self.every = False  # every start alive (the common case: the checks below take a fast path)
        self.reasons: list[str] = []
        self.floor = None
        if family.continuous:
            if x is None:
                self.floor = 1e-6 * scale
            else:
                pts = x.reshape(len(x), -1)
                spacing = min(float(np.diff(np.unique(pts[:, j]))[:1].min()) for j in range(pts.shape[1]))
                self.floor = 0.5 * spacing
        alpha = par.get("alpha") if k.name == "alpha" else None
        self.alpha = alpha if alpha is not None and not 0.0 <= alpha <= 1.0 else None

    def _alpha_infinite(self, theta: np.ndarray) -> np.ndarray:
        """For alpha outside [0, 1]: is the integral of p^a q^(1-a) infinite, per start (S,)?"""
        if self.alpha is None or not self.family.continuous:
            return np.zeros(theta.shape[0], bool)
        a = self.alpha
        _, _, prec_q = self.family.spread(theta)  # (S, K, d, d)
        _, _, cp = self.teacher.components()
        v = _alpha_directions(cp.shape[-1])
        form_p = np.einsum("ai,kij,aj->ak", v, np.linalg.inv(cp), v).min(-1)  # (A,)
        form_q = np.einsum("ai,skij,aj->sak", v, prec_q, v).min(-1)  # (S, A)
        return np.any(~(a * form_p + (1.0 - a) * form_q > 0.0), axis=-1)

    def check_start(self, theta: np.ndarray, loss: np.ndarray) -> None:
        bad = ~np.isfinite(loss) | self._alpha_infinite(theta)
        why = f"{self.objective} is infinite at the start"
        if self.alpha is not None:
            side = "wide" if self.alpha < 0 else "narrow"
            why += f" (alpha={self.alpha:g}: the student is too {side} for the teacher)"
        self.alive = ~bad
        self.every = not bad.any()
        self.reasons = [why if b else "" for b in bad]
        if bad.all():
            raise ValueError(
                f"{self.objective} is infinite at the start of all {bad.size} start(s): the teacher gives zero "
                "probability where the student has mass (or the reverse, or an alpha outside [0, 1] with a student "
                "too wide or too narrow); give the teacher a small floor everywhere, or start the student elsewhere"
            )
        loss[bad] = np.inf

    def check_loss(self, t: int, loss: np.ndarray, theta: np.ndarray, prev: np.ndarray, prev_loss: np.ndarray):
        finite = np.isfinite(loss)
        if self.every and finite.all():
            return
        newly = self.alive & ~finite
        for i in np.nonzero(newly)[0]:
            self._drop(i, f"{self.objective} became infinite at step {t}")
            theta[i], loss[i] = prev[i], prev_loss[i]
        dead = ~self.alive & ~newly
        loss[dead] = prev_loss[dead]

    def check_params(self, t: int, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        finite = np.isfinite(new).all(axis=-1)
        every_finite = bool(finite.all())
        for i in () if every_finite else np.nonzero(self.alive & ~finite)[0]:
            self._drop(i, f"the student's parameters stopped being finite at step {t}")
        if self.floor is not None:
            narrow = self.family.narrow(new if every_finite else np.where(finite[:, None], new, old), self.floor)
            for i in np.nonzero(self.alive & narrow)[0] if narrow.any() else ():
                self._drop(i, f"the student's std collapsed below {self.floor:.3g} at step {t}")
        if self.alpha is not None:
            infinite = self._alpha_infinite(np.where(self.alive[:, None], new, old))
            for i in np.nonzero(self.alive & infinite)[0]:
                self._drop(i, f"{self.objective} became infinite at step {t} (alpha={self.alpha:g})")
        if not self.every:
            new[~self.alive] = old[~self.alive]
        return new

    def _drop(self, i: int, why: str) -> None:
        if self.alive[i]:
            self.alive[i] = False
            self.every = False
            self.reasons[i] = why


def _akl_step(prob: _Problem):
    """AKL on a table: head/tail weights from the current student (held constant in the gradient,
    as in the reference implementation), then a weighted sum of forward and reverse KL."""
    from kl_core.divergences import KINDS, akl_weights

    fwd, rev = KINDS["forward_kl"], KINDS["reverse_kl"]
    p = np.exp(prob.lp)

    def step(theta: np.ndarray, with_grad: bool = True):
        lq, aux = prob.family.log_prob(theta, None)
        q = np.exp(lq)
        w_head, w_tail = akl_weights(np.broadcast_to(p, q.shape), q, prob.par["mu"])  # (S,)
        f_val = fwd.integrand(prob.lp, lq).sum(-1)
        r_val = rev.integrand(prob.lp, lq).sum(-1)
        loss = w_head * f_val + w_tail * r_val
        c = w_head[:, None] * fwd.d_dlq(prob.lp, lq) + w_tail[:, None] * rev.d_dlq(prob.lp, lq)  # (S, C)
        return loss, prob.family.log_prob_vjp(theta, aux, c)

    return step


FIT_RANGE = 1e100  # continuous fits: |means| <= this, stds in [1 / this, this] (squares stay finite)


def _check_fit_domain(teacher: Distribution, student: Distribution) -> None:
    """ValueError unless every component's mean and std is inside FIT_RANGE (teacher, then student)."""
    for name, dist in (("teacher", teacher), ("student", student)):
        if not isinstance(dist, _GaussianComponents):
            continue
        stds = np.abs(np.diagonal(dist._chol, axis1=1, axis2=2))
        if np.any(np.abs(dist._mu) > FIT_RANGE) or np.any(stds < 1.0 / FIT_RANGE) or np.any(stds > FIT_RANGE):
            raise ValueError(
                f"fit needs the {name}'s means in [-{FIT_RANGE:g}, {FIT_RANGE:g}] and its stds in "
                f"[{1.0 / FIT_RANGE:g}, {FIT_RANGE:g}]; rescale the problem"
            )


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {short(value)}")
