"""Token divergences fused with the output projection: value and gradients without the (B·T, V) logits.

``fused_token_divergence(student_hidden, student_weight, student_bias, teacher_logits=... | teacher_hidden=...,
teacher_weight=..., kind=...)`` equals ``token_divergence(teacher_logits, student_hidden @ W.T + b, kind)``
with every keyword of :func:`kl_core.tokens.token_divergence`, but the student's logits (and the teacher's, when
it is given by its hidden states and projection) are built one chunk of positions at a time: each chunk's
logits, its divergence and the divergence's gradient with respect to those logits are computed together and
folded at once into the gradients of the hidden states (n, H), the projection (V, H) and the bias (V,). The
largest temporaries are a few (chunk, V) tensors, so the extra memory is the parameters' and hidden states'
gradients plus one chunk, against the several (B·T, V) tensors of an unfused loss.

Backward: for a scalar reduction (every position's weight equal) the gradients accumulated in the forward
pass are scaled; for per-position weights (``reduction="none"`` with a non-uniform upstream gradient) the
chunks are recomputed with those weights. bf16/fp16 inputs are computed in float32, and the gradients are
returned in the inputs' dtypes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from kl_core.divergences import resolve
from kl_core.tokens import _as_logits, _check_items, _check_options, _chunk, _reduce

__all__ = ["fused_token_divergence"]

_FUSED_CHUNK_ELEMENTS = 1 << 23  # logits per chunk: 32 MB of float32, 64 positions at V = 128256 (a fast matmul)


def fused_token_divergence(
    student_hidden: Tensor,
    student_weight: Tensor,
    student_bias: Tensor | None = None,
    *,
    teacher_logits: Tensor | None = None,
    teacher_hidden: Tensor | None = None,
    teacher_weight: Tensor | None = None,
    teacher_bias: Tensor | None = None,
    kind: str = "forward_kl",
    temperature: float = 1.0,
    mask: Tensor | None = None,
    reduction: str = "batchmean",
    num_items_in_batch: int | float | Tensor | None = None,
    chunk_size: int | None = None,
    **params: float,
) -> Tensor:
    """The divergence ``kind`` between teacher and student next-token distributions, logits never materialised.

    Args:
        student_hidden: (..., H) the student's last hidden states.
        student_weight: (V, H) its output projection (``lm_head.weight``); ``student_bias`` (V,) or None.
        teacher_logits: (..., V) the teacher's logits; or, instead, ``teacher_hidden`` (..., H_t) with
            ``teacher_weight`` (V, H_t) and ``teacher_bias`` (V,) or None, projected chunk by chunk too.
        kind, temperature, mask, reduction, num_items_in_batch, params: as :func:`kl_core.token_divergence`.
        chunk_size: positions per chunk (default: about 8M logits per chunk).

    Returns:
        A tensor (scalar unless ``reduction="none"``), differentiable with respect to the student's hidden
        states, weight and bias, and the teacher's inputs where they require a gradient.

    Example:
        >>> from kl_core.tokens import token_divergence
        >>> g = torch.Generator().manual_seed(0)
        >>> h, w, t = torch.randn(2, 5, 8, generator=g), torch.randn(11, 8, generator=g), torch.randn(2, 5, 11)
        >>> fused = fused_token_divergence(h, w, teacher_logits=t, kind="jsd", beta=0.5)
        >>> bool(torch.isclose(fused, token_divergence(t, h @ w.T, "jsd", beta=0.5)))
        True
    """
    spec, par = resolve(kind, params)
    student_hidden = _as_logits(student_hidden, "student_hidden")
    student_weight = _matrix(student_weight, "student_weight", student_hidden.shape[-1])
    vocab = student_weight.shape[0]
    student_bias = _bias(student_bias, "student_bias", vocab)
    lead = tuple(student_hidden.shape[:-1])
    if (teacher_logits is None) == (teacher_hidden is None):
        raise ValueError("give exactly one of teacher_logits or teacher_hidden (with teacher_weight)")
    if teacher_logits is not None:
        if teacher_weight is not None or teacher_bias is not None:
            raise ValueError("teacher_weight and teacher_bias go with teacher_hidden, not with teacher_logits")
        teacher_logits = _as_logits(teacher_logits, "teacher_logits")
        if tuple(teacher_logits.shape) != lead + (vocab,):
            raise ValueError(
                f"teacher_logits must have shape {lead + (vocab,)} (student_hidden's positions, student_weight's "
                f"vocabulary), got {tuple(teacher_logits.shape)}"
            )
        teacher = (teacher_logits.reshape(-1, vocab), None, None)
    else:
        if teacher_weight is None:
            raise ValueError("teacher_hidden needs teacher_weight (V, H_t), the teacher's output projection")
        teacher_hidden = _as_logits(teacher_hidden, "teacher_hidden")
        if tuple(teacher_hidden.shape[:-1]) != lead:
            raise ValueError(
                f"teacher_hidden must have the positions {lead} of student_hidden, got {tuple(teacher_hidden.shape)}"
            )
        teacher_weight = _matrix(teacher_weight, "teacher_weight", teacher_hidden.shape[-1])
        if teacher_weight.shape[0] != vocab:
            raise ValueError(
                f"teacher_weight must have the student's vocabulary {vocab} rows, got {teacher_weight.shape[0]}"
            )
        teacher_bias = _bias(teacher_bias, "teacher_bias", vocab)
        teacher = (teacher_hidden.reshape(-1, teacher_hidden.shape[-1]), teacher_weight, teacher_bias)
    mask = _check_options(temperature, reduction, mask, lead, student_hidden.device)
    items = _check_items(num_items_in_batch, reduction)
    if chunk_size is None:
        chunk_size = max(1, _FUSED_CHUNK_ELEMENTS // vocab)
    elif isinstance(chunk_size, bool) or not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}"[:120])

    flat_mask = None if mask is None else mask.reshape(-1)
    config = (spec.name, tuple(sorted(par.items())), float(temperature), int(chunk_size), flat_mask)
    values = _FusedTokenDivergence.apply(
        config,
        student_hidden.reshape(-1, student_hidden.shape[-1]),
        student_weight,
        student_bias,
        *teacher,
    )
    return _reduce(values, lead, flat_mask, reduction, items)


def _matrix(w: Any, name: str, hidden: int) -> Tensor:
    if not isinstance(w, Tensor) or not w.is_floating_point() or w.dim() != 2:
        raise ValueError(f"{name} must be a floating-point (V, H) tensor, the output projection")
    if w.shape[1] != hidden or w.shape[0] < 1:
        raise ValueError(f"{name} must have shape (V >= 1, {hidden}) to match the hidden size, got {tuple(w.shape)}")
    return w


def _bias(b: Any, name: str, vocab: int) -> Tensor | None:
    if b is None:
        return None
    if not isinstance(b, Tensor) or not b.is_floating_point() or tuple(b.shape) != (vocab,):
        raise ValueError(f"{name} must be None or a floating-point tensor of shape ({vocab},)")
    return b


def _wide(*xs: Tensor | None) -> torch.dtype:
    """The compute dtype: float64 if any input is, else float32 (bf16/fp16 are widened)."""
    return torch.float64 if any(x is not None and x.dtype == torch.float64 for x in xs) else torch.float32


def _sweep(config: tuple, inputs: tuple, needs: tuple, weights: Tensor | None):
    """One pass over the chunks: per-position values and the (weighted) gradients of the needed inputs."""
    kind, par, temperature, chunk_size, mask = config
    par = dict(par)
    hs, ws, bs, ht, wt, bt = inputs
    need_hs, need_ws, need_bs, need_ht, need_wt, need_bt = needs
    teacher_is_logits = wt is None
    wide = _wide(hs, ws, bs, ht, wt, bt)
    ws_w = ws.to(wide)
    bs_w = None if bs is None else bs.to(wide)
    wt_w = None if teacher_is_logits else wt.to(wide)
    bt_w = None if bt is None else bt.to(wide)
    need_s = need_hs or need_ws or need_bs
    need_t = need_ht or need_wt or need_bt
    n = hs.shape[0]
    values = torch.empty(n, dtype=wide, device=hs.device)
    g_hs = torch.zeros(hs.shape, dtype=wide, device=hs.device) if need_hs else None
    g_ws = torch.zeros(ws.shape, dtype=wide, device=ws.device) if need_ws else None
    g_bs = torch.zeros(ws.shape[0], dtype=wide, device=ws.device) if need_bs else None
    g_ht = torch.zeros(ht.shape, dtype=wide, device=ht.device) if need_ht and not teacher_is_logits else None
    g_tl = torch.zeros(ht.shape, dtype=ht.dtype, device=ht.device) if need_ht and teacher_is_logits else None
    g_wt = None if not need_wt else torch.zeros(wt.shape, dtype=wide, device=wt.device)
    g_bt = None if not need_bt else torch.zeros(wt.shape[0], dtype=wide, device=wt.device)
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        h_s = hs[lo:hi].to(wide)
        s_logits = h_s @ ws_w.T if bs_w is None else torch.addmm(bs_w, h_s, ws_w.T)
        if teacher_is_logits:
            t_logits = ht[lo:hi]
        else:
            h_t = ht[lo:hi].to(wide)
            t_logits = h_t @ wt_w.T if bt_w is None else torch.addmm(bt_w, h_t, wt_w.T)
        v, gt, gs = _chunk(kind, par, temperature, t_logits, s_logits, need_t, need_s)
        del s_logits, t_logits
        keep = None if mask is None else mask[lo:hi]
        if keep is not None:
            v = torch.where(keep, v, 0.0)
        values[lo:hi] = v
        scale = None if weights is None else weights[lo:hi, None]
        if keep is not None:
            gs = None if gs is None else torch.where(keep[:, None], gs, 0.0)
            gt = None if gt is None else torch.where(keep[:, None], gt, 0.0)
        if scale is not None:
            gs = None if gs is None else gs.mul_(scale.to(gs.dtype))
            gt = None if gt is None else gt.mul_(scale.to(gt.dtype))
        if gs is not None:
            gs = gs.to(wide)
            if need_hs:
                g_hs[lo:hi] = gs @ ws_w
            if need_ws:
                g_ws.addmm_(gs.T, h_s)
            if need_bs:
                g_bs += gs.sum(0)
        if gt is not None:
            if teacher_is_logits:
                g_tl[lo:hi] = gt.to(g_tl.dtype)
            else:
                gt = gt.to(wide)
                if need_ht:
                    g_ht[lo:hi] = gt @ wt_w
                if need_wt:
                    g_wt.addmm_(gt.T, h_t)
                if need_bt:
                    g_bt += gt.sum(0)
    out_dtype = torch.float64 if wide == torch.float64 else torch.float32
    grads = (g_hs, g_ws, g_bs, g_tl if teacher_is_logits else g_ht, g_wt, g_bt)
    return values.to(out_dtype), grads


class _FusedTokenDivergence(torch.autograd.Function):
    """Per-position values (N,); gradients for hidden states, projections and biases, chunk by chunk."""

    @staticmethod
    def forward(ctx: Any, config: tuple, hs, ws, bs, ht, wt, bt) -> Tensor:
        needs = tuple(ctx.needs_input_grad[1:])
        inputs = (hs, ws, bs, ht, wt, bt)
        values, grads = _sweep(config, tuple(x.detach() if x is not None else None for x in inputs), needs, None)
        ctx.config = config
        ctx.needs = needs
        ctx.save_for_backward(*inputs, *grads)
        return values

    @staticmethod
    def backward(ctx: Any, grad_values: Tensor):
        saved = ctx.saved_tensors
        inputs, grads = saved[:6], saved[6:]
        n = grad_values.shape[0]
        uniform = n == 0 or bool((grad_values == grad_values[0]).all())
        if uniform:  # a scalar reduction: the forward pass's gradients, scaled
            c = grad_values[0] if n else grad_values.new_zeros(())
            # scaled in place, not copied (the memory bound); a second backward fails torch's version check
            out = [None if g is None else g.mul_(c.to(g.dtype)) for g in grads]
        else:  # per-position weights: recompute the chunks with them
            _, out = _sweep(ctx.config, inputs, ctx.needs, grad_values)
            out = list(out)
        result = [None if g is None else g.to(x.dtype) for g, x in zip(out, inputs)]
        return (None, *result)
