"""β at the endpoints: the generalized JSD (TRL's ``jsd``) and its scaled form against β, on token logits.

TRL's generalized JSD, ``JSD_β = β KL(p‖m) + (1−β) KL(q‖m)`` with ``m = β p + (1−β) q``, tends to 0 as β → 0 or
β → 1 (both terms compare a distribution with a mixture that is almost itself), while ``jsd`` at exactly β = 0
and β = 1 is defined as forward and reverse KL: the loss and its gradient jump there. ``jsd_scaled`` divides by
β(1−β) and is continuous: ``JSD_β / (β(1−β)) → KL(p‖q)`` as β → 0 and ``→ KL(q‖p)`` as β → 1 (the first-order
term of ``KL(p‖m)`` in ``1−β`` is ``(1−β) KL(q‖p)``; the same on the other side). :func:`beta_profile` measures
both kinds, values and the norm of the gradient with respect to the student's logits, in float64 from the
registry's integrands and their derivatives (``kl_core.divergences.KINDS``, the same formulas
:func:`kl_core.tokens.token_divergence` computes; the tests compare the two); :func:`beta_caption` says what
the numbers show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kl_core.divergences import resolve

__all__ = [
    "BETA_KINDS",
    "CAPTION_BETAS",
    "EXAMPLE",
    "BetaProfile",
    "example_logits",
    "example_note",
    "default_betas",
    "beta_profile",
    "beta_caption",
]

BETA_KINDS = ("jsd", "jsd_scaled")
CAPTION_BETAS = (0.1, 0.9)  # where the caption reads the ratios: near forward KL, near reverse KL
EXAMPLE = {"seed": 0, "positions": 8, "vocab": 32, "scale": 1.0}  # the default token example (example_logits)


def example_logits(
    seed: int = EXAMPLE["seed"],
    positions: int = EXAMPLE["positions"],
    vocab: int = EXAMPLE["vocab"],
    scale: float = EXAMPLE["scale"],
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed token example: (teacher, student) float64 logits (positions, vocab), independent N(0, scale²)
    from ``numpy.random.default_rng(seed)``, the teacher's drawn first.

    Examples:
        >>> t, s = example_logits()
        >>> t.shape, t.dtype
        ((8, 32), dtype('float64'))
    """
    for name, value, low in (("positions", positions, 1), ("vocab", vocab, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 4096:
            raise ValueError(f"{name} must be an integer in [{low}, 4096], got {value!r}"[:120])
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}"[:120])
    if isinstance(scale, bool) or not (isinstance(scale, (int, float)) and 0 < scale <= 100 and math.isfinite(scale)):
        raise ValueError(f"scale must be a number in (0, 100], got {scale!r}"[:120])
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((positions, vocab)) * scale
    student = rng.standard_normal((positions, vocab)) * scale
    return teacher, student


@dataclass(frozen=True)
class BetaProfile:
    """Loss values and student-gradient norms of ``jsd`` and ``jsd_scaled`` over β, and the two KLs at the ends.

    Values are ``token_divergence(..., reduction="mean")`` (nats per position); gradient norms are the L2 norm of
    that loss's gradient with respect to all the student's logits.
    """

    betas: np.ndarray  # (n,) strictly inside (0, 1), increasing
    values: dict[str, np.ndarray]  # kind -> (n,)
    grad_norms: dict[str, np.ndarray]  # kind -> (n,)
    forward_kl: float  # KL(teacher ‖ student): jsd at β = 0 exactly, jsd_scaled's limit at β → 0
    reverse_kl: float  # KL(student ‖ teacher): jsd at β = 1 exactly, jsd_scaled's limit at β → 1
    forward_grad: float
    reverse_grad: float

    def at(self, beta: float) -> dict[str, float]:
        """Both kinds' values and gradient norms at a β of the grid: ``{"jsd": ..., "jsd_grad": ..., ...}``."""
        hits = np.flatnonzero(np.isclose(self.betas, beta, rtol=0, atol=1e-12))
        if hits.size == 0:
            raise ValueError(f"beta must be one of the profile's betas, got {beta!r}"[:120])
        i = int(hits[0])
        out = {}
        for kind in BETA_KINDS:
            out[kind] = float(self.values[kind][i])
            out[kind + "_grad"] = float(self.grad_norms[kind][i])
        return out


def _log_softmax(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=-1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(axis=-1, keepdims=True))


def _loss_and_grad(lp: np.ndarray, lq: np.ndarray, kind: str, **par: float) -> tuple[float, float]:
    """The mean over positions of the divergence, and the L2 norm of its gradient w.r.t. the student's logits."""
    spec, par = resolve(kind, par)
    n = lp.shape[0]
    value = spec.integrand(lp, lq, **par).sum() / n
    d = spec.d_dlq(lp, lq, **par)  # (n, V): dg/dlog q
    # through log_softmax: dL/dz_j = d_j - q_j sum_i d_i
    grad = (d - np.exp(lq) * d.sum(axis=-1, keepdims=True)) / n
    return float(value), float(np.linalg.norm(grad))


def default_betas(n: int = 61) -> np.ndarray:
    """``n`` values of β in (0, 1), dense towards both ends (a logistic grid from 1e-3 to 1 − 1e-3), plus
    :data:`CAPTION_BETAS`."""
    if isinstance(n, bool) or not isinstance(n, int) or not 3 <= n <= 10_000:
        raise ValueError(f"n must be an integer in [3, 10000], got {n!r}"[:120])
    edge = math.log(999.0)
    grid = 1.0 / (1.0 + np.exp(-np.linspace(-edge, edge, n)))
    return np.unique(np.concatenate([grid, CAPTION_BETAS]))


def beta_profile(
    teacher_logits: Any = None,
    student_logits: Any = None,
    betas: np.ndarray | None = None,
) -> BetaProfile:
    """Measure ``jsd`` and ``jsd_scaled`` (value and student-gradient norm) at each β, and both KLs.

    Args:
        teacher_logits, student_logits: (..., V) finite logits, tensors or arrays (computed in float64);
            default :func:`example_logits`.
        betas: values strictly inside (0, 1); default :func:`default_betas` (61 points, dense at the ends).

    Examples:
        >>> prof = beta_profile(betas=np.array([1e-6, 0.5]))
        >>> bool(abs(prof.values["jsd_scaled"][0] / prof.forward_kl - 1) < 1e-4)
        True
    """
    if (teacher_logits is None) != (student_logits is None):
        raise ValueError("give both teacher_logits and student_logits, or neither (the seeded example)")
    if teacher_logits is None:
        teacher_logits, student_logits = example_logits()
    lp, lq = (_finite_logits(x, name) for x, name in ((teacher_logits, "teacher"), (student_logits, "student")))
    if lp.shape != lq.shape:
        raise ValueError(f"teacher_logits and student_logits must have the same shape, got {lp.shape} != {lq.shape}")
    grid = default_betas() if betas is None else np.asarray(betas, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError("betas must be a non-empty 1-D array of finite numbers")
    if not (np.all(grid > 0.0) and np.all(grid < 1.0)):
        raise ValueError("betas must lie strictly inside (0, 1): the endpoints are forward_kl and reverse_kl")
    grid = np.unique(grid)
    values = {kind: np.empty(grid.size) for kind in BETA_KINDS}
    grads = {kind: np.empty(grid.size) for kind in BETA_KINDS}
    for i, beta in enumerate(grid):
        for kind in BETA_KINDS:
            values[kind][i], grads[kind][i] = _loss_and_grad(lp, lq, kind, beta=float(beta))
    forward, forward_grad = _loss_and_grad(lp, lq, "forward_kl")
    reverse, reverse_grad = _loss_and_grad(lp, lq, "reverse_kl")
    return BetaProfile(grid, values, grads, forward, reverse, forward_grad, reverse_grad)


def _finite_logits(x: Any, name: str) -> np.ndarray:
    """float64 log-probabilities (positions, V) of finite logits of shape (..., V) (an array or a torch tensor)."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch here (the app's figures stay torch-free)
        x = x.detach().cpu().double().numpy()
    z = np.asarray(x, dtype=float)
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"{name}_logits must have a vocabulary axis of at least 2 tokens, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name}_logits must be finite (NaN or inf found)")
    return _log_softmax(z.reshape(-1, z.shape[-1]))


def example_note(
    seed: int = EXAMPLE["seed"],
    positions: int = EXAMPLE["positions"],
    vocab: int = EXAMPLE["vocab"],
    scale: float = EXAMPLE["scale"],
) -> str:
    """The example of :func:`example_logits` in words.

    Examples:
        >>> example_note()
        '8 positions over a 32-token vocabulary, teacher and student logits drawn N(0, 1) with seed 0'
    """
    return (
        f"{positions} positions over a {vocab}-token vocabulary, teacher and student logits drawn "
        f"N(0, {scale**2:g}) with seed {seed}"
    )


def _fraction(small: float, large: float) -> str:
    """``small`` as a fraction of ``large``: "1/15" below a half, else "0.62x"."""
    ratio = small / large
    return f"1/{1 / ratio:.0f}" if 0 < ratio < 0.5 else f"{ratio:.2f}x"


def _gap(a: float, b: float) -> str:
    """How far ``a`` is from ``b``, in percent of ``b``."""
    pct = abs(a / b - 1.0) * 100.0
    return f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%"


def beta_caption(profile: BetaProfile) -> str:
    """What the profile shows, from its numbers: the gradients near each end against the KL at that end.

    Examples:
        >>> beta_caption(beta_profile()).startswith("At β = 0.9 the gradient of TRL's jsd is 1/")
        True
    """
    low, high = CAPTION_BETAS
    lo, hi = profile.at(low), profile.at(high)
    first, last = profile.betas[0], profile.betas[-1]
    return (
        f"At β = {high:g} the gradient of TRL's jsd is {_fraction(hi['jsd_grad'], profile.reverse_grad)} of reverse "
        f"KL's (its β = 1 end), jsd_scaled's within {_gap(hi['jsd_scaled_grad'], profile.reverse_grad)} of it; "
        f"at β = {low:g} jsd's is {_fraction(lo['jsd_grad'], profile.forward_grad)} of forward KL's, jsd_scaled's "
        f"within {_gap(lo['jsd_scaled_grad'], profile.forward_grad)}. At exactly β = 0 and 1 jsd is forward KL "
        f"({profile.forward_kl:.3f} nats per token) and reverse KL ({profile.reverse_kl:.3f}); just inside, at "
        f"β = {first:.3g} and {last:.4g}, it is {profile.values['jsd'][0]:.2g} and {profile.values['jsd'][-1]:.2g}: "
        f"the jump."
    )
