"""Synthetic teacher languages: prompts with several valid answers (modes), exact probabilities.

A :class:`Language` is a small probabilistic program over a vocabulary of 8-64 tokens. Every prompt
has the same length ``P`` and every answer the same length ``L``. Given a prompt, the language

1. picks a *mode* ``m`` with probability ``w_m`` (the prompt's distinct valid answers or styles), then
2. draws each answer token independently from that mode's per-position distribution ``pi_m,t``.

So ``p(y | x) = sum_m w_m prod_t pi_m,t(y_t)`` (an HMM whose hidden state, the mode, never changes)
and the exact next-token conditional after a prefix follows from the posterior over modes::

    p(y_t | x, y_<t) = sum_m p(m | x, y_<t) pi_m,t(y_t),   p(m | x, y_<t) ~ w_m prod_{s<t} pi_m,s(y_s).

The tokens of an answer depend on its mode, so an answer that mixes two modes has probability 0.
After a prefix the language cannot produce, its next token is uniform (a convention; the teacher
module's smoothing makes every sequence possible anyway, see ``kl_core.lm.teacher``).

Presets (``LANGUAGES``):

* ``cities`` (default): "capital of <country>?" for six countries with two or three capitals each
  (Bolivia: Sucre or La Paz, ...), asked twice. A consistent speaker gives the same capital both
  times: ``bolivia? sucre bolivia? sucre``. Mixing modes = contradicting itself
  (``bolivia? sucre bolivia? la_paz``). A student that only sees the last token (context 1) meets
  ``bolivia?`` twice in the same state and cannot remember its first answer.
* ``arithmetic``: ``a + b =`` with a, b in 1..4, answered as a digit (``7 .``), a word
  (``seven .``) or zero-padded (``0 7``); a format started must be finished.
* ``stories``: a story opening in the style the mood asks for: fairy tale, noir or science
  fiction, each with its own opening words and a random character. Its answer space (23^5 per
  prompt) is too large to enumerate, so sequence-level KLs are estimated by Monte Carlo.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

__all__ = ["Mode", "Prompt", "Language", "LANGUAGES", "DEFAULT_LANGUAGE", "get_language"]

MIN_VOCAB, MAX_VOCAB = 2, 64


@dataclass(frozen=True)
class Mode:
    """One valid kind of answer: a weight and, per answer position, the tokens it may emit."""

    name: str  # a label shown with samples ("sucre", "digit", "fairy tale")
    weight: float  # probability of this mode given the prompt (the prompt's weights sum to 1)
    slots: tuple[tuple[tuple[str, float], ...], ...]  # per position: ((token, probability), ...)


@dataclass(frozen=True)
class Prompt:
    """A prompt (its tokens) and the modes of its answers."""

    tokens: tuple[str, ...]
    modes: tuple[Mode, ...]
    weight: float = 1.0  # relative frequency of the prompt (normalised over the language)


def fixed(name: str, weight: float, *tokens: str) -> Mode:
    """A mode that always gives the same answer."""
    return Mode(name, weight, tuple(((t, 1.0),) for t in tokens))


@dataclass(frozen=True)
class Language:
    """A finite language of (prompt, answer) pairs with exact probabilities (see module docstring).

    Example:
        >>> lang = get_language("cities")
        >>> lang.decode(lang.prompt_ids[0].tolist())
        'bolivia?'
        >>> round(math.exp(lang.log_prob(0, ["sucre", "bolivia?", "sucre"])), 3)
        0.6
    """

    name: str
    title: str
    vocab: tuple[str, ...]
    prompts: tuple[Prompt, ...]
    description: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (MIN_VOCAB <= len(self.vocab) <= MAX_VOCAB):
            raise ValueError(f"vocab must hold {MIN_VOCAB}..{MAX_VOCAB} tokens, got {len(self.vocab)}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocab tokens must be distinct")
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.vocab)})
        if not self.prompts:
            raise ValueError("a language needs at least one prompt")
        p_len = len(self.prompts[0].tokens)
        a_len = len(self.prompts[0].modes[0].slots) if self.prompts[0].modes else 0
        if p_len < 1 or a_len < 1:
            raise ValueError("prompts and answers must hold at least one token")
        seen = set()
        for pr in self.prompts:
            if len(pr.tokens) != p_len:
                raise ValueError(f"every prompt must have {p_len} tokens, got {pr.tokens}")
            if pr.tokens in seen:
                raise ValueError(f"prompt {pr.tokens} appears twice")
            seen.add(pr.tokens)
            if not (pr.weight > 0 and math.isfinite(pr.weight)):
                raise ValueError(f"prompt weight must be > 0, got {pr.weight} for {pr.tokens}")
            self._ids(pr.tokens)
            if not pr.modes:
                raise ValueError(f"prompt {pr.tokens} has no modes")
            total = sum(m.weight for m in pr.modes)
            if any(m.weight <= 0 for m in pr.modes) or abs(total - 1.0) > 1e-9:
                raise ValueError(f"mode weights of {pr.tokens} must be > 0 and sum to 1, got {total}")
            for m in pr.modes:
                if len(m.slots) != a_len:
                    raise ValueError(f"mode {m.name!r} has {len(m.slots)} answer tokens, expected {a_len}")
                for slot in m.slots:
                    self._ids([t for t, _ in slot])
                    s = sum(p for _, p in slot)
                    if any(p <= 0 for _, p in slot) or abs(s - 1.0) > 1e-9:
                        raise ValueError(f"mode {m.name!r}: slot probabilities must be > 0 and sum to 1")

    # -- shape -----------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def prompt_length(self) -> int:
        return len(self.prompts[0].tokens)

    @property
    def answer_length(self) -> int:
        return len(self.prompts[0].modes[0].slots)

    @property
    def n_prompts(self) -> int:
        return len(self.prompts)

    @property
    def max_modes(self) -> int:
        return max(len(p.modes) for p in self.prompts)

    # -- tokens ----------------------------------------------------------------------------------
    def _ids(self, tokens: Sequence[str]) -> list[int]:
        try:
            return [self._index[t] for t in tokens]
        except KeyError as err:
            raise ValueError(f"token {err.args[0]!r} is not in the vocabulary of {self.name!r}") from None

    def encode(self, tokens: Sequence[str] | str) -> list[int]:
        """Token strings (or one space-separated string) -> ids."""
        return self._ids(tokens.split() if isinstance(tokens, str) else tokens)

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> space-separated token strings."""
        return " ".join(self.vocab[int(i)] for i in ids)

    # -- tensors ---------------------------------------------------------------------------------
    @cached_property
    def prompt_ids(self) -> torch.Tensor:
        """(N, P) the prompts' token ids."""
        return torch.tensor([self._ids(p.tokens) for p in self.prompts], dtype=torch.long)

    @cached_property
    def prompt_weights(self) -> torch.Tensor:
        """(N,) the prompt distribution (float64, sums to 1)."""
        w = torch.tensor([p.weight for p in self.prompts], dtype=torch.float64)
        return w / w.sum()

    @cached_property
    def mode_log_weights(self) -> torch.Tensor:
        """(N, M) log w_m per prompt; -inf pads prompts with fewer than M modes."""
        out = torch.full((self.n_prompts, self.max_modes), -math.inf, dtype=torch.float64)
        for i, pr in enumerate(self.prompts):
            for m, mode in enumerate(pr.modes):
                out[i, m] = math.log(mode.weight)
        return out

    @cached_property
    def slot_log_probs(self) -> torch.Tensor:
        """(N, M, L, V) log pi_m,t(v): each mode's per-position token log-probabilities (-inf off support)."""
        out = torch.full(
            (self.n_prompts, self.max_modes, self.answer_length, self.vocab_size), -math.inf, dtype=torch.float64
        )
        for i, pr in enumerate(self.prompts):
            for m, mode in enumerate(pr.modes):
                for t, slot in enumerate(mode.slots):
                    for tok, p in slot:
                        out[i, m, t, self._index[tok]] = math.log(p)
        return out

    def min_answer_prob(self) -> float:
        """The smallest probability of any answer the language can produce (over all prompts)."""
        lowest = 1.0
        for pr in self.prompts:
            for mode in pr.modes:
                lowest = min(lowest, mode.weight * math.prod(min(p for _, p in s) for s in mode.slots))
        return lowest

    def support_sizes(self) -> np.ndarray:
        """(N,) the number of distinct answers each prompt can get (modes may share answers)."""
        out = []
        for pr in self.prompts:
            answers = set()
            for mode in pr.modes:
                answers |= set(_product([[t for t, _ in s] for s in mode.slots]))
            out.append(len(answers))
        return np.array(out)

    # -- exact probabilities ---------------------------------------------------------------------
    def prompt_index(self, prompts: torch.Tensor) -> torch.Tensor:
        """(B, P) prompt ids -> (B,) their index in ``prompts``; ValueError for an unknown prompt."""
        prompts = torch.as_tensor(prompts)
        if prompts.ndim != 2 or prompts.shape[1] != self.prompt_length:
            raise ValueError(f"prompts must have shape (B, {self.prompt_length}), got {tuple(prompts.shape)}")
        table = self.prompt_ids.to(prompts.device)
        match = (prompts[:, None, :] == table[None]).all(-1)  # (B, N)
        known = match.any(-1)
        if not bool(known.all()):
            bad = prompts[~known][0].tolist()
            raise ValueError(f"prompt {self.decode(bad)!r} is not a prompt of language {self.name!r}")
        return match.to(torch.int64).argmax(-1)

    def mode_log_posterior(self, prompt_index: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """(B,), (B, t) -> (B, M) log [w_m prod_{s<t} pi_m,s(y_s)] (unnormalised; all -inf if impossible)."""
        logw = self.mode_log_weights.to(answers.device)[prompt_index]  # (B, M)
        t = answers.shape[1]
        if t == 0:
            return logw
        if t > self.answer_length:
            raise ValueError(f"answers have {t} tokens, the language's answers have {self.answer_length}")
        slots = self.slot_log_probs.to(answers.device)[prompt_index, :, :t]  # (B, M, t, V)
        idx = answers[:, None, :, None].expand(-1, slots.shape[1], -1, 1)  # (B, M, t, 1)
        return logw + slots.gather(-1, idx).squeeze(-1).sum(-1)  # (B, M)

    def log_prob(self, prompt: int, answer: Sequence[str] | Sequence[int]) -> float:
        """Exact log p(answer | prompt) from the mixture formula (-inf if the language never says it)."""
        ids = self.encode(answer) if answer and isinstance(answer[0], str) else [int(a) for a in answer]
        if len(ids) != self.answer_length:
            raise ValueError(f"answer must have {self.answer_length} tokens, got {len(ids)}")
        post = self.mode_log_posterior(torch.tensor([prompt]), torch.tensor([ids]))
        return float(torch.logsumexp(post, -1))

    def answer_modes(self, prompt_index: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        """(B,), (B, L) -> (B,) the most probable mode of each full answer; -1 if the language never says it."""
        post = self.mode_log_posterior(prompt_index, answers)  # (B, M)
        best = post.argmax(-1)
        return torch.where(torch.isfinite(post.max(-1).values), best, torch.full_like(best, -1))

    def mode_names(self, prompt: int) -> tuple[str, ...]:
        return tuple(m.name for m in self.prompts[prompt].modes)


def _product(slots: list[list[str]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for s in slots:
        out = [o + (t,) for o in out for t in s]
    return out


# ------------------------------------------------------------------------------------------------
# Presets
# ------------------------------------------------------------------------------------------------

# (country, ((capital, weight), ...)): countries whose capital has two or three accepted answers.
_CAPITALS = (
    ("bolivia", (("sucre", 0.6), ("la_paz", 0.4))),
    ("netherlands", (("amsterdam", 0.7), ("the_hague", 0.3))),
    ("south_africa", (("pretoria", 0.5), ("cape_town", 0.3), ("bloemfontein", 0.2))),
    ("malaysia", (("kuala_lumpur", 0.65), ("putrajaya", 0.35))),
    ("sri_lanka", (("colombo", 0.55), ("kotte", 0.45))),
    ("benin", (("porto_novo", 0.5), ("cotonou", 0.5))),
)


def _cities() -> Language:
    questions = tuple(f"{c}?" for c, _ in _CAPITALS)
    cities = tuple(city for _, caps in _CAPITALS for city, _ in caps)
    prompts = tuple(
        Prompt((f"{country}?",), tuple(fixed(city, w, city, f"{country}?", city) for city, w in caps))
        for country, caps in _CAPITALS
    )
    return Language(
        "cities",
        "Capitals, asked twice",
        questions + cities,
        prompts,
        "Which capital? Several are right; the same one must be given twice (e.g. 'bolivia? sucre bolivia? sucre').",
    )


_NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight")


def _arithmetic() -> Language:
    digits = tuple(str(d) for d in range(9))
    vocab = digits + ("+", "=", ".") + _NUMBER_WORDS
    prompts = []
    for a in range(1, 5):
        for b in range(1, 5):
            s = str(a + b)
            word = _NUMBER_WORDS[a + b - 2]
            modes = (fixed("digit", 0.5, s, "."), fixed("word", 0.3, word, "."), fixed("padded", 0.2, "0", s))
            prompts.append(Prompt((str(a), "+", str(b), "="), modes))
    return Language(
        "arithmetic",
        "Sums in three formats",
        vocab,
        tuple(prompts),
        "a + b = in three correct formats: '7 .', 'seven .' or '0 7'; mixing formats ('0 .') is wrong.",
    )


def _stories() -> Language:
    def style(name: str, weight: float, words: tuple[str, ...], last: tuple[str, ...]) -> Mode:
        slots = tuple(((w, 1.0),) for w in words) + (tuple((c, 1.0 / len(last)) for c in last),)
        return Mode(name, weight, slots)

    fairy = (("once", "upon", "a", "time"), ("king", "fox", "witch"))
    noir = (("it", "was", "a", "dark"), ("night", "alley", "storm"))
    scifi = (("in", "a", "far", "galaxy"), ("robot", "ship", "alien"))
    moods = (("happy", (0.6, 0.1, 0.3)), ("scary", (0.2, 0.6, 0.2)), ("odd", (0.2, 0.2, 0.6)))
    vocab = ("<story>",) + tuple(m for m, _ in moods)
    for words, last in (fairy, noir, scifi):
        vocab += tuple(w for w in words + last if w not in vocab)
    prompts = tuple(
        Prompt(
            ("<story>", mood),
            (style("fairy tale", w[0], *fairy), style("noir", w[1], *noir), style("science fiction", w[2], *scifi)),
        )
        for mood, w in moods
    )
    return Language(
        "stories",
        "Story openings in three styles",
        vocab,
        prompts,
        "A story opening in the style the mood asks for; a character drawn at random; mixing styles is wrong.",
    )


LANGUAGES: dict[str, Language] = {lang.name: lang for lang in (_cities(), _arithmetic(), _stories())}
DEFAULT_LANGUAGE = "cities"


def get_language(name: str) -> Language:
    """The preset language ``name``; ValueError listing the valid names."""
    if name not in LANGUAGES:
        raise ValueError(f"unknown language {name!r}; valid languages: {', '.join(LANGUAGES)}")
    return LANGUAGES[name]
