"""The distillation loop: train a student on a teacher with one method, evaluate as it goes.

    result = distill("cities", method="reverse_kl", steps=300, seed=0)
    result.final.validity, result.final.mode_coverage, result.series("reverse_kl")
    results = compare("cities", ("forward_kl", "reverse_kl"), steps=300, seed=0)  # same initial student

``teacher`` is a preset name, a :class:`Language` (wrapped in a :class:`SyntheticTeacher`), a
``SyntheticTeacher``, or any module mapping ids (B, T) to logits (B, T, V) (then pass ``prompts`` and
``length``, and ``language`` if you want mode labels). ``student`` is an :class:`LMConfig` (a fresh
:class:`TinyLM` initialised from ``seed``), any such module (trained in place on a deep copy), or
None for the default student (``default_student``: a bigram-sized ``TinyLM``).

Reproducible: the student's initialisation, the prompts of every batch, every sample and every
evaluation come from ``torch.Generator`` objects seeded by ``seed`` and ``eval_seed``; the global RNG
is never used. ``device="auto"`` takes CUDA when present (with bf16 autocast), else the CPU.

Data parallel under ``torchrun --nproc-per-node W -m kl_core.lm ...`` (gloo on the CPU, nccl on CUDA): with
``shards`` sample streams (a multiple of W) each process draws its streams' prompts and samples, the
gradients are summed over the processes and rank 0 evaluates (``kl_core.lm.parallel``); the trained student
is the one-process run's, whatever W.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kl_core.distributions import short
from kl_core.lm import parallel
from kl_core.lm.evaluation import N_SAMPLES, Evaluation, evaluate
from kl_core.lm.languages import Language, get_language
from kl_core.lm.methods import resolve_method
from kl_core.lm.model import LMConfig, TinyLM
from kl_core.lm.teacher import SyntheticTeacher

__all__ = [
    "DistillResult",
    "Progress",
    "StopTraining",
    "distill",
    "compare",
    "default_student",
    "resolve_device",
    "DEMO_METHODS",
    "DEMO_STEPS",
]

DEMO_METHODS = ("forward_kl", "reverse_kl")  # the default demo: mode-covering vs mode-seeking, same student
DEMO_STEPS = 300
LR = 1e-2
BATCH_SIZE = 64
EVAL_EVERY = 50


class StopTraining(Exception):
    """Raise from a ``distill`` callback to stop training after the current evaluation."""


@dataclass(frozen=True)
class Progress:
    """What a callback sees at every evaluation."""

    method: str
    step: int
    steps: int  # the requested number of steps
    history: tuple[Evaluation, ...]  # every evaluation so far, the latest last


@dataclass(frozen=True)
class DistillResult:
    """One distillation run: the metric history, the final samples, timing and the trained student."""

    method: str
    params: dict[str, Any]  # the method's parameters, defaults filled in
    language: str | None  # the teacher language's name (None for a teacher module without one)
    seed: int
    device: str  # "cpu", "cuda", "cuda:1", ...
    steps: int  # steps completed (fewer than requested if stopped early)
    requested_steps: int
    batch_size: int
    lr: float
    history: tuple[Evaluation, ...]  # one Evaluation per eval step, the first at step 0
    loss: np.ndarray  # (steps,) the training loss of every step
    train_seconds: float  # wall time of the training steps (sampling, loss, update), evaluations excluded
    eval_seconds: float  # wall time of the evaluations
    tokens_per_s: float  # training throughput: batch_size * (P + L) sequence tokens per step / train_seconds
    stopped_early: bool
    sample_text: tuple[str, ...]  # the final evaluation's student samples, decoded ("" without a language)
    sample_mode_name: tuple[str, ...]  # their mode names ("invalid" if not valid)
    student_config: LMConfig | None  # None if the student was a user module
    student_state: dict[str, np.ndarray]  # the trained student's state dict, as numpy arrays

    @property
    def final(self) -> Evaluation:
        """The last evaluation."""
        return self.history[-1]

    @property
    def eval_steps(self) -> np.ndarray:
        return np.array([e.step for e in self.history])

    def series(self, name: str) -> np.ndarray:
        """One scalar metric over the evaluation steps, e.g. ``series("validity")``."""
        valid = ("step", *Evaluation.SCALARS, "forward_kl_se", "reverse_kl_se", "objective_se")
        if name not in valid:
            raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(valid)}")
        return np.array([float(getattr(e, name)) for e in self.history])

    def load_student(self) -> TinyLM:
        """The trained student as a CPU :class:`TinyLM` (only for students built from an ``LMConfig``)."""
        if self.student_config is None:
            raise ValueError("the student was a user module; load student_state into your own module")
        model = TinyLM(self.student_config)
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.student_state.items()})
        return model


class _Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1) on a list of parameters.

    ``torch.optim`` imports ``torch._dynamo`` on first use (about 3 s on a CPU): too much for a
    command-line run that trains for 10 s, so the loop uses these few lines instead.
    """

    def __init__(
        self, params: Sequence[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t  # bias corrections
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; otherwise the named device (ValueError if unavailable)."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use device='auto' or 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    return dev


def default_student(vocab_size: int) -> LMConfig:
    """The lab's default student: one block, width 32, context 1 (a bigram model: it cannot remember the mode)."""
    return LMConfig(vocab_size=vocab_size)


def _resolve_teacher(
    teacher: str | Language | nn.Module, language: Language | None
) -> tuple[nn.Module, Language | None]:
    if isinstance(teacher, str):
        teacher = get_language(teacher)
    if isinstance(teacher, Language):
        return SyntheticTeacher(teacher), teacher
    if isinstance(teacher, SyntheticTeacher):
        return teacher, language or teacher.language
    if isinstance(teacher, nn.Module):
        return teacher, language
    raise ValueError(f"teacher must be a language name, a Language or a torch.nn.Module, got {type(teacher).__name__}")


def _check_int(name: str, value: Any, low: int) -> int:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"{name} must be an integer >= {low}, got {short(value)}")
    return int(value)


def _check_lr(lr: Any) -> float:
    if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {short(lr)}")
    return float(lr)


def distill(
    teacher: str | Language | nn.Module = "cities",
    student: LMConfig | nn.Module | None = None,
    method: str = "reverse_kl",
    *,
    params: Mapping[str, Any] | None = None,
    steps: int = DEMO_STEPS,
    lr: float = LR,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
    device: str | torch.device = "auto",
    eval_every: int = EVAL_EVERY,
    callback: Callable[[Progress], bool | None] | None = None,
    language: Language | None = None,
    prompts: Tensor | None = None,
    length: int | None = None,
    temperature: float = 1.0,
    eval_samples: int = N_SAMPLES,
    eval_seed: int = 0,
    shards: int = 1,
) -> DistillResult:
    """Distil ``teacher`` into ``student`` with ``method`` (see the module docstring).

    Args:
        teacher: preset name, Language, SyntheticTeacher or any ids -> logits module.
        student: LMConfig, a module, or None for ``default_student``.
        method: a key of ``kl_core.lm.methods.METHODS``; ``params`` its parameters.
        steps, lr, batch_size: Adam steps, learning rate, prompts per batch.
        seed: seeds the student's initialisation and all training randomness.
        device: "auto", "cpu" or "cuda[:i]".
        eval_every: evaluate every this many steps (and at step 0 and the last step).
        callback: called with a :class:`Progress` after every evaluation; returning False or
            raising :class:`StopTraining` stops training (the result then holds what was done).
        language, prompts, length: for a teacher module that is not a SyntheticTeacher: the
            prompts to train and evaluate on (N, P), the answer length and, optionally, the language
            that labels the modes.
        temperature: sampling temperature of the training samples.
        eval_samples, eval_seed: student samples per prompt at each evaluation, and their seed.
        shards: the global batch is drawn as this many independent streams of ``batch_size / shards``
            prompts (``kl_core.lm.parallel``); under torchrun each process draws its share of the streams
            and the gradients are summed, so the trained student does not depend on the number of
            processes (a multiple of which ``shards`` must be). 1: the single-process generator ``seed``.
    """
    spec, par = resolve_method(method, params)
    steps = _check_int("steps", steps, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    eval_every = _check_int("eval_every", eval_every, 1)
    seed = _check_int("seed", seed, 0)
    _check_lr(lr)
    dev = resolve_device(device)
    teacher_module, language = _resolve_teacher(teacher, language)
    if prompts is None:
        if language is None:
            raise ValueError("a teacher module without a language needs prompts (N, P) and length")
        prompts = language.prompt_ids
    if length is None:
        if language is None:
            raise ValueError("a teacher module without a language needs the answer length")
        length = language.answer_length
    length = _check_int("length", length, 1)
    prompts = torch.as_tensor(prompts, dtype=torch.long).to(dev)
    if prompts.ndim != 2:
        raise ValueError(f"prompts must have shape (N, P), got {tuple(prompts.shape)}")
    weights = (
        language.prompt_weights.float().to(dev)
        if language is not None and prompts.shape[0] == language.n_prompts
        else torch.full((prompts.shape[0],), 1.0 / prompts.shape[0], device=dev)
    )

    if student is None:
        if language is None:
            raise ValueError("pass a student (LMConfig or module) when the teacher has no language")
        student = default_student(language.vocab_size)
    if isinstance(student, LMConfig):
        config: LMConfig | None = student
        student_module: nn.Module = TinyLM(student, seed=seed)
    elif isinstance(student, nn.Module):
        config = None
        student_module = copy.deepcopy(student)
    else:
        raise ValueError(f"student must be an LMConfig, a torch.nn.Module or None, got {type(student).__name__}")
    student_module.to(dev).train()
    teacher_module = teacher_module.to(dev).eval()
    for p in teacher_module.parameters():
        p.requires_grad_(False)

    objective = spec.objective(par)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else nullcontext()
    opt = _Adam(list(student_module.parameters()), lr=lr)
    if not (isinstance(shards, int) and shards >= 1 and batch_size % shards == 0):
        raise ValueError(f"shards must be an integer >= 1 dividing batch_size ({batch_size}), got {shards!r}")
    rank, _ = parallel.rank_and_size()
    gens, _ = parallel.stream_generators(seed, shards, dev)
    per_stream = batch_size // shards
    params_list = [p for p in student_module.parameters() if p.requires_grad]
    history: list[Evaluation] = []
    losses: list[float] = []
    train_seconds = eval_seconds = 0.0
    stopped = False
    since_eval: list[float] = []

    def run_eval(step: int) -> bool:
        """Evaluate on rank 0; every rank learns whether to go on."""
        go = _evaluate(step) if rank == 0 else True
        since_eval.clear()
        return bool(parallel.broadcast_object(go))

    def _evaluate(step: int) -> bool:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        with autocast:
            ev = evaluate(
                teacher_module, student_module, language=language, prompts=prompts, length=length,
                objective=objective, n_samples=eval_samples, seed=eval_seed, step=step,
            )  # fmt: skip
        ev = replace(ev, loss=float(np.mean(since_eval)) if since_eval else math.nan)
        history.append(ev)
        eval_seconds += time.perf_counter() - t0
        if callback is None:
            return True
        try:
            return callback(Progress(method, step, steps, tuple(history))) is not False
        except StopTraining:
            return False

    go_on = run_eval(0)
    step = 0
    while go_on and step < steps:
        t0 = time.perf_counter()
        opt.zero_grad()
        local = 0.0
        for gen in gens:  # this rank's sample streams (module kl_core.lm.parallel)
            idx = torch.multinomial(weights, per_stream, replacement=True, generator=gen)
            with autocast:
                loss = spec.fn(
                    teacher_module, student_module, prompts[idx], length=length, generator=gen,
                    temperature=temperature, **par,
                )  # fmt: skip
            (loss / shards if shards > 1 else loss).backward()
            local += float(loss.detach()) / shards
        parallel.sum_gradients(params_list)
        torch.nn.utils.clip_grad_norm_(student_module.parameters(), 1.0)
        opt.step()
        value = parallel.all_sum(local, dev)
        if not math.isfinite(value):
            raise ValueError(f"{method}: the loss became {value} at step {step}; lower lr")
        losses.append(value)
        since_eval.append(value)
        step += 1
        train_seconds += time.perf_counter() - t0
        if step % eval_every == 0 or step == steps:
            go_on = run_eval(step)
            stopped = not go_on and step < steps
    if not go_on and step < steps:
        stopped = True

    history = list(parallel.broadcast_object(history))  # evaluated on rank 0
    tokens = step * batch_size * (prompts.shape[1] + length)
    n = prompts.shape[0]
    final = history[-1]
    if language is not None and n == language.n_prompts:
        names = [language.mode_names(int(i)) for i in range(n)]
        text = tuple(language.decode(row) for row in final.samples)
        mode_name = tuple(
            names[int(p)][int(m)] if m >= 0 else "invalid" for p, m in zip(final.sample_prompt, final.sample_mode)
        )
    else:
        text = tuple("" for _ in final.samples)
        mode_name = tuple("valid" if m >= 0 else "invalid" for m in final.sample_mode)
    return DistillResult(
        method=method,
        params=par,
        language=language.name if language is not None else None,
        seed=seed,
        device=str(dev),
        steps=step,
        requested_steps=steps,
        batch_size=batch_size,
        lr=float(lr),
        history=tuple(history),
        loss=np.array(losses),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        tokens_per_s=tokens / train_seconds if train_seconds > 0 else math.nan,
        stopped_early=stopped,
        sample_text=text,
        sample_mode_name=mode_name,
        student_config=config,
        student_state={k: v.detach().float().cpu().numpy() for k, v in student_module.state_dict().items()},
    )


def compare(
    teacher: str | Language | nn.Module = "cities",
    methods: Sequence[str] = DEMO_METHODS,
    student: LMConfig | nn.Module | None = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    callback: Callable[[Progress], bool | None] | None = None,
    **kwargs: Any,
) -> dict[str, DistillResult]:
    """Run ``distill`` once per method from the same seed, so every method starts from the same student.

    ``params`` maps a method name to its parameters; the other keywords go to every ``distill``.
    A callback that stops one method (False / StopTraining) stops the comparison after it.
    """
    if isinstance(methods, str) or not methods:
        raise ValueError("methods must be a non-empty sequence of method names")
    params = dict(params or {})
    unknown = set(params) - set(methods)
    if unknown:
        raise ValueError(f"params given for methods not compared: {', '.join(sorted(unknown))}")
    for name in methods:
        resolve_method(name, params.get(name))  # fail before any training
    out: dict[str, DistillResult] = {}
    for name in methods:
        result = distill(teacher, student, name, params=params.get(name), callback=callback, **kwargs)
        out[name] = result
        if result.stopped_early:
            break
    return out
