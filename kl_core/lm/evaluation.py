"""What a distilled student looks like, in numbers: sequence-level KLs, validity, mode coverage, entropy.

All of it is measured on the answers of a fixed set of prompts with a fixed evaluation seed.

* ``forward_kl`` / ``reverse_kl`` -- the *sequence-level* KL(T || S) and KL(S || T) of the answer
  distributions, averaged over the prompt distribution. **Exact** when the answer space is small
  enough (``N * V^(L-1) <= max_enumeration``): the model is run on every answer prefix once, which
  gives every next-token distribution, hence the probability of all ``V^L`` answers of every prompt.
  Otherwise **Monte Carlo** with its standard error: ``sum_t KL(T(.|y_<t) || S(.|y_<t))`` on teacher
  samples (its mean is the sequence KL by the chain rule, with less variance than log T - log S),
  and the same with student samples for the reverse KL.
* ``objective`` -- what the training method minimises in expectation (``methods.Objective``):
  the token divergence summed over answer positions, on student prefixes with probability ``lam``
  and on teacher prefixes otherwise; exact or Monte Carlo like the KLs.
* ``validity`` -- the share of student samples whose teacher probability is at least the
  threshold (for a synthetic teacher: answers the language says, no mixed modes);
  ``valid_mass`` -- the student's exact probability of a valid answer (NaN when not enumerable).
* ``mode_coverage`` -- per prompt, the share of the teacher's modes that at least one valid student
  sample falls in (``n_samples`` samples per prompt), averaged over prompts; ``answer_coverage``
  the same for distinct valid answers. ``mode_share[i, m]`` -- the student's probability of a valid
  answer of mode m for prompt i (exact when enumerable, else the share of samples).
* ``entropy`` -- the student's entropy per answer token (exact: sequence entropy / L; else the mean
  next-token entropy along its samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from kl_core.lm.languages import Language
from kl_core.lm.methods import Objective
from kl_core.lm.sampling import answer_logits, generate
from kl_core.lm.teacher import THRESHOLD, SyntheticTeacher
from kl_core.tokens import token_divergence

__all__ = ["Evaluation", "evaluate", "MAX_ENUMERATION", "N_SAMPLES"]

MAX_ENUMERATION = 1 << 16  # most answer prefixes (N * V^(L-1)) enumerated for the exact KLs
N_SAMPLES = 64  # student (and teacher) samples per prompt


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one student at one training step (see module docstring)."""

    step: int
    forward_kl: float
    forward_kl_se: float  # standard error (0.0 when exact)
    reverse_kl: float
    reverse_kl_se: float
    objective: float  # the training method's own objective (NaN if none was given)
    objective_se: float
    exact: bool  # KLs and objective by enumeration (True) or Monte Carlo (False)
    validity: float  # share of student samples with teacher probability >= threshold
    valid_mass: float  # exact student probability of a valid answer (NaN if not enumerable)
    mode_coverage: float  # mean over prompts of (modes hit by a valid sample) / (modes)
    answer_coverage: float  # mean over prompts of (distinct valid answers sampled) / (answers the language says)
    entropy: float  # student entropy per answer token (nats)
    mode_share: np.ndarray  # (N, M) student probability of a valid answer of each mode
    samples: np.ndarray  # (n, P + L) int64 student samples, n = N * n_samples, prompt by prompt
    sample_prompt: np.ndarray  # (n,) prompt index of each sample
    sample_mode: np.ndarray  # (n,) mode index of each valid sample, -1 if invalid
    loss: float = math.nan  # mean training loss since the previous evaluation (set by distill)

    SCALARS = (
        "forward_kl", "reverse_kl", "objective", "validity", "valid_mass", "mode_coverage", "answer_coverage",
        "entropy", "loss",
    )  # fmt: skip

    def as_dict(self) -> dict[str, float | int | bool]:
        """The scalar metrics as plain Python values (for JSON and tables)."""
        out: dict[str, float | int | bool] = {"step": self.step, "exact": self.exact}
        for k in ("forward_kl", "forward_kl_se", "reverse_kl", "reverse_kl_se", "objective", "objective_se"):
            out[k] = float(getattr(self, k))
        for k in ("validity", "valid_mass", "mode_coverage", "answer_coverage", "entropy", "loss"):
            out[k] = float(getattr(self, k))
        return out


