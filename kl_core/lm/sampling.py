"""Tokenizer-free sampling and scoring for any model mapping ids (B, T) to next-token logits (B, T, V).

Every function here takes the model as a plain ``torch.nn.Module``: the synthetic teacher, the
tiny student, or a wrapped Hugging Face causal LM (:func:`wrap_hf`). Randomness is an explicit
``torch.Generator`` on the device of the model's logits.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["generate", "answer_logits", "sequence_log_prob", "HFCausalLM", "wrap_hf"]


def _check_prompts(prompts: Tensor) -> None:
    if not (isinstance(prompts, Tensor) and prompts.ndim == 2 and prompts.dtype == torch.long):
        shape = tuple(prompts.shape) if isinstance(prompts, Tensor) else type(prompts).__name__
        raise ValueError(f"prompts must be a (B, P) LongTensor, got {shape}")
    if prompts.shape[1] < 1:
        raise ValueError("prompts must hold at least one token")


@torch.no_grad()
def generate(
    model: nn.Module, prompts: Tensor, length: int, *, generator: torch.Generator, temperature: float = 1.0
) -> Tensor:
    """Sample ``length`` tokens after each prompt: (B, P) -> (B, P + length).

    Ancestral sampling from ``softmax(logits / temperature)`` at the last position, one token at a
    time (the model is re-run on the whole sequence: the lab's sequences are a few tokens long).
    The model is put in eval mode while sampling and restored afterwards.

    Example:
        >>> from kl_core.lm.languages import get_language
        >>> from kl_core.lm.teacher import SyntheticTeacher
        >>> lang = get_language("cities")
        >>> out = generate(SyntheticTeacher(lang), lang.prompt_ids[:1], 3, generator=torch.Generator().manual_seed(0))
        >>> out.shape
        torch.Size([1, 4])
    """
    _check_prompts(prompts)
    if not (isinstance(length, int) and not isinstance(length, bool) and length >= 0):
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    was_training = model.training
    model.eval()
    try:
        x = prompts
        for _ in range(length):
            logits = model(x)[:, -1, :].float() / temperature  # (B, V)
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)  # (B, 1)
            x = torch.cat([x, nxt], dim=1)
    finally:
        model.train(was_training)
    return x


def answer_logits(model: nn.Module, sequences: Tensor, prompt_length: int) -> Tensor:
    """(B, P + L) sequences -> (B, L, V) the model's logits for each answer token (float32).

    Position ``P - 1 + t`` of the model's output predicts answer token ``t``; the last token of a
    sequence is never fed in.
    """
    if not (1 <= prompt_length < sequences.shape[1]):
        raise ValueError(f"prompt_length must be in [1, {sequences.shape[1] - 1}], got {prompt_length!r}")
    return model(sequences[:, :-1])[:, prompt_length - 1 :].float()


def sequence_log_prob(model: nn.Module, sequences: Tensor, prompt_length: int) -> Tensor:
    """(B, P + L) -> (B,) log-probability of each answer given its prompt, the sum of its token log-probs."""
    logp = torch.log_softmax(answer_logits(model, sequences, prompt_length), -1)  # (B, L, V)
    return logp.gather(-1, sequences[:, prompt_length:, None]).squeeze(-1).sum(-1)


class HFCausalLM(nn.Module):
    """A Hugging Face causal LM as an ids -> logits module (``model(input_ids=ids).logits``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor) -> Tensor:
        return self.model(input_ids=ids, use_cache=False).logits  # (B, T, V)


def wrap_hf(model: nn.Module) -> HFCausalLM:
    """Wrap a ``transformers`` causal LM (e.g. ``GPT2LMHeadModel``) so the lab can train or sample it."""
    return HFCausalLM(model)
