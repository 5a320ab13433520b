"""Distil your own Hugging Face teacher into your own student on your prompts, with the lab's methods.

    pair = load_pair("ckpt/teacher", "ckpt/student")
    groups = read_prompts("prompts.txt", pair.tokenizer, context=pair.context, length=8)
    results = compare_hf(pair, groups, ("forward_kl", "reverse_kl"), length=8, steps=50, seed=0)
    results["reverse_kl"].final.validity; results["reverse_kl"].student.save_pretrained("out/reverse_kl")

Every method of :data:`kl_core.lm.methods.METHODS` runs as it does on the synthetic languages: answers of
``length`` tokens are sampled after each prompt from the teacher (off-policy methods) or from the student
(on-policy), and the loss is the method's. A batch takes its prompts from one length group (drawn with
probability proportional to the group's size, then prompts uniformly inside it: every prompt is equally
likely). The metrics are :func:`kl_core.lm.open_eval.evaluate_open`'s (Monte Carlo: the teacher is not
enumerable). The student trains with dropout off (eval mode: nothing is drawn from the global RNG, so a
run is reproducible); gradients are clipped to norm 1 as in the synthetic lab. Data parallel under torchrun
like :func:`kl_core.lm.distill.distill` (:mod:`kl_core.lm.parallel`): the result does not depend on the
number of processes.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from kl_core.lm import parallel
from kl_core.lm.distill import BATCH_SIZE, _Adam, _check_int, _check_lr, resolve_device
from kl_core.lm.hf import ModelPair, PromptGroups
from kl_core.lm.methods import resolve_method
from kl_core.lm.open_eval import N_SAMPLES, OpenEvaluation, evaluate_open

__all__ = ["HFDistillResult", "distill_hf", "compare_hf", "final_rows", "verdict", "HF_LR", "HF_STEPS", "HF_EVAL_EVERY"]

HF_LR = 1e-3
HF_STEPS = 100
HF_EVAL_EVERY = 25


@dataclass(frozen=True)
class HFDistillResult:
    """One run on your own models: the metric history, timing and the trained student (a transformers model)."""

    method: str
    params: dict[str, Any]
    seed: int
    device: str
    steps: int
    requested_steps: int
    batch_size: int
    shards: int
    lr: float
    length: int
    history: tuple[OpenEvaluation, ...]
    loss: np.ndarray  # (steps,) global-batch training loss of every step
    train_seconds: float
    eval_seconds: float
    tokens_per_s: float  # global batch x (prompt + answer) tokens per step / train_seconds
    stopped_early: bool
    sample_text: tuple[str, ...]  # the final evaluation's student answers, decoded
    sample_prompt: tuple[int, ...]  # the prompt (file order) of each
    student: nn.Module  # the trained transformers model (save_pretrained)

    @property
    def final(self) -> OpenEvaluation:
        return self.history[-1]


def distill_hf(
    pair: ModelPair,
    prompts: PromptGroups,
    method: str = "reverse_kl",
    *,
    length: int,
    params: dict[str, Any] | None = None,
    steps: int = HF_STEPS,
    lr: float = HF_LR,
    batch_size: int = BATCH_SIZE,
    shards: int = 1,
    seed: int = 0,
    device: str | torch.device = "auto",
    eval_every: int = HF_EVAL_EVERY,
    eval_samples: int = N_SAMPLES,
    eval_seed: int = 0,
    temperature: float = 1.0,
    callback: Callable[[str, int, int, tuple[OpenEvaluation, ...]], bool | None] | None = None,
) -> HFDistillResult:
    """Train a copy of ``pair.student`` on ``pair.teacher`` with ``method`` (module docstring).

    ``callback(method, step, steps, history)`` runs after every evaluation (rank 0); False stops training.
    """
    spec, par = resolve_method(method, params)
    steps = _check_int("steps", steps, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    eval_every = _check_int("eval_every", eval_every, 1)
    length = _check_int("length", length, 1)
    _check_lr(lr)
    if batch_size % shards:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of shards ({shards})")
    dev = resolve_device(device)
    rank, _ = parallel.rank_and_size()
    gens, per_rank = parallel.stream_generators(seed, shards, dev)
    per_stream = batch_size // shards
    teacher = pair.teacher.to(dev).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    # eval mode while training: no dropout, so no draw from the global RNG (reproducible, the same on every rank)
    student = copy.deepcopy(pair.student).to(dev).eval()
    params_list = [p for p in student.parameters() if p.requires_grad]
    opt = _Adam(params_list, lr=lr)
    groups = [g.to(dev) for g in prompts.groups]
    sizes = prompts.sizes.to(dev)
    reward = spec.objective(par).lam > 0.0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()
    history: list[OpenEvaluation] = []
    losses: list[float] = []
    since_eval: list[float] = []
    train_seconds = eval_seconds = 0.0
    tokens = 0

    def run_eval(step: int) -> bool:
        nonlocal eval_seconds
        go = True
        if rank == 0:
            t0 = time.perf_counter()
            with autocast:
                ev = evaluate_open(
                    teacher, student, groups, length, n_samples=eval_samples, seed=eval_seed, step=step,
                    reward=reward, order=prompts.index,
                )  # fmt: skip
            ev = replace(ev, loss=float(np.mean(since_eval)) if since_eval else math.nan)
            history.append(ev)
            eval_seconds += time.perf_counter() - t0
            if callback is not None:
                go = callback(method, step, steps, tuple(history)) is not False
        since_eval.clear()
        return bool(parallel.broadcast_object(go))

    go_on = run_eval(0)
    step = 0
    while go_on and step < steps:
        t0 = time.perf_counter()
        opt.zero_grad()
        local = 0.0
        for gen in gens:
            g = int(torch.multinomial(sizes, 1, generator=gen))
            idx = torch.randint(groups[g].shape[0], (per_stream,), generator=gen, device=dev)
            batch = groups[g][idx]
            with autocast:
                loss = spec.fn(teacher, student, batch, length=length, generator=gen, temperature=temperature, **par)
            (loss / shards).backward()
            local += float(loss.detach()) / shards
            tokens += per_stream * (batch.shape[1] + length)
        parallel.sum_gradients(params_list)
        torch.nn.utils.clip_grad_norm_(params_list, 1.0)
        opt.step()
        step += 1
        value = parallel.all_sum(local, dev)
        if not math.isfinite(value):
            raise ValueError(f"{method}: the loss became {value} at step {step}; lower lr")
        losses.append(value)
        since_eval.append(value)
        train_seconds += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            go_on = run_eval(step)
    stopped = step < steps
    history_all = tuple(parallel.broadcast_object(history))
    tokens = int(parallel.all_sum(tokens, dev))
    final = history_all[-1]
    text = tuple(pair.tokenizer.decode(list(a)) for a in final.samples)
    return HFDistillResult(
        method=method, params=par, seed=int(seed), device=str(dev), steps=step, requested_steps=steps,
        batch_size=batch_size, shards=shards, lr=float(lr), length=length, history=history_all,
        loss=np.array(losses), train_seconds=train_seconds, eval_seconds=eval_seconds,
        tokens_per_s=tokens / train_seconds if train_seconds > 0 else math.nan, stopped_early=stopped,
        sample_text=text, sample_prompt=final.sample_prompt, student=student.model,
    )  # fmt: skip


def compare_hf(
    pair: ModelPair,
    prompts: PromptGroups,
    methods: Sequence[str],
    *,
    params: dict[str, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> dict[str, HFDistillResult]:
    """``distill_hf`` once per method, each from the same initial student; stops after a stopped method."""
    if isinstance(methods, str) or not methods:
        raise ValueError("methods must be a non-empty sequence of method names")
    params = dict(params or {})
    for name in methods:
        resolve_method(name, params.get(name))
    out: dict[str, HFDistillResult] = {}
    for name in methods:
        out[name] = distill_hf(pair, prompts, name, params=params.get(name), **kwargs)
        if out[name].stopped_early:
            break
    return out


def final_rows(results: dict[str, HFDistillResult]) -> list[dict[str, Any]]:
    """One row of final metrics per method (for a table: numbers, never formatted text)."""
    rows = []
    for name, r in results.items():
        f = r.final
        rows.append({
            "method": name, "steps": r.steps, "forward_kl": f.forward_kl, "forward_kl_se": f.forward_kl_se,
            "reverse_kl": f.reverse_kl, "reverse_kl_se": f.reverse_kl_se, "teacher_loglik": f.teacher_loglik,
            "validity": f.validity, "valid_threshold": f.valid_threshold, "distinct": f.distinct,
            "ngram_diversity": f.ngram_diversity, "entropy": f.entropy, "reward": f.reward,
            "train_seconds": r.train_seconds, "tokens_per_s": r.tokens_per_s,
        })  # fmt: skip
    return rows


def verdict(results: dict[str, HFDistillResult]) -> str:
    """One sentence from the final metrics: the most valid method, the most diverse, and the lowest reverse KL.

    Ties go to the first method in ``results``; validity is the share of student answers at least as likely
    per token, to the teacher, as the teacher's own least likely 5%; diversity the distinct-2 share (``open_eval``).
    """
    if not results:
        raise ValueError("verdict needs at least one result")
    finals = {name: r.final for name, r in results.items()}
    valid = max(finals, key=lambda n: finals[n].validity)
    diverse = max(finals, key=lambda n: finals[n].ngram_diversity)
    closest = min(finals, key=lambda n: finals[n].reverse_kl)
    return (
        f"Most valid answers: {valid} ({finals[valid].validity:.0%} of its samples as likely to the teacher as "
        f"the teacher's own answers, of which 95% pass). "
        f"Most diverse: {diverse} (distinct-2 {finals[diverse].ngram_diversity:.2f}). "
        f"Lowest reverse KL: {closest} ({finals[closest].reverse_kl:.3f} ± {finals[closest].reverse_kl_se:.3f} nats)."
    )