def _base_digits(n: int, base: int, width: int, device: torch.device) -> Tensor:
    """(n, width) the base-``base`` digits of 0..n-1, most significant first."""
    idx = torch.arange(n, device=device)
    powers = base ** torch.arange(width - 1, -1, -1, device=device)
    return (idx[:, None] // powers) % base


@torch.no_grad()
def _exact(
    teacher: nn.Module,
    student: nn.Module,
    prompts: Tensor,
    weights: Tensor,
    length: int,
    vocab: int,
    log_threshold: float,
    objective: Objective | None,
    language: Language | None,
    chunk: int,
) -> dict:
    """Sequence-level metrics by enumerating every answer of every prompt (module docstring)."""
    N, P = prompts.shape
    L, V = length, vocab
    R = V ** (L - 1)
    fkl = np.zeros(N)
    rkl = np.zeros(N)
    ent = np.zeros(N)
    vmass = np.zeros(N)
    obj = np.zeros(N)
    n_modes = language.max_modes if language is not None else 1
    share = np.zeros((N, n_modes))
    all_rows = _base_digits(R, V, L - 1, prompts.device)  # (R, L-1)
    for i in range(N):
        for lo in range(0, R, chunk):
            rows = all_rows[lo : lo + chunk]  # (r, L-1) answer prefixes y_1 .. y_{L-1}
            x = torch.cat([prompts[i].expand(rows.shape[0], P), rows], 1)  # (r, P+L-1)
            lt = torch.log_softmax(teacher(x)[:, P - 1 :].double(), -1)  # (r, L, V)
            ls = torch.log_softmax(student(x)[:, P - 1 :].double(), -1)  # (r, L, V)
            gathered_t = lt[:, :-1].gather(-1, rows[..., None]).squeeze(-1)  # (r, L-1)
            gathered_s = ls[:, :-1].gather(-1, rows[..., None]).squeeze(-1)
            zero = torch.zeros(rows.shape[0], 1, dtype=lt.dtype, device=lt.device)
            prefix_t = torch.cat([zero, gathered_t.cumsum(1)], 1)  # (r, L) log T(y_<t)
            prefix_s = torch.cat([zero, gathered_s.cumsum(1)], 1)
            full_t = prefix_t[:, -1:] + lt[:, -1]  # (r, V) log T(y) of every answer
            full_s = prefix_s[:, -1:] + ls[:, -1]
            pt, ps = full_t.exp(), full_s.exp()
            fkl[i] += float((pt * (full_t - full_s)).sum())
            rkl[i] += float((ps * (full_s - full_t)).sum())
            ent[i] += float(-(ps * full_s).sum())
            valid = full_t >= log_threshold  # (r, V)
            vmass[i] += float(ps[valid].sum())
            if objective is not None:
                d = token_divergence(lt, ls, objective.kind, reduction="none", **objective.params).double()  # (r, L)
                dup = V ** torch.arange(L - 1, -1, -1, device=d.device, dtype=torch.float64)  # rows per prefix
                w = objective.lam * prefix_s.exp() + (1.0 - objective.lam) * prefix_t.exp()
                obj[i] += float((w * d / dup).sum())
            if language is not None:
                answers = torch.cat(
                    [rows.repeat_interleave(V, 0), torch.arange(V, device=rows.device).repeat(len(rows))[:, None]], 1
                )
                modes = language.answer_modes(torch.full((len(answers),), i, device=rows.device), answers)  # (r*V,)
                modes = torch.where(valid.reshape(-1), modes, torch.full_like(modes, -1))
                flat = ps.reshape(-1)
                for m in range(n_modes):
                    share[i, m] += float(flat[modes == m].sum())
    w = weights.cpu().numpy()
    return {
        "forward_kl": float(w @ fkl), "forward_kl_se": 0.0, "reverse_kl": float(w @ rkl), "reverse_kl_se": 0.0,
        "entropy": float(w @ ent) / L, "valid_mass": float(w @ vmass),
        "objective": float(w @ obj) if objective is not None else math.nan,
        "objective_se": 0.0 if objective is not None else math.nan,
        "mode_share": share if language is not None else vmass[:, None],
    }  # fmt: skip


def _weighted_mean_se(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """values (N, n): sum_i w_i mean_i and its standard error sqrt(sum_i w_i^2 var_i / n)."""
    n = values.shape[1]
    mean = float(weights @ values.mean(1))
    var = values.var(1, ddof=1) if n > 1 else np.zeros(values.shape[0])
    return mean, float(math.sqrt(float(weights**2 @ var) / n))


@torch.no_grad()
def _monte_carlo(
    teacher: nn.Module,
    student: nn.Module,
    student_x: Tensor,
    teacher_x: Tensor,
    weights: np.ndarray,
    N: int,
    P: int,
    objective: Objective | None,
) -> dict:
    """Sequence-level metrics from samples (module docstring)."""

    def per_position(x: Tensor) -> tuple[Tensor, Tensor]:
        return answer_logits(teacher, x, P), answer_logits(student, x, P)

    t_on_t, s_on_t = per_position(teacher_x)
    t_on_s, s_on_s = per_position(student_x)
    fkl_seq = token_divergence(t_on_t, s_on_t, "forward_kl", reduction="none").double().sum(-1)  # (N*n,)
    rkl_seq = token_divergence(t_on_s, s_on_s, "reverse_kl", reduction="none").double().sum(-1)
    ls = torch.log_softmax(s_on_s.double(), -1)
    ent = -(ls.exp() * ls).sum(-1).mean(-1)  # (N*n,) mean next-token entropy along each sample
    out = {}
    out["forward_kl"], out["forward_kl_se"] = _weighted_mean_se(fkl_seq.cpu().numpy().reshape(N, -1), weights)
    out["reverse_kl"], out["reverse_kl_se"] = _weighted_mean_se(rkl_seq.cpu().numpy().reshape(N, -1), weights)
    out["entropy"] = _weighted_mean_se(ent.cpu().numpy().reshape(N, -1), weights)[0]
    out["valid_mass"] = math.nan
    if objective is None:
        out["objective"] = out["objective_se"] = math.nan
    else:
        parts = []
        for (t, s), share in (((t_on_s, s_on_s), objective.lam), ((t_on_t, s_on_t), 1.0 - objective.lam)):
            d = token_divergence(t, s, objective.kind, reduction="none", **objective.params).double().sum(-1)
            parts.append((share, _weighted_mean_se(d.cpu().numpy().reshape(N, -1), weights)))
        out["objective"] = sum(share * m for share, (m, _) in parts)
        out["objective_se"] = math.sqrt(sum((share * se) ** 2 for share, (_, se) in parts))
    return out


@torch.no_grad()
def evaluate(
    teacher: nn.Module,
    student: nn.Module,
    *,
    language: Language | None = None,
    prompts: Tensor | None = None,
    length: int | None = None,
    objective: Objective | None = None,
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    threshold: float | None = None,
    exact: bool | None = None,
    max_enumeration: int = MAX_ENUMERATION,
    step: int = 0,
) -> Evaluation:
    """Measure ``student`` against ``teacher`` on every prompt (see the module docstring).

    Args:
        teacher, student: ids (B, T) -> logits (B, T, V) modules on the same device.
        language: the language behind the teacher (default: ``teacher.language`` for a
            :class:`SyntheticTeacher`); gives the prompts, answer length and mode labels.
        prompts: (N, P) prompts to evaluate on (default: all of the language's).
        length: answer length (default: the language's).
        objective: the training method's objective to report (``methods.METHODS[name].objective``).
        n_samples: student samples per prompt for validity and coverage (and teacher samples per
            prompt for the Monte-Carlo KLs).
        seed: the evaluation seed; the same seed gives the same samples for the same student.
        threshold: teacher probability of a valid answer (default: the synthetic teacher's, else 1e-2).
        exact: force enumeration (True) or Monte Carlo (False); default: enumerate when
            ``N * V^(L-1) <= max_enumeration``.
        step: the training step recorded in the result.
    """
    if language is None and isinstance(teacher, SyntheticTeacher):
        language = teacher.language
    if prompts is None:
        if language is None:
            raise ValueError("evaluate needs prompts (or a language) to evaluate on")
        prompts = language.prompt_ids
    if length is None:
        if language is None:
            raise ValueError("evaluate needs the answer length (or a language)")
        length = language.answer_length
    if not (isinstance(n_samples, int) and n_samples >= 1):
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    if not (isinstance(length, int) and length >= 1):
        raise ValueError(f"length must be an integer >= 1, got {length!r}")
    if threshold is None:
        threshold = teacher.threshold if isinstance(teacher, SyntheticTeacher) else THRESHOLD
    if not (0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    device = next((p.device for p in student.parameters()), prompts.device)
    prompts = prompts.to(device)
    N, P = prompts.shape
    if language is not None and (language.prompt_length != P or language.answer_length != length):
        raise ValueError("prompts and length must match the language's prompt and answer lengths")
    weights = (
        language.prompt_weights.numpy() if language is not None and N == language.n_prompts else np.full(N, 1.0 / N)
    )
    student_was_training, teacher_was_training = student.training, teacher.training
    student.eval()
    teacher.eval()
    try:
        gen = torch.Generator(device=device).manual_seed(int(seed))
        rep = prompts.repeat_interleave(n_samples, 0)  # (N*n, P) prompt by prompt
        student_x = generate(student, rep, length, generator=gen)  # (N*n, P+L)
        vocab = student(student_x[:1]).shape[-1]
        log_t = torch.log_softmax(answer_logits(teacher, student_x, P).double(), -1)
        seq_t = log_t.gather(-1, student_x[:, P:, None]).squeeze(-1).sum(-1)  # (N*n,) log T(answer)
        valid = seq_t >= math.log(threshold)
        prompt_idx = torch.arange(N, device=device).repeat_interleave(n_samples)
        if language is not None:
            lang_prompt = language.prompt_index(prompts)[prompt_idx]
            modes = language.answer_modes(lang_prompt, student_x[:, P:])
        else:
            modes = torch.zeros_like(prompt_idx)
        modes = torch.where(valid, modes, torch.full_like(modes, -1))
        enumerable = N * vocab ** (length - 1) <= max_enumeration
        use_exact = enumerable if exact is None else bool(exact)
        if use_exact:
            chunk = max(1, max_enumeration // 4)
            metrics = _exact(
                teacher,
                student,
                prompts,
                torch.as_tensor(weights),
                length,
                vocab,
                math.log(threshold),
                objective,
                language,
                chunk,
            )
        else:
            teacher_x = generate(teacher, rep, length, generator=gen)
            metrics = _monte_carlo(teacher, student, student_x, teacher_x, weights, N, P, objective)
    finally:
        student.train(student_was_training)
        teacher.train(teacher_was_training)
    modes_np = modes.cpu().numpy()
    valid_np = valid.cpu().numpy()
    x_np = student_x.cpu().numpy()
    n_modes = language.max_modes if language is not None else 1
    coverage, answers_cov = [], []
    support = language.support_sizes() if language is not None and N == language.n_prompts else None
    for i in range(N):
        sl = slice(i * n_samples, (i + 1) * n_samples)
        k = len(language.prompts[int(language.prompt_index(prompts[i : i + 1])[0])].modes) if language else 1
        coverage.append(len(set(modes_np[sl][valid_np[sl]].tolist())) / k)
        distinct = len({tuple(r) for r in x_np[sl][valid_np[sl]]})
        answers_cov.append(distinct / support[i] if support is not None else math.nan)
    if not use_exact:
        share = np.zeros((N, n_modes))
        for i in range(N):
            sl = modes_np[i * n_samples : (i + 1) * n_samples]
            for m in range(n_modes):
                share[i, m] = float(np.mean(sl == m))
        metrics["mode_share"] = share
    return Evaluation(
        step=int(step),
        forward_kl=metrics["forward_kl"],
        forward_kl_se=metrics["forward_kl_se"],
        reverse_kl=metrics["reverse_kl"],
        reverse_kl_se=metrics["reverse_kl_se"],
        objective=metrics["objective"],
        objective_se=metrics["objective_se"],
        exact=use_exact,
        validity=float(valid_np.mean()),
        valid_mass=metrics["valid_mass"],
        mode_coverage=float(weights @ np.array(coverage)),
        answer_coverage=float(weights @ np.array(answers_cov)),
        entropy=metrics["entropy"],
        mode_share=metrics["mode_share"],
        samples=x_np,
        sample_prompt=prompt_idx.cpu().numpy(),
        sample_mode=modes_np,
    )
