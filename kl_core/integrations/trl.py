"""TRL's distillation trainers with any kl_core divergence as the loss: ``KLGKDTrainer``, ``KLDistillationTrainer``.

One import and one argument for a TRL user::

    from kl_core.integrations.trl import KLGKDTrainer

    trainer = KLGKDTrainer(model=student, teacher_model=teacher, args=GKDConfig(...), train_dataset=dataset,
                           processing_class=tokenizer, kl_kind="reverse_kl")

Only the loss changes; the rest is TRL's own code, inherited: on-policy generation by the student with
probability ``lmbda`` and ``seq_kd`` (teacher generations) in ``GKDTrainer.training_step``, the completions of
``DistillationTrainer``, masking (``labels != -100`` after the causal shift: completion tokens only) and the
normalisation: the sum over counted tokens divided by their count (TRL's masked ``batchmean``), or by
``num_items_in_batch``, the count of the whole accumulated batch, under gradient accumulation.

Fused path. When both models expose their output heads (``get_output_embeddings()`` is an ``nn.Linear`` of shape
(V, H)) the loss is :func:`kl_core.fused_token_divergence` on the last hidden states of the counted positions and
the heads' weights and biases: the (B·T, V) logits are never built (``GKDTrainer``'s models are asked for the
last position's logits only, ``logits_to_keep=1``, where they support it). A model whose logits are not its head's
output (``logit_scale``, ``final_logit_softcapping``: checked on the config and, on the first step, on the
numbers) and a model without an ``nn.Linear`` head fall back to :func:`kl_core.token_divergence` on the logits,
with a warning. ``DistillationTrainer`` reads the logit scale and soft-capping from the config itself; a scale
is folded into the head's weight, soft-capping builds the logits of the counted positions.

Importing this module needs TRL (``pip install trl``; tested with trl 1.16.0); importing ``kl_core`` does not.
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:
    import trl as _trl
except ImportError as err:  # pragma: no cover - exercised by a test with trl hidden
    raise ImportError(
        "kl_core.integrations.trl needs TRL, which is not installed: pip install trl (tested with trl==1.16.0)"
    ) from err

try:
    from trl.experimental.gkd import GKDTrainer
    from trl.experimental.utils import empty_cache
except ImportError as err:  # pragma: no cover - TRL before GKDTrainer moved to trl.experimental
    raise ImportError(
        f"kl_core.integrations.trl needs trl.experimental.gkd (tested with TRL 1.16.0), which this TRL "
        f"({_trl.__version__}) lacks: pip install -U trl"
    ) from err

try:
    import trl.trainer.distillation_trainer as _distillation_module
    from trl import DistillationTrainer
except ImportError:  # TRL without the on-policy DistillationTrainer
    DistillationTrainer = None
    _distillation_module = None

from kl_core.distributions import short
from kl_core.divergences import resolve
from kl_core.fused_tokens import fused_token_divergence
from kl_core.tokens import token_divergence

__all__ = ["KLGKDTrainer", "KLDistillationTrainer"]

# config fields by which a transformers model post-processes its head's output (TRL's DistillationTrainer list)
_LOGIT_POSTPROCESSING = ("logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
_SOFTCAP = "final_logit_softcapping"
_ENTROPY_CHUNK_ELEMENTS = 1 << 21  # logits per chunk of the (no-grad) entropy metric


class _KLLoss:
    """The loss options shared by both trainers: the kind, its parameters, the temperature, fused or not."""

    def _kl_setup(self, kl_kind: Any, kl_params: Any, kl_temperature: Any, kl_fused: Any) -> None:
        if kl_params is None:
            kl_params = {}
        if not isinstance(kl_params, dict):
            raise ValueError(f"kl_params must be a dict of the kind's parameters, got {short(kl_params)}")
        resolve(kl_kind, kl_params)  # unknown kind or parameter, or one out of range: ValueError, before any model
        if kl_temperature is not None:
            _check_temperature(kl_temperature)
        if not isinstance(kl_fused, bool):
            raise ValueError(f"kl_fused must be True or False, got {short(kl_fused)}")
        self.kl_kind = kl_kind
        self._kl_given_params = dict(kl_params)
        self.kl_temperature = None if kl_temperature is None else float(kl_temperature)
        self.kl_fused = kl_fused

    def _kl_fill_params(self, trl_beta: float) -> None:
        """A jsd kind without ``beta`` takes TRL's ``args.beta``: ``kl_kind="jsd"`` alone is TRL's own loss."""
        params = dict(self._kl_given_params)
        if self.kl_kind in ("jsd", "jsd_scaled") and "beta" not in params:
            params["beta"] = float(trl_beta)
        _, self.kl_params = resolve(self.kl_kind, params)

    def _kl_options(self, temperature: float, reduction: str, items: Any) -> dict[str, Any]:
        return {
            "kind": self.kl_kind,
            "temperature": temperature,
            "reduction": reduction,
            "num_items_in_batch": items,
            **self.kl_params,
        }


# ----------------------------------------------------------------------------------------------
# GKDTrainer (trl.experimental.gkd): off-policy, on-policy (lmbda) and sequence-level (seq_kd) KD
# ----------------------------------------------------------------------------------------------


class KLGKDTrainer(_KLLoss, GKDTrainer):
    """TRL's ``GKDTrainer`` whose loss is the kl_core divergence ``kl_kind`` (default: TRL's generalized JSD).

    Args:
        *args, **kwargs: as ``trl.experimental.gkd.GKDTrainer`` (model, teacher_model, args=GKDConfig(...), ...).
        kl_kind: any kind of ``kl_core.divergences.KINDS``: forward_kl = KL(teacher‖student), reverse_kl =
            KL(student‖teacher), jsd, jsd_scaled, alpha, skew_forward_kl, skew_reverse_kl, tv, akl.
        kl_params: the kind's parameters, e.g. ``{"beta": 0.9}`` (jsd, jsd_scaled), ``{"alpha": 0.5}`` (alpha, skew
            kinds), ``{"mu": 0.5}`` (akl). A jsd kind without ``beta`` takes ``args.beta``, so ``kl_kind="jsd"``
            alone computes TRL's loss (tested equal to TRL's ``GKDTrainer``).
        kl_temperature: both models' logits are divided by it before the softmax. Default 1.0, as TRL's GKD loss,
            which does not apply ``args.temperature`` (that is the sampling temperature of on-policy generation).
        kl_fused: if False, never use the fused path (the loss is the same; the logits are built).

    Normalisation, as TRL's: the sum over counted positions divided by their count, or, when the ``Trainer``
    passes ``num_items_in_batch`` (models whose forward accepts loss kwargs, e.g. every transformers causal LM),
    by that count of the accumulated batch, so that k micro-batches' gradients add up to the full batch's. A count
    of 0 gives a loss of 0, not NaN. With ``average_tokens_across_devices`` (transformers' default) on several
    processes the count is global and the loss is multiplied by the number of processes, as ``Trainer.compute_loss``
    does, so that the data-parallel average of the gradients is the global batch's (TRL's GKD loss omits this
    factor). On-policy steps keep TRL's behaviour: ``num_items_in_batch`` counts the dataset's completions, not
    the generated ones.

    ``compute_loss(..., return_outputs=True)`` (evaluation with outputs) takes the unfused path: its outputs hold
    the full logits, as TRL's.
    """

    def __init__(
        self,
        *args: Any,
        kl_kind: str = "jsd",
        kl_params: dict[str, float] | None = None,
        kl_temperature: float | None = None,
        kl_fused: bool = True,
        **kwargs: Any,
    ) -> None:
        self._kl_setup(kl_kind, kl_params, kl_temperature, kl_fused)
        super().__init__(*args, **kwargs)
        self._kl_fill_params(self.beta)
        self._kl_heads_checked = False

    @property
    def kl_loss_temperature(self) -> float:
        """The temperature the loss uses (``kl_temperature``, default 1.0 as TRL's GKD loss)."""
        return 1.0 if self.kl_temperature is None else self.kl_temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # logits at position i predict token i + 1: the counted positions are those whose next label is not -100
        counted = inputs["labels"][:, 1:] != -100  # (B, T-1)
        reduction, items = _reduction(num_items_in_batch)
        self.teacher_model.eval()
        loss = None
        student_outputs = None
        if self.kl_fused and not return_outputs:
            loss = self._kl_fused_loss(model, counted, inputs, reduction, items)
        if loss is None:
            student_outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            with torch.no_grad():
                teacher_outputs = self.teacher_model(
                    input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
                )
            loss = token_divergence(
                teacher_outputs.logits[:, :-1, :],  # (B, T-1, V)
                student_outputs.logits[:, :-1, :],  # (B, T-1, V)
                mask=counted,
                **self._kl_options(self.kl_loss_temperature, reduction, items),
            )
        if items is not None and self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            loss = loss * self.accelerator.num_processes
        empty_cache()  # as TRL's GKD loss does
        return (loss, student_outputs) if return_outputs else loss

    def _kl_fused_loss(self, model, counted: Tensor, inputs: dict, reduction: str, items: Any) -> Tensor | None:
        """The fused loss, or None where a model's head does not give its logits (the caller falls back)."""
        student = self.accelerator.unwrap_model(model)
        teacher = self.accelerator.unwrap_model(self.teacher_model)
        s_head, t_head = _linear_head(student), _linear_head(teacher)
        if s_head is None or t_head is None:
            return self._kl_fall_back("a model's get_output_embeddings() is not an nn.Linear (V, H) head")
        s_out = model(**_hidden_kwargs(student, inputs))
        with torch.no_grad():
            t_out = self.teacher_model(**_hidden_kwargs(teacher, inputs))
        if not self._kl_heads_checked:
            # once: the head applied to the last hidden state must give the model's own last logits, at the
            # precision the model ran in (accelerate's mixed-precision autocast wraps the models' forward only)
            with self.accelerator.autocast():
                heads_give_logits = _head_gives_logits(s_head, s_out) and _head_gives_logits(t_head, t_out)
            if not heads_give_logits:
                return self._kl_fall_back("a model's logits are not its head's output (scaled or soft-capped)")
            self._kl_heads_checked = True
        h_s = s_out.hidden_states[-1][:, :-1][counted]  # (N, H): counted positions only
        h_t = t_out.hidden_states[-1][:, :-1][counted]  # (N, H_t)
        return fused_token_divergence(
            h_s,
            s_head.weight,
            s_head.bias,
            teacher_hidden=h_t,
            teacher_weight=_detached(t_head.weight),  # the teacher's parameters get no gradient
            teacher_bias=_detached(t_head.bias),
            **self._kl_options(self.kl_loss_temperature, reduction, items),
        )

    def _kl_fall_back(self, why: str) -> None:
        warnings.warn(f"KLGKDTrainer: {why}; the loss is computed on the logits (not fused)", stacklevel=3)
        self.kl_fused = False
        return None


def _reduction(num_items_in_batch: Any) -> tuple[str, Any]:
    """TRL's normalisation: ``mean`` over counted positions, or ``sum / num_items_in_batch`` (a count >= 1)."""
    if num_items_in_batch is None:
        return "mean", None
    if isinstance(num_items_in_batch, Tensor):
        return "sum", num_items_in_batch.reshape(()).clamp(min=1)
    return "sum", max(num_items_in_batch, 1)


def _linear_head(model: nn.Module) -> nn.Linear | None:
    """The model's output head, if it is a plain ``nn.Linear`` and the config adds no logit post-processing."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Linear) or head.weight.dim() != 2:
        return None
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    if getattr(config, _SOFTCAP, None) is not None:
        return None
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_POSTPROCESSING):
        return None
    return head


def _hidden_kwargs(model: nn.Module, inputs: dict) -> dict[str, Any]:
    """Forward arguments for the last hidden states (and, where supported, only the last position's logits)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    kwargs = {
        "input_ids": inputs["input_ids"],
        "attention_mask": inputs["attention_mask"],
        "output_hidden_states": True,
    }
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        kwargs["logits_to_keep"] = 1
    return kwargs


def _head_gives_logits(head: nn.Linear, outputs: Any) -> bool:
    """Does ``head(last hidden state)`` equal the model's logits at the last position (its dtype's precision)?"""
    last = outputs.hidden_states[-1][:, -1, :]  # (B, H)
    with torch.no_grad():
        projected = F.linear(last, head.weight, head.bias)  # (B, V)
    logits = outputs.logits[:, -1, :].detach()  # (B, V)
    if projected.shape != logits.shape:
        return False
    eps = max(torch.finfo(projected.dtype).eps, torch.finfo(logits.dtype).eps)
    projected, logits = projected.float(), logits.float()
    tol = 8 * eps * (1.0 + float(logits.abs().max()))
    return bool((projected - logits).abs().max() <= tol)


def _detached(x: Tensor | None) -> Tensor | None:
    """``x.detach()``, None kept."""
    return None if x is None else x.detach()


def _check_temperature(t: Any) -> None:
    if isinstance(t, bool) or not (isinstance(t, (int, float)) and math.isfinite(t) and 1e-30 <= t <= 1e30):
        raise ValueError(f"kl_temperature must be None or a number in [1e-30, 1e30], got {short(t)}")


# ----------------------------------------------------------------------------------------------
# DistillationTrainer (trl): on-policy distillation with generated completions
# ----------------------------------------------------------------------------------------------

# TRL 1.16's DistillationTrainer._compute_loss runs the models (TRL's forward passes, masks, logit scale and
# soft-capping read from the config) and hands everything to this module function, by one call:
_TRL_LOSS_NAME = "_chunked_divergence_loss"
_TRL_LOSS_PARAMS = (
    "student_hidden_states",
    "teacher_hidden_states",
    "student_lm_head_weight",
    "teacher_lm_head_weight",
    "completion_mask",
    "beta",
    "num_items_in_batch",
    "student_lm_head_bias",
    "teacher_lm_head_bias",
    "student_logit_scale",
    "teacher_logit_scale",
    "student_final_logit_softcapping",
    "teacher_final_logit_softcapping",
    "temperature",
)


if DistillationTrainer is not None:

    class KLDistillationTrainer(_KLLoss, DistillationTrainer):
        """TRL's on-policy ``DistillationTrainer`` whose loss is the kl_core divergence ``kl_kind``.

        Args:
            *args, **kwargs: as ``trl.DistillationTrainer`` (model, teacher_model, args=DistillationConfig(...)).
            kl_kind, kl_params: as :class:`KLGKDTrainer`; a jsd kind without ``beta`` takes ``args.beta``
                (TRL's default 1.0: reverse KL), so ``kl_kind="jsd"`` alone is TRL's loss.
            kl_temperature: default ``args.temperature``, as TRL's DistillationTrainer (it samples and computes
                the loss at that temperature).
            kl_fused: if False, the loss is ``token_divergence`` on the counted positions' logits (same value).

        Everything but the divergence is TRL's: generation, the completion (and tool) mask, the logit scale and
        soft-capping read from the config, ``num_items_in_batch`` counted over the generated completions, the
        entropy metric (here: the student's, at the loss temperature, computed in chunks without gradient).
        """

        def __init__(
            self,
            *args: Any,
            kl_kind: str = "jsd",
            kl_params: dict[str, float] | None = None,
            kl_temperature: float | None = None,
            kl_fused: bool = True,
            **kwargs: Any,
        ) -> None:
            trl_loss = getattr(_distillation_module, _TRL_LOSS_NAME, None)
            if trl_loss is None or tuple(inspect.signature(trl_loss).parameters) != _TRL_LOSS_PARAMS:
                raise RuntimeError(
                    f"KLDistillationTrainer replaces trl.trainer.distillation_trainer.{_TRL_LOSS_NAME} as TRL 1.16.0 "
                    f"defines it; this TRL ({_trl.__version__}) differs: pip install trl==1.16.0"
                )
            self._kl_setup(kl_kind, kl_params, kl_temperature, kl_fused)
            super().__init__(*args, **kwargs)
            self._kl_fill_params(self.beta)

        def _compute_loss(self, unwrapped_student, inputs, num_items_in_batch):
            # TRL's own _compute_loss, with its one call of the divergence pointed at kl_core for this call only
            original = getattr(_distillation_module, _TRL_LOSS_NAME)
            setattr(_distillation_module, _TRL_LOSS_NAME, self._kl_divergence_loss)
            try:
                return super()._compute_loss(unwrapped_student, inputs, num_items_in_batch)
            finally:
                setattr(_distillation_module, _TRL_LOSS_NAME, original)

        def _kl_divergence_loss(
            self,
            student_hidden_states: Tensor,
            teacher_hidden_states: Tensor,
            student_lm_head_weight: Tensor,
            teacher_lm_head_weight: Tensor,
            completion_mask: Tensor,
            beta: float,
            num_items_in_batch: Tensor | int | None = None,
            student_lm_head_bias: Tensor | None = None,
            teacher_lm_head_bias: Tensor | None = None,
            student_logit_scale: float = 1.0,
            teacher_logit_scale: float = 1.0,
            student_final_logit_softcapping: float | None = None,
            teacher_final_logit_softcapping: float | None = None,
            temperature: float = 1.0,
        ) -> tuple[Tensor, Tensor, Tensor]:
            """TRL's ``_chunked_divergence_loss`` contract: (loss, student entropy sum, counted positions).

            ``beta`` is TRL's; the kind's parameters are ``kl_params`` (whose default beta is the same).
            """
            valid = completion_mask.reshape(-1) != 0
            h_s = student_hidden_states.reshape(-1, student_hidden_states.shape[-1])[valid]  # (N, H)
            h_t = teacher_hidden_states.reshape(-1, teacher_hidden_states.shape[-1])[valid]  # (N, H_t)
            w_s, b_s = _scaled_head(student_lm_head_weight, student_lm_head_bias, student_logit_scale)
            w_t, b_t = _scaled_head(  # the teacher's parameters get no gradient
                _detached(teacher_lm_head_weight), _detached(teacher_lm_head_bias), teacher_logit_scale
            )
            temperature = temperature if self.kl_temperature is None else self.kl_temperature
            reduction, items = _reduction(num_items_in_batch)
            options = self._kl_options(temperature, reduction, items)
            caps = (student_final_logit_softcapping, teacher_final_logit_softcapping)
            if self.kl_fused and caps == (None, None):
                loss = fused_token_divergence(h_s, w_s, b_s, teacher_hidden=h_t, teacher_weight=w_t, teacher_bias=b_t,
                                              **options)  # fmt: skip
            else:  # soft-capping acts on the logits: build them for the counted positions
                s_logits = _softcap(F.linear(h_s, w_s, b_s), caps[0])  # (N, V)
                with torch.no_grad():
                    t_logits = _softcap(F.linear(h_t, w_t, b_t), caps[1])  # (N, V)
                loss = token_divergence(t_logits, s_logits, **options)
            entropy_sum = _entropy_sum(h_s.detach(), _detached(w_s), _detached(b_s), caps[0], temperature)
            return loss, entropy_sum, valid.sum()

else:  # pragma: no cover - TRL without DistillationTrainer

    def __getattr__(name: str):
        if name == "KLDistillationTrainer":
            raise ImportError(
                f"this TRL ({_trl.__version__}) has no DistillationTrainer: pip install -U trl (tested with 1.16.0)"
            )
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _scaled_head(w: Tensor | None, b: Tensor | None, scale: float) -> tuple[Tensor, Tensor | None]:
    """A head's weight and bias as plain tensors (FSDP2 DTensors gathered), times the logit scale."""
    if w is not None and hasattr(w, "full_tensor"):
        w = w.full_tensor()
    if b is not None and hasattr(b, "full_tensor"):
        b = b.full_tensor()
    if scale == 1.0:
        return w, b
    return w * scale, None if b is None else b * scale  # (scale h) W = h (scale W): the same logits


def _softcap(logits: Tensor, cap: float | None) -> Tensor:
    return logits if cap is None else cap * torch.tanh(logits / cap)


def _entropy_sum(h: Tensor, w: Tensor, b: Tensor | None, cap: float | None, temperature: float) -> Tensor:
    """Sum over positions of the student's entropy (nats) at ``temperature``, in chunks, without gradient."""
    total = torch.zeros((), dtype=torch.float32, device=h.device)
    rows = max(1, _ENTROPY_CHUNK_ELEMENTS // w.shape[0])
    with torch.no_grad():
        for lo in range(0, h.shape[0], rows):
            logits = _softcap(F.linear(h[lo : lo + rows], w, b).float(), cap) / temperature  # (n, V)
            log_q = torch.log_softmax(logits, dim=-1)
            total += -(log_q.exp() * log_q).sum()
    return total
