"""Token-level divergences on logits of shape (..., V), memory-bounded, and the k1/k2/k3 KL estimators.

The divergences are the registry's (``kl_core.divergences.KINDS``), applied to the next-token
distributions of a teacher and a student at every position: teacher = p, student = q, argument order
(teacher, student). ``token_divergence`` is a drop-in distillation loss::

    loss = kc.token_divergence(teacher_logits, student_logits, "jsd", beta=0.5, mask=labels != -100)
    loss.backward()

Memory. A naive implementation (``log_softmax`` of both, a stacked mixture, ``kl_div`` with
``reduction="none"``, then autograd) holds several (B, T, V) temporaries alive until ``backward``.
Here the positions are processed in chunks of about ``2**18`` logits; each chunk's value and its
gradient with respect to the logits are computed together (closed forms for ``forward_kl``,
``reverse_kl`` and ``jsd``; a chunk-local autograd pass for the other kinds), so the extra memory is
one gradient buffer the size of the logits plus one chunk's temporaries.

Numerics: log space throughout; chunks are computed in at least float32 (float64 for the
``alpha``, skew, ``tv`` and ``akl`` kinds). Logits may hold ``-inf`` (a filtered vocabulary); a
probability below ``exp(-1e4)`` is treated as that value, so a divergence that is mathematically
infinite (student mass where the teacher has none, under reverse KL) comes back large and finite with
a usable gradient. NaN or ``+inf`` logits raise ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from kl_core.distributions import short
from kl_core.divergences import resolve

__all__ = [
    "token_divergence",
    "REDUCTIONS",
    "KL_ESTIMATORS",
    "kl_estimate",
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
]

REDUCTIONS = ("none", "sum", "mean", "batchmean")
KL_ESTIMATORS = ("k1", "k2", "k3")
_CHUNK_ELEMENTS = 1 << 18  # logits per chunk: 1 MB of float32, cache-sized
_LOG_FLOOR = -1e4  # log-probabilities are clamped here where the logits hold -inf
_FUSED = ("forward_kl", "reverse_kl", "jsd", "jsd_scaled")

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)


def token_divergence(
    teacher_logits: Tensor,
    student_logits: Tensor,
    kind: str = "forward_kl",
    *,
    temperature: float = 1.0,
    mask: Tensor | None = None,
    reduction: str = "batchmean",
    chunk_size: int | None = None,
    num_items_in_batch: int | float | Tensor | None = None,
    **params: float,
) -> Tensor:
    """The divergence ``kind`` between teacher and student next-token distributions, per position.

    Args:
        teacher_logits: (..., V) teacher logits (p); usually without gradient.
        student_logits: (..., V) student logits (q), same shape.
        kind: any divergence of ``kl_core.divergences.KINDS``; its parameters as keywords
            (``beta`` for ``jsd``, ``alpha`` for ``alpha`` and the skew kinds, ``mu`` for ``akl``).
        temperature: both logits are divided by it before the softmax, in [1e-30, 1e30] (a bool is refused).
            Logits anywhere in the float range (e.g. +-3e38 in float32) are computed in float64 where
            float32 would overflow.
        mask: (...) booleans, True where a position counts; the others contribute 0.
        reduction: ``"none"`` -> (...) per-position values; ``"sum"``; ``"mean"`` -> sum / counted
            positions (0 if none counts): this is TRL's *masked* ``batchmean`` (``generalized_jsd_loss``
            with ``labels``); ``"batchmean"`` -> sum / shape[0] (per sequence, as ``torch.nn.KLDivLoss``
            and TRL's GKD loss without labels). An empty batch (no positions) gives 0 for every scalar
            reduction, never NaN.
        chunk_size: positions per chunk (default: about 256K logits per chunk).
        num_items_in_batch: with ``reduction="sum"`` only: the sum over counted positions divided by
            this count of the whole accumulated batch (TRL's name, a positive number or a 0-d tensor), so
            that k micro-batches' gradients add up to the full batch's.

    Returns:
        A tensor (scalar unless ``reduction="none"``), differentiable with respect to both logits.

    Example:
        >>> t = torch.log(torch.tensor([0.7, 0.2, 0.1]))
        >>> s = torch.log(torch.tensor([0.2, 0.5, 0.3]))
        >>> round(token_divergence(t, s, "forward_kl").item(), 6)
        0.583815
    """
    spec, par = resolve(kind, params)
    teacher_logits = _as_logits(teacher_logits, "teacher_logits")
    student_logits = _as_logits(student_logits, "student_logits")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits and student_logits must have the same shape, got "
            f"{tuple(teacher_logits.shape)} != {tuple(student_logits.shape)}"
        )
    lead = student_logits.shape[:-1]
    vocab = student_logits.shape[-1]
    if vocab < 1:
        raise ValueError("the last axis (the vocabulary) of the logits is empty")
    mask = _check_options(temperature, reduction, mask, lead, student_logits.device)
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // vocab)
    elif isinstance(chunk_size, bool) or not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {short(chunk_size)}")

    items = _check_items(num_items_in_batch, reduction)

    flat_mask = None if mask is None else mask.reshape(-1)
    values = _TokenDivergence.apply(
        teacher_logits.reshape(-1, vocab),
        student_logits.reshape(-1, vocab),
        (spec.name, tuple(sorted(par.items())), float(temperature), int(chunk_size), flat_mask),
    )  # (N,)
    return _reduce(values, lead, flat_mask, reduction, items)


def _check_options(temperature: Any, reduction: Any, mask: Any, lead: tuple, device: Any) -> Tensor | None:
    """Validate the temperature and reduction; the mask as booleans of shape ``lead`` (or None)."""
    if isinstance(temperature, bool) or not (
        isinstance(temperature, (int, float)) and math.isfinite(temperature) and 1e-30 <= temperature <= 1e30
    ):
        raise ValueError(f"temperature must be a number in [1e-30, 1e30], got {short(temperature)}")
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {short(reduction)}")
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=device)
    if tuple(mask.shape) != tuple(lead):
        raise ValueError(f"mask must have shape {tuple(lead)} (the logits without V), got {tuple(mask.shape)}")
    return mask.to(torch.bool)


def _reduce(values: Tensor, lead: tuple, flat_mask: Tensor | None, reduction: str, items: Any) -> Tensor:
    """Per-position values (N,) reduced as ``reduction`` (see ``token_divergence``)."""
    if reduction == "none":
        return values.reshape(lead)
    total = values.sum()
    if reduction == "sum":
        if items is None:
            return total
        return total / (items.to(device=total.device, dtype=total.dtype) if isinstance(items, Tensor) else items)
    if reduction == "mean":
        count = values.numel() if flat_mask is None else int(flat_mask.sum())
        return total / max(count, 1)
    return total / max(lead[0] if len(lead) else 1, 1)  # an empty batch: 0 (a sum over no positions)


def _check_items(num_items_in_batch: Any, reduction: str) -> float | Tensor | None:
    """The validated ``num_items_in_batch`` (None, a number > 0, or a 0-d tensor), for ``reduction="sum"``."""
    if num_items_in_batch is None:
        return None
    if reduction != "sum":
        raise ValueError(
            f'num_items_in_batch divides the sum: it needs reduction="sum", got reduction={short(reduction)}'
        )
    if isinstance(num_items_in_batch, Tensor):
        if num_items_in_batch.numel() != 1:
            raise ValueError(f"num_items_in_batch must be a single number, got shape {tuple(num_items_in_batch.shape)}")
        value = float(num_items_in_batch)
    elif isinstance(num_items_in_batch, (int, float, np.integer, np.floating)) and not isinstance(
        num_items_in_batch, (bool, np.bool_)
    ):
        value = float(num_items_in_batch)
    else:
        raise ValueError(f"num_items_in_batch must be a number > 0, got {short(num_items_in_batch)}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"num_items_in_batch must be a finite number > 0, got {short(num_items_in_batch)}")
    if isinstance(num_items_in_batch, Tensor):
        return num_items_in_batch.reshape(())
    return value


class _TokenDivergence(torch.autograd.Function):
    """Per-position values (N,) of a divergence; the logits' gradients are computed in the same pass."""

    @staticmethod
    def forward(ctx: Any, teacher: Tensor, student: Tensor, config: tuple) -> Tensor:
        kind, par, temperature, chunk_size, mask = config
        par = dict(par)
        need_t, need_s = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        n = student.shape[0]
        out_dtype = torch.float64 if torch.float64 in (teacher.dtype, student.dtype) else torch.float32
        values = torch.empty(n, dtype=out_dtype, device=student.device)
        grad_t = torch.empty_like(teacher) if need_t else None
        grad_s = torch.empty_like(student) if need_s else None
        for lo in range(0, n, chunk_size):
            hi = min(lo + chunk_size, n)
            v, gt, gs = _chunk(kind, par, temperature, teacher[lo:hi], student[lo:hi], need_t, need_s)
            if mask is not None:
                keep = mask[lo:hi]
                v = torch.where(keep, v, 0.0)
                gt = None if gt is None else torch.where(keep[:, None], gt, 0.0)
                gs = None if gs is None else torch.where(keep[:, None], gs, 0.0)
            values[lo:hi] = v
            if gt is not None:
                grad_t[lo:hi] = gt
            if gs is not None:
                grad_s[lo:hi] = gs
        ctx.save_for_backward(grad_t, grad_s)
        return values

    @staticmethod
    def backward(ctx: Any, grad_values: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        grad_t, grad_s = ctx.saved_tensors
        scale = grad_values[:, None]
        # the saved buffers are scaled in place, not copied: the memory bound. A second backward through
        # a retained graph fails loudly (torch's saved-tensor version check), never silently wrong.
        return (
            None if grad_t is None else grad_t.mul_(scale.to(grad_t.dtype)),
            None if grad_s is None else grad_s.mul_(scale.to(grad_s.dtype)),
            None,
        )


def _chunk(
    kind: str, par: dict[str, float], temperature: float, t: Tensor, s: Tensor, need_t: bool, need_s: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """(values (n,), d/d teacher logits (n, V) or None, d/d student logits (n, V) or None) for one chunk."""
    wide = (
        torch.float64
        if kind not in _FUSED
        else torch.promote_types(torch.promote_types(t.dtype, s.dtype), torch.float32)
    )
    t = t.detach().to(wide)
    s = s.detach().to(wide)
    finite = _check_finite(t, "teacher_logits") & _check_finite(s, "student_logits")
    if finite and wide != torch.float64 and not _spread_fits(t, s, temperature):
        t, s = t.to(torch.float64), s.to(torch.float64)  # logits near the float32 limit: their gaps overflow
    if temperature != 1.0:
        t = t / temperature
        s = s / temperature
    if kind in _FUSED and finite and not need_t:
        lp = torch.log_softmax(t, dim=-1)  # (n, V)
        lq = torch.log_softmax(s, dim=-1)  # (n, V)
        # below exp(-1e4) (gaps of extreme logits) the floor applies: the generic path below, as for -inf
        if min(float(lp.min()), float(lq.min())) >= _LOG_FLOOR:
            value, grad_s = _fused(kind, par, lp, lq, need_s)
            return value, None, None if grad_s is None else grad_s / temperature
    # any kind, -inf logits, or a teacher that needs a gradient: chunk-local autograd
    t.requires_grad_(need_t)
    s.requires_grad_(need_s)
    with torch.enable_grad():
        lp = torch.log_softmax(t, dim=-1).clamp_min(_LOG_FLOOR)
        lq = torch.log_softmax(s, dim=-1).clamp_min(_LOG_FLOOR)
        value = _INTEGRANDS[kind](lp, lq, **par)  # (n,)
        inputs = [x for x, need in ((t, need_t), (s, need_s)) if need]
        # allow_unused: a kind can ignore one side (skew_forward_kl at alpha = 1 is KL(p || p) = 0)
        grads = list(torch.autograd.grad(value.sum(), inputs, allow_unused=True)) if value.requires_grad else []
        grads += [None] * (len(inputs) - len(grads))
        grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
    g_t = grads.pop(0) / temperature if need_t else None
    g_s = grads.pop(0) / temperature if need_s else None
    return value.detach(), g_t, g_s


def _spread_fits(t: Tensor, s: Tensor, temperature: float) -> bool:
    """Do the tempered logits' gaps (max - min per row) fit the chunk's float type? (finite logits only)"""
    limit = torch.finfo(t.dtype).max / 4.0 * min(temperature, 1.0)
    for x in (t, s):
        if x.numel():
            low, high = torch.aminmax(x)  # one pass, no temporary
            if max(-float(low), float(high)) > limit:
                return False
    return True


def _check_finite(x: Tensor, name: str) -> bool:
    """True if every logit is finite; ValueError on NaN or +inf (-inf is a filtered token)."""
    if math.isfinite(float(x.sum())):  # one pass, no temporary; a NaN or an inf anywhere spoils the sum
        return True
    if bool(torch.isfinite(x).all()):  # only a float32 overflow of the sum
        return True
    if bool(torch.isnan(x).any()):
        raise ValueError(f"{name} contain NaN")
    if bool(torch.isposinf(x).any()):
        raise ValueError(f"{name} contain +inf")
    if bool(torch.isneginf(x).all(dim=-1).any()):
        raise ValueError(f"{name}: a position has every logit -inf (no token left)")
    return False


def _fused(kind: str, par: dict[str, float], lp: Tensor, lq: Tensor, grad: bool) -> tuple[Tensor, Tensor | None]:
    """Closed-form value and (if ``grad``) gradient w.r.t. the student's tempered logits, finite inputs.

    With d_i = dg/dlog q_i, the chain rule through log_softmax gives dL/dz_j = d_j - q_j sum_i d_i.
    """
    q = lq.exp()
    if kind == "forward_kl" or (kind in ("jsd", "jsd_scaled") and par["beta"] == 0.0):
        p = lp.exp()
        value = torch.linalg.vecdot(p, lp.sub_(lq))
        return value, (q.sub_(p) if grad else None)  # d = -p, sum d = -1
    if kind == "reverse_kl" or (kind in ("jsd", "jsd_scaled") and par["beta"] == 1.0):
        log_ratio = lq.sub_(lp)  # in place: lq is not needed again
        value = torch.linalg.vecdot(q, log_ratio)
        # d = q (log q - log p + 1), sum d = KL + 1
        return value, (log_ratio.sub_(value[:, None]).mul_(q) if grad else None)
    beta = par["beta"]
    # generalized JSD (GKD): beta KL(p||m) + (1-beta) KL(q||m), m = beta p + (1-beta) q; the logs of m / q and
    # m / p by log1p/expm1 (their size is beta, not log m: no cancellation at small beta or 1 - beta)
    scale = 1.0 / (beta * (1.0 - beta)) if kind == "jsd_scaled" else 1.0
    m_over_q = _log_mix_gap(lq, lp, beta)  # log m - log q
    m_over_p = _log_mix_gap(lp, lq, 1.0 - beta)  # log m - log p
    d = q.mul_(m_over_q).mul_(-(1.0 - beta) * scale)  # dg/dlog q: the terms through log m cancel
    value = d.sum(-1) - (beta * scale) * torch.linalg.vecdot(lp.exp(), m_over_p)
    if not grad:
        return value, None
    q = lq.exp()
    return value, d.sub_(q * d.sum(-1, keepdim=True))


# ----------------------------------------------------------------------------------------------
# Generic integrands (summed over the vocabulary), differentiated by autograd chunk by chunk.
# Same definitions as kl_core.divergences; lp, lq are finite (clamped) log-probabilities.
# ----------------------------------------------------------------------------------------------


def _kl(la: Tensor, lb: Tensor) -> Tensor:
    return (la.exp() * (la - lb)).sum(-1)


def _log_mix(la: Tensor, lb: Tensor, a: float) -> Tensor:
    """log(a A + (1 - a) B)."""
    if a <= 0.0:
        return lb
    if a >= 1.0:
        return la
    return torch.logaddexp(la + math.log(a), lb + math.log1p(-a))


def _log_mix_gap(la: Tensor, lb: Tensor, w: float) -> Tensor:
    """log((1 - w) A + w B) - log A = log1p(w expm1(log B - log A)), finite inputs, 0 < w < 1.

    Where B / A > e^30 the plain logaddexp form (no cancellation there) replaces the expm1, which would
    overflow; both branches are finite, so autograd through the ``where`` stays finite.
    """
    gap = lb - la
    near = gap < 30.0
    if bool(near.all()):  # the usual case: one expression, in place where no gradient flows through it
        if gap.requires_grad:
            return torch.log1p(w * torch.expm1(gap))
        return torch.expm1(gap, out=gap).mul_(w).log1p_()
    small = torch.log1p(w * torch.expm1(torch.where(near, gap, 0.0)))
    large = torch.logaddexp(math.log1p(-w) + torch.where(near, 0.0, la), math.log(w) + torch.where(near, 0.0, lb))
    return torch.where(near, small, large - torch.where(near, 0.0, la))


def _g_jsd(lp: Tensor, lq: Tensor, beta: float, scaled: bool = False) -> Tensor:
    if beta == 0.0:
        return _kl(lp, lq)
    if beta == 1.0:
        return _kl(lq, lp)
    scale = 1.0 / (beta * (1.0 - beta)) if scaled else 1.0
    m_over_p = _log_mix_gap(lp, lq, 1.0 - beta)
    m_over_q = _log_mix_gap(lq, lp, beta)
    return -scale * (beta * (lp.exp() * m_over_p).sum(-1) + (1.0 - beta) * (lq.exp() * m_over_q).sum(-1))


def _g_alpha(lp: Tensor, lq: Tensor, alpha: float) -> Tensor:
    # Amari: 1/(a b) sum [a p + b q - p^a q^b], b = 1 - a; p^a q^b - p = p expm1(b (lq - lp))
    if alpha == 1.0:
        return _kl(lp, lq)
    if alpha == 0.0:
        return _kl(lq, lp)
    a, b = alpha, 1.0 - alpha
    p, q = lp.exp(), lq.exp()
    # expm1 keeps the digits where p ~ q; where the teacher is (numerically) zero, p expm1(.) is 0 * inf:
    # there p^a q^b - p = exp(a lp + b lq) - p, capped at exp(700) (large and finite, as for a floored KL)
    d = lq - lp
    near = b * d < 30.0
    d_near = torch.where(near, d, torch.zeros_like(d))
    far_exponent = torch.where(near, torch.zeros_like(d), a * lp + b * lq).clamp_max(700.0)
    cross_minus_p = torch.where(near, p * torch.expm1(b * d_near), torch.exp(far_exponent) - p)
    return ((b * (q - p) - cross_minus_p) / (a * b)).sum(-1)


def _g_akl(lp: Tensor, lq: Tensor, mu: float) -> Tensor:
    # Wu et al. 2024: head/tail weights from the L1 gaps, held constant in the gradient
    with torch.no_grad():
        w_head, w_tail = akl_weights(lp.exp(), lq.exp(), mu)
    return w_head * _kl(lp, lq) + w_tail * _kl(lq, lp)


_INTEGRANDS = {
    "forward_kl": lambda lp, lq: _kl(lp, lq),
    "reverse_kl": lambda lp, lq: _kl(lq, lp),
    "jsd": _g_jsd,
    "jsd_scaled": lambda lp, lq, beta: _g_jsd(lp, lq, beta, scaled=True),
    "alpha": _g_alpha,
    "skew_forward_kl": lambda lp, lq, alpha: _kl(lp, _log_mix(lp, lq, alpha)),
    "skew_reverse_kl": lambda lp, lq, alpha: _kl(lq, _log_mix(lq, lp, alpha)),
    "tv": lambda lp, lq: 0.5 * (lp.exp() - lq.exp()).abs().sum(-1),
    "akl": _g_akl,
}


def akl_weights(p: Tensor, q: Tensor, mu: float) -> tuple[Tensor, Tensor]:
    """(head, tail) weights of AKL per position; the torch twin of ``kl_core.divergences.akl_weights``."""
    ps, order = torch.sort(p, dim=-1, descending=True, stable=True)
    qs = torch.gather(q, -1, order)
    gap = (ps - qs).abs()
    tail = torch.cumsum(ps, dim=-1) > mu
    tail[..., 0] = False
    g_head = torch.where(tail, 0.0, gap).sum(-1)
    g_tail = torch.where(tail, gap, 0.0).sum(-1)
    total = g_head + g_tail
    safe = torch.where(total > 0, total, 1.0)
    half = torch.full_like(total, 0.5)
    return torch.where(total > 0, g_head / safe, half), torch.where(total > 0, g_tail / safe, half)


def _as_logits(x: Any, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.asarray(x, dtype=np.float64))
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch tensor (or numpy array) of logits, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must hold floating-point logits, got dtype {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{name} must have at least one axis (the vocabulary), got a scalar")
    return x


# ----------------------------------------------------------------------------------------------
# KL estimators from samples (Schulman, "Approximating KL Divergence", 2020)
# ----------------------------------------------------------------------------------------------


def kl_estimate(log_ratio: ArrayOrTensor, kind: str) -> ArrayOrTensor:
    """Per-sample estimates of KL(S || T) from ``log_ratio = log T(x) - log S(x)``, ``x ~ S``.

    ``k1 = -log r`` (unbiased, high variance, can be negative); ``k2 = (log r)^2 / 2`` (biased, low
    variance, >= 0); ``k3 = (r - 1) - log r`` (unbiased, >= 0, low variance when S and T are close).
    Works elementwise on numpy arrays and torch tensors (differentiable).

    Example:
        >>> kl_estimate(np.array([0.0, -1.0]), "k3").round(4).tolist()
        [0.0, 0.3679]
    """
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kind must be one of {', '.join(KL_ESTIMATORS)}, got {kind!r}")
    if kind == "k1":
        return -log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if isinstance(log_ratio, Tensor):
        return torch.expm1(log_ratio) - log_ratio
    return np.expm1(log_ratio) - log_ratio


# ----------------------------------------------------------------------------------------------
# Sampling transforms of a next-token distribution (last axis)
# ----------------------------------------------------------------------------------------------


def apply_temperature(logits: ArrayOrTensor, t: float) -> ArrayOrTensor:
    """Logits divided by the temperature ``t`` > 0 (t < 1 sharpens, t > 1 flattens)."""
    if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {t!r}")
    return logits / t


def top_k_filter(logits: ArrayOrTensor, k: int) -> ArrayOrTensor:
    """Keep the ``k`` largest logits (ties with the k-th are kept); the others become -inf."""
    x, back = _to_torch(logits)
    vocab = x.shape[-1]
    if not (isinstance(k, (int, np.integer)) and 1 <= k):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if k >= vocab:
        return back(x.clone())
    kth = torch.topk(x, int(k), dim=-1).values[..., -1:]
    return back(torch.where(x < kth, -torch.inf, x))


def top_p_filter(logits: ArrayOrTensor, p: float) -> ArrayOrTensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose mass reaches ``p``; the rest -inf.

    The most likely token is always kept; ``p = 1`` keeps everything.
    """
    if not (isinstance(p, (int, float)) and 0.0 < p <= 1.0):
        raise ValueError(f"p must be in (0, 1], got {p!r}")
    x, back = _to_torch(logits)
    if p >= 1.0:
        return back(x.clone())
    sorted_logits, order = torch.sort(x, dim=-1, descending=True, stable=True)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of the strictly more likely tokens
    drop_sorted = mass_before >= p - 1e-9  # a nucleus that reaches p up to rounding is complete
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return back(torch.where(drop, -torch.inf, x))


def _to_torch(x: Any) -> tuple[Tensor, Any]:
    if isinstance(x, Tensor):
        return x, lambda y: y
    arr = np.asarray(x, dtype=np.float64)
    return torch.from_numpy(arr.copy()), lambda y: y.numpy()
