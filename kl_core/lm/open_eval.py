"""Metrics of a student when the teacher cannot be enumerated: Monte-Carlo sequence KLs, validity, diversity.

For a teacher that is a real language model nothing is known but its next-token distributions, so every
metric comes from samples of fixed length ``L`` after each prompt (``n_samples`` per prompt, from a
generator seeded by ``seed``: the same seed gives the same samples for the same models):

* ``forward_kl`` / ``reverse_kl`` -- the sequence-level KL(T || S) and KL(S || T) of the answers,
  averaged over the prompts, by Monte Carlo with standard errors: ``sum_t KL(T(.|y_<t) || S(.|y_<t))``
  along **teacher** samples for the forward KL and ``sum_t KL(S || T)`` along **student** samples for the
  reverse KL (by the chain rule each has the sequence KL as its mean, with less variance than the
  log-ratio of the sampled answers).
* ``teacher_loglik`` -- the teacher's mean log-likelihood per token of the student's samples (nats, with
  its standard error); ``validity`` -- the share of student samples the teacher finds plausible: their
  mean per-token teacher log-likelihood is at least ``valid_threshold``, the ``VALID_QUANTILE`` (5%)
  quantile of the same quantity over the **teacher's own** samples of the same prompts. The threshold
  adapts to the vocabulary and to how sharp the teacher is: 95% of the teacher's answers pass it, so a
  student near 0.95 answers like the teacher, and one far below says things the teacher would not.
* ``distinct`` -- per prompt, distinct answers / samples, averaged; ``ngram_diversity`` -- per prompt,
  distinct n-grams / n-grams of the answers pooled, n = min(2, L) (distinct-2), averaged.
* ``entropy`` -- the student's mean next-token entropy along its samples (nats per token).
* ``reward`` -- the on-policy reward per token, mean of ``log T(y_t) - log S(y_t)`` along the student's
  samples (= -reverse KL / L in expectation): reported for the methods that train on student samples.

Prompts come in groups of equal length (:class:`kl_core.lm.hf.PromptGroups`); every prompt weighs the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from kl_core.lm.sampling import answer_logits, generate
from kl_core.tokens import token_divergence

__all__ = ["OpenEvaluation", "evaluate_open", "VALID_QUANTILE", "N_SAMPLES"]

VALID_QUANTILE = 0.05  # valid: teacher log-likelihood per token >= this quantile of the teacher's own answers
N_SAMPLES = 16  # samples per prompt (student and teacher)


@dataclass(frozen=True)
class OpenEvaluation:
    """The metrics of one student at one training step (module docstring)."""

    step: int
    forward_kl: float
    forward_kl_se: float
    reverse_kl: float
    reverse_kl_se: float
    teacher_loglik: float  # nats per token
    teacher_loglik_se: float
    validity: float
    valid_threshold: float  # nats per token: the VALID_QUANTILE quantile over the teacher's own samples
    distinct: float
    ngram_diversity: float
    entropy: float
    reward: float  # log T - log S per token on student samples (NaN when not reported)
    reward_se: float
    samples: tuple[tuple[int, ...], ...]  # the student's answers (token ids), prompt by prompt in file order
    sample_prompt: tuple[int, ...]  # the prompt (file order) of each sample
    loss: float = math.nan

    SCALARS = (
        "forward_kl", "reverse_kl", "teacher_loglik", "validity", "valid_threshold", "distinct", "ngram_diversity",
        "entropy", "reward", "loss",
    )  # fmt: skip

    def as_dict(self) -> dict[str, float | int | bool]:
        """The scalar metrics as plain Python values (NaN stays NaN: the CLI writes it as null)."""
        out: dict[str, float | int | bool] = {"step": self.step, "exact": False}
        for k in (
            "forward_kl", "forward_kl_se", "reverse_kl", "reverse_kl_se", "teacher_loglik", "teacher_loglik_se",
            "validity", "valid_threshold", "distinct", "ngram_diversity", "entropy", "reward", "reward_se", "loss",
        ):  # fmt: skip
            out[k] = float(getattr(self, k))
        return out


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    """values (N, n) -> mean over prompts (equal weights) of the per-prompt means, and its standard error."""
    N, n = values.shape
    mean = float(values.mean())
    var = values.var(1, ddof=1) if n > 1 else np.zeros(N)
    return mean, float(math.sqrt(float(var.sum()) / n) / N)


def _ngram_share(answers: np.ndarray, n: int) -> float:
    grams = [tuple(row[i : i + n]) for row in answers.tolist() for i in range(len(row) - n + 1)]
    return len(set(grams)) / len(grams)


@torch.no_grad()
def evaluate_open(
    teacher: nn.Module,
    student: nn.Module,
    groups: Sequence[Tensor],
    length: int,
    *,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    step: int = 0,
    reward: bool = False,
    valid_quantile: float = VALID_QUANTILE,
    order: Sequence[Sequence[int]] | None = None,
) -> OpenEvaluation:
    """Measure ``student`` against ``teacher`` on every prompt of ``groups`` (module docstring).

    ``order[g][i]`` is the file position of prompt i of group g (default: groups in sequence);
    ``reward`` reports the on-policy reward (else NaN).
    """
    if not (isinstance(n_samples, int) and n_samples >= 2):
        raise ValueError(f"n_samples must be an integer >= 2 (for standard errors), got {n_samples!r}")
    if not (isinstance(length, int) and length >= 1):
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    if not 0.0 <= valid_quantile < 1.0:
        raise ValueError(f"valid_quantile must be in [0, 1), got {valid_quantile!r}")
    device = next((p.device for p in student.parameters()), torch.device("cpu"))
    s_training, t_training = student.training, teacher.training
    student.eval()
    teacher.eval()
    gen = torch.Generator(device=device).manual_seed(int(seed))
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("fkl", "rkl", "ll", "tll", "ent", "rew")}
    distinct, diversity, samples, sample_prompt = [], [], [], []
    n_gram = min(2, length)
    start = 0
    try:
        for g, prompts in enumerate(groups):
            prompts = prompts.to(device)
            N, P = prompts.shape
            rep = prompts.repeat_interleave(n_samples, 0)  # (N*n, P)
            sx = generate(student, rep, length, generator=gen)  # (N*n, P+L)
            tx = generate(teacher, rep, length, generator=gen)
            t_on_s, s_on_s = answer_logits(teacher, sx, P).double(), answer_logits(student, sx, P).double()
            t_on_t, s_on_t = answer_logits(teacher, tx, P).double(), answer_logits(student, tx, P).double()
            rkl = token_divergence(t_on_s, s_on_s, "reverse_kl", reduction="none").sum(-1)  # (N*n,)
            fkl = token_divergence(t_on_t, s_on_t, "forward_kl", reduction="none").sum(-1)
            lt_s = torch.log_softmax(t_on_s, -1).gather(-1, sx[:, P:, None]).squeeze(-1)  # (N*n, L)
            ls_all = torch.log_softmax(s_on_s, -1)
            ls_s = ls_all.gather(-1, sx[:, P:, None]).squeeze(-1)
            lt_t = torch.log_softmax(t_on_t, -1).gather(-1, tx[:, P:, None]).squeeze(-1)
            ll = lt_s.mean(-1)  # (N*n,) teacher log-likelihood per token of each student answer
            ent = -(ls_all.exp() * ls_all).sum(-1).mean(-1)
            for key, v in (
                ("fkl", fkl), ("rkl", rkl), ("ll", ll), ("tll", lt_t.mean(-1)), ("ent", ent),
                ("rew", (lt_s - ls_s).mean(-1)),
            ):  # fmt: skip
                rows[key].append(v.cpu().numpy().reshape(N, n_samples))
            answers = sx[:, P:].cpu().numpy().reshape(N, n_samples, length)
            where = order[g] if order is not None else range(start, start + N)
            start += N
            for i, pos in enumerate(where):
                distinct.append(len({tuple(a) for a in answers[i].tolist()}) / n_samples)
                diversity.append(_ngram_share(answers[i], n_gram))
                samples.extend(tuple(a) for a in answers[i].tolist())
                sample_prompt.extend([int(pos)] * n_samples)
    finally:
        student.train(s_training)
        teacher.train(t_training)
    stacked = {k: np.concatenate(v, 0) for k, v in rows.items()}  # (N_total, n)
    fkl_m, fkl_se = _mean_se(stacked["fkl"])
    rkl_m, rkl_se = _mean_se(stacked["rkl"])
    ll_m, ll_se = _mean_se(stacked["ll"])
    rew_m, rew_se = _mean_se(stacked["rew"]) if reward else (math.nan, math.nan)
    threshold = float(np.quantile(stacked["tll"], valid_quantile))
    by_file = np.argsort(np.array(sample_prompt), kind="stable")
    return OpenEvaluation(
        step=int(step),
        forward_kl=fkl_m,
        forward_kl_se=fkl_se,
        reverse_kl=rkl_m,
        reverse_kl_se=rkl_se,
        teacher_loglik=ll_m,
        teacher_loglik_se=ll_se,
        validity=float((stacked["ll"] >= threshold).mean()),
        valid_threshold=threshold,
        distinct=float(np.mean(distinct)),
        ngram_diversity=float(np.mean(diversity)),
        entropy=float(stacked["ent"].mean()),
        reward=rew_m,
        reward_se=rew_se,
        samples=tuple(samples[i] for i in by_file),
        sample_prompt=tuple(sample_prompt[i] for i in by_file),
    )
