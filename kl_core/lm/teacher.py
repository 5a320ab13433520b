"""The exact synthetic teacher: a ``torch.nn.Module`` returning a language's smoothed next-token log-probs.

The interface every model in the LM lab follows: ids (B, T) LongTensor -> logits (B, T, V), the
next-token logits at every position. Here the "logits" are exact log-probabilities::

    T(v | x, y_<t) = (1 - epsilon) * p(v | x, y_<t) + epsilon / V

with ``p`` the language's conditional (``kl_core.lm.languages``). The smoothing floor ``epsilon``
makes every sequence possible, so the reverse KL of a student that mixes modes is large but finite:
a sequence the language never says has teacher probability at most ``epsilon / V`` (one token off
the support), one it does say at least ``(1 - epsilon)^L`` times its language probability. An answer
is *valid* when its teacher probability is at least ``threshold``, which must lie between the two
(checked at construction), so "valid" means exactly "the language says it".

Positions that do not predict an answer token (inside the prompt, after the answer) get uniform
logits; losses and metrics only ever read the answer positions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kl_core.lm.languages import Language

__all__ = ["SyntheticTeacher", "EPSILON", "THRESHOLD"]

EPSILON = 1e-3  # default smoothing: 0.1% of every next-token distribution is spread uniformly
THRESHOLD = 1e-2  # default validity threshold on the teacher's probability of a whole answer


class SyntheticTeacher(nn.Module):
    """The exact, smoothed next-token distribution of a :class:`Language`, as logits (see module docstring).

    Example:
        >>> from kl_core.lm.languages import get_language
        >>> lang = get_language("cities")
        >>> teacher = SyntheticTeacher(lang)
        >>> ids = torch.tensor([lang.encode("bolivia? sucre bolivia?")])
        >>> probs = teacher(ids)[0, -1].exp()  # next token after the repeated question
        >>> round(float(probs[lang.encode("sucre")[0]]), 4)
        0.999
    """

    def __init__(self, language: Language, epsilon: float = EPSILON, threshold: float = THRESHOLD) -> None:
        super().__init__()
        if not (isinstance(epsilon, (int, float)) and 0.0 <= epsilon < 1.0):
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon!r}")
        floor = epsilon / language.vocab_size
        lowest = (1.0 - epsilon) ** language.answer_length * language.min_answer_prob()
        if not (isinstance(threshold, (int, float)) and floor < threshold <= lowest):
            raise ValueError(
                f"threshold must be in ({floor:.3g}, {lowest:.3g}] for {language.name!r} with epsilon={epsilon}: "
                "above the probability of any sequence the language never says and at most that of any it says"
            )
        self.language = language
        self.epsilon = float(epsilon)
        self.threshold = float(threshold)
        # buffers move with .to(device); float32 is exact enough for log-probs >= log(epsilon / V)
        self.register_buffer("prompt_table", language.prompt_ids.clone(), persistent=False)

    @property
    def vocab_size(self) -> int:
        return self.language.vocab_size

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> (B, T, V) log T(v | ids[:, :t+1]) at every position t."""
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}")
        lang = self.language
        B, T = ids.shape
        P, L, V = lang.prompt_length, lang.answer_length, lang.vocab_size
        out = torch.full((B, T, V), -math.log(V), dtype=torch.float32, device=ids.device)  # uniform
        if T < P:
            return out
        prompt = lang.prompt_index(ids[:, :P])  # (B,)
        for t in range(min(L, T - P + 1)):  # position P-1+t predicts answer token t
            out[:, P - 1 + t] = self.answer_log_probs(prompt, ids[:, P : P + t]).float()
        return out

    def answer_log_probs(self, prompt: Tensor, prefix: Tensor) -> Tensor:
        """(B,) prompt indices, (B, t) answer prefixes -> (B, V) float64 log T(next token), smoothed."""
        lang = self.language
        post = lang.mode_log_posterior(prompt, prefix)  # (B, M) unnormalised
        norm = torch.logsumexp(post, -1, keepdim=True)  # (B, 1) log p(prefix)
        slot = lang.slot_log_probs.to(prefix.device)[prompt, :, prefix.shape[1]]  # (B, M, V)
        cond = torch.logsumexp(post[..., None] + slot, 1) - norm  # (B, V) log p(v | prefix)
        possible = torch.isfinite(norm)  # an impossible prefix continues uniformly
        cond = torch.where(possible, cond, torch.full_like(cond, -math.log(lang.vocab_size)))
        cond = torch.nan_to_num(cond, nan=-math.inf)
        if self.epsilon == 0.0:
            return cond
        floor = math.log(self.epsilon / lang.vocab_size)
        return torch.logaddexp(cond + math.log1p(-self.epsilon), torch.full_like(cond, floor))
