"""The ``kl-lab distill`` command: distil a synthetic language into a tiny student with several methods.

    kl-lab distill --language cities --methods forward_kl,reverse_kl --steps 300 --seed 0 --device auto [--json]
    kl-lab distill --teacher DIR --student DIR --prompts FILE [--methods ...] [--steps N] [--out DIR] [--json]

Prints one row per method (final metrics) or, with ``--json``, every method's metric history.
It lives outside ``kl_core.lm`` because importing that package loads torch, and every ``kl-lab``
command builds this parser.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from kl_core.cli_args import check_budget, choice, integer, number, path_error, path_text, probe_writable, seed, short

# the language names, written out so that building the parser does not import torch (a test keeps them equal)
LANGUAGE_NAMES = ("cities", "arithmetic", "stories")

__all__ = ["add_commands"]


# Limits of ``kl-lab distill`` (README, "Limits"); past them a flag is refused with one line.
STEPS_MAX = 20_000
BATCH_MAX = 4096
CONTEXT_MAX = 64  # the synthetic languages' sequences are a few tokens long
LAYERS_MAX = 16
WIDTH_MAX = 1024  # n_embd; even (two heads)
MAX_EVALUATIONS = 1000  # per method: --steps / --eval-every
LENGTH_MAX = 1024  # answer tokens per prompt with your own models
OWN_LENGTH = 16  # default answer length with your own models
OWN_BATCH = 16  # default prompts per step with your own models
OWN_EVAL_SAMPLES = 16
# the work: steps x methods x (1 + layers x width^2 x batch / 1.6e6): one unit is ~8 ms of one CPU core
# (the default, 300 steps of 2 methods, is ~620 units; width 256 x 4 layers costs ~11.5 units a step)
WORK_BUDGET = 20_000
_UNIT = 1.6e6


def _float_or_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def work_units(steps: int, methods: int, n_layer: int, n_embd: int, batch_size: int) -> float:
    """The training's work in ~8 ms units (measured on one CPU core; a GPU is faster)."""
    return steps * methods * (1.0 + n_layer * n_embd**2 * batch_size / _UNIT)


def _methods_and_params(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """``--methods`` and the method flags (--beta, --alpha, --lam), checked: the methods and their parameters."""
    from kl_core.lm.methods import METHODS

    if len(args.methods) > 400:
        raise ValueError(f"--methods is {len(args.methods)} characters long; list at most {len(METHODS)} methods")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty; give a comma-separated list, e.g. forward_kl,reverse_kl")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {short(m)} in --methods; valid methods: {', '.join(METHODS)}")
    if len(set(methods)) < len(methods):
        raise ValueError(f"--methods lists a method twice: {short(args.methods)}")
    params: dict[str, dict[str, Any]] = {}
    for flag in ("beta", "alpha", "lam"):
        if getattr(args, flag) is not None and not any(flag in METHODS[m].defaults for m in methods):
            takers = ", ".join(m for m, v in METHODS.items() if flag in v.defaults)
            raise ValueError(f"--{flag} is not a parameter of {', '.join(methods)}; the methods that take it: {takers}")
    for m in methods:
        given = {k: getattr(args, k) for k in ("beta", "alpha", "lam") if getattr(args, k) is not None}
        params[m] = {k: v for k, v in given.items() if k in METHODS[m].defaults}
    return methods, params


def _cmd_distill(args: argparse.Namespace) -> str:
    own = [f for f in ("teacher", "student", "prompts") if getattr(args, f) is not None]
    if own:
        return _cmd_distill_own(args, own)
    for flag in ("length", "eval_samples"):
        if getattr(args, flag) is not None:
            name = "--" + flag.replace("_", "-")
            raise ValueError(f"{name} applies to your own models only (--teacher DIR --student DIR --prompts FILE)")
    from kl_core.lm.distill import BATCH_SIZE, DEMO_METHODS, DEMO_STEPS, EVAL_EVERY, LR, default_student
    from kl_core.lm.languages import DEFAULT_LANGUAGE, get_language

    # the parser leaves defaults to None so that building it does not import torch (every kl-lab command does)
    for name, value in (
        ("language", DEFAULT_LANGUAGE),
        ("methods", ",".join(DEMO_METHODS)),
        ("steps", DEMO_STEPS),
        ("lr", LR),
        ("batch_size", BATCH_SIZE),
        ("eval_every", EVAL_EVERY),
        ("shards", 1),
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
    methods, params = _methods_and_params(args)
    if args.batch_size % args.shards:
        raise ValueError(f"--batch-size {args.batch_size} must be a multiple of --shards {args.shards}")
    if args.steps > args.eval_every * MAX_EVALUATIONS:
        raise ValueError(
            f"--eval-every {args.eval_every} asks for {args.steps // args.eval_every} evaluations per method; "
            f"at most {MAX_EVALUATIONS}: use --eval-every >= {-(-args.steps // MAX_EVALUATIONS)}"
        )
    language = get_language(args.language)
    base = default_student(language.vocab_size)
    n_embd = args.n_embd if args.n_embd is not None else base.n_embd
    n_layer = args.n_layer if args.n_layer is not None else base.n_layer
    if n_embd % base.n_head:
        raise ValueError(f"--n-embd must be a multiple of the {base.n_head} attention heads, got {n_embd}")
    work = work_units(args.steps, len(methods), n_layer, n_embd, args.batch_size)
    check_budget(
        "the training's work (steps x methods x model size, in ~8 ms units)",
        work,
        WORK_BUDGET,
        "lower --steps, --batch-size, --n-layer or --n-embd, or compare fewer --methods",
    )
    device = _check_device(args.device)
    out = _check_out(args.out) if args.out is not None and _rank() == 0 else None
    import numpy as np
    import torch

    from kl_core.lm.distill import compare
    from kl_core.lm.model import LMConfig

    # the models are tiny: on a busy CPU extra intra-op threads only contend (1 thread measured ~10x faster
    # than 2 on 2 shared cores)
    torch.set_num_threads(args.threads)
    student = LMConfig(
        vocab_size=language.vocab_size,
        context=args.context if args.context is not None else base.context,
        n_layer=n_layer,
        n_head=base.n_head,
        n_embd=n_embd,
    )
    results = compare(
        language,
        methods,
        student,
        params=params,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        device=device,
        eval_every=args.eval_every,
        shards=args.shards,
    )
    saved = {}
    if out is not None and _rank() == 0:
        for name, r in results.items():
            path = out / f"{name}.npz"
            np.savez(path, __config__=np.array(json.dumps(vars(student))), **r.student_state)
            saved[name] = str(path)
    if args.json:
        return json.dumps(
            {
                "language": language.name,
                "student": vars(student),
                "seed": args.seed,
                "methods": {
                    name: {
                        "params": r.params,
                        "device": r.device,
                        "steps": r.steps,
                        "train_seconds": r.train_seconds,
                        "tokens_per_s": r.tokens_per_s,
                        "history": [
                            {k: _float_or_none(v) if isinstance(v, float) else v for k, v in e.as_dict().items()}
                            for e in r.history
                        ],
                        "samples": list(r.sample_text[:: max(1, len(r.sample_text) // 12)]),
                        **({"saved": saved[name]} if name in saved else {}),
                    }
                    for name, r in results.items()
                },
            },
            indent=2,
        )
    rows = []
    for name, r in results.items():
        f = r.final
        shown = (f.forward_kl, f.reverse_kl, f.validity, f.mode_coverage, f.entropy, r.train_seconds, r.tokens_per_s)
        if any(math.isnan(v) for v in shown):  # never print a NaN in the table (the JSON writes null)
            raise ValueError(f"{name}: a final metric came out as NaN; try other --lr or --steps")

        def kl(v: float, se: float, exact: bool = f.exact) -> str:
            return f"{v:.3f}" if exact else f"{v:.3f}+-{se:.3f}"

        rows.append([
            name, str(r.steps), kl(f.forward_kl, f.forward_kl_se), kl(f.reverse_kl, f.reverse_kl_se),
            f"{f.validity:.3f}", f"{f.mode_coverage:.3f}", f"{f.entropy:.3f}", f"{r.train_seconds:.1f}",
            f"{r.tokens_per_s:.0f}",
        ])  # fmt: skip
    header = ["method", "steps", "forward_kl", "reverse_kl", "validity", "mode_coverage", "entropy", "train_s", "tok/s"]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    first = next(iter(results.values()))
    kind = "exact" if first.final.exact else "Monte Carlo"
    title = (
        f"{language.name}: student context {student.context}, {student.n_layer} layer(s), width {student.n_embd}; "
        f"seed {args.seed}, device {first.device}; sequence-level KLs {kind}"
    )
    return "\n".join([title, *lines, *(f"saved {name} -> {path}" for name, path in saved.items())])


def _rank() -> int:
    from kl_core.lm.parallel import rank_and_size

    return rank_and_size()[0]


def _check_out(path: str) -> Path:
    """``--out DIR``: a folder to create (or an existing one) whose parent exists; checked before training."""
    out = Path(path)
    try:
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {short(path)} exists and is not a folder")
        if not out.exists() and not out.parent.is_dir():
            raise ValueError(f"--out: the folder {short(str(out.parent))} does not exist (or is not a folder)")
        out.mkdir(exist_ok=True)
        probe_writable("--out", out / ".kl-lab-probe")
    except OSError as err:
        raise path_error("--out", path, err) from None
    return out


def own_record(e: Any) -> dict[str, Any]:
    """One evaluation of your own models as JSON values (NaN written as null)."""
    return {k: _float_or_none(v) if isinstance(v, float) else v for k, v in e.as_dict().items()}


def _cmd_distill_own(args: argparse.Namespace, given: list[str]) -> str:
    """``kl-lab distill --teacher DIR --student DIR --prompts FILE``: your own Hugging Face checkpoints."""
    missing = [f"--{f}" for f in ("teacher", "student", "prompts") if f not in given]
    if missing:
        raise ValueError(
            f"your own models need --teacher DIR --student DIR --prompts FILE; missing {', '.join(missing)}"
        )
    for flag in ("language", "context", "n_layer", "n_embd"):
        if getattr(args, flag) is not None:
            name = "--" + flag.replace("_", "-")
            raise ValueError(f"{name} applies to the synthetic languages only, not to --teacher/--student checkpoints")
    from kl_core.lm.distill import DEMO_METHODS
    from kl_core.lm.hf_distill import HF_EVAL_EVERY, HF_LR, HF_STEPS

    for name, value in (
        ("methods", ",".join(DEMO_METHODS)), ("steps", HF_STEPS), ("lr", HF_LR), ("batch_size", OWN_BATCH),
        ("eval_every", HF_EVAL_EVERY), ("length", OWN_LENGTH), ("shards", 1),
    ):  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, value)
    methods, params = _methods_and_params(args)
    if args.steps > args.eval_every * MAX_EVALUATIONS:
        raise ValueError(f"--eval-every {args.eval_every}: at most {MAX_EVALUATIONS} evaluations per method")
    if args.batch_size % args.shards:
        raise ValueError(f"--batch-size {args.batch_size} must be a multiple of --shards {args.shards}")
    device = _check_device(args.device)
    out = _check_out(args.out) if args.out is not None and _rank() == 0 else None
    import torch

    from kl_core.lm.hf import load_pair, read_prompts
    from kl_core.lm.hf_distill import compare_hf

    torch.set_num_threads(args.threads)
    pair = load_pair(args.teacher, args.student)
    prompts = read_prompts(args.prompts, pair.tokenizer, context=pair.context, length=args.length)
    results = compare_hf(
        pair, prompts, methods, params=params, length=args.length, steps=args.steps, lr=args.lr,
        batch_size=args.batch_size, shards=args.shards, seed=args.seed, device=device, eval_every=args.eval_every,
        eval_samples=args.eval_samples if args.eval_samples is not None else OWN_EVAL_SAMPLES,
    )  # fmt: skip
    saved = {}
    if out is not None and _rank() == 0:
        for name, r in results.items():
            r.student.save_pretrained(str(out / name))
            pair.tokenizer.save_pretrained(str(out / name))
            saved[name] = str(out / name)
    if args.json:
        return json.dumps(
            {
                "teacher": args.teacher,
                "student": args.student,
                "prompts": prompts.n_prompts,
                "length": args.length,
                "seed": args.seed,
                "methods": {
                    name: {
                        "params": r.params,
                        "device": r.device,
                        "steps": r.steps,
                        "train_seconds": r.train_seconds,
                        "tokens_per_s": _float_or_none(r.tokens_per_s),
                        "history": [own_record(e) for e in r.history],
                        "samples": list(r.sample_text[:: max(1, len(r.sample_text) // 12)]),
                        **({"saved": saved[name]} if name in saved else {}),
                    }
                    for name, r in results.items()
                },
            },
            indent=2,
        )
    return own_table(results, prompts.n_prompts, args.length, args.seed, saved)


def own_table(results: Any, n_prompts: int, length: int, seed: int, saved: dict[str, str]) -> str:
    """The final metrics of every method on your own models, one row each, under a title line."""
    rows = []
    for name, r in results.items():
        f = r.final
        shown = (f.forward_kl, f.reverse_kl, f.teacher_loglik, f.validity, f.distinct, f.ngram_diversity, f.entropy)
        if any(math.isnan(v) for v in shown):
            raise ValueError(f"{name}: a final metric came out as NaN; try other --lr or --steps")
        rows.append([
            name, str(r.steps),
            f"{f.forward_kl:.3f}+-{f.forward_kl_se:.3f}", f"{f.reverse_kl:.3f}+-{f.reverse_kl_se:.3f}",
            f"{f.teacher_loglik:.3f}", f"{f.validity:.3f}", f"{f.distinct:.3f}", f"{f.ngram_diversity:.3f}",
            f"{f.entropy:.3f}", "-" if math.isnan(f.reward) else f"{f.reward:.3f}", f"{r.train_seconds:.1f}",
            f"{r.tokens_per_s:.0f}",
        ])  # fmt: skip
    header = [
        "method", "steps", "forward_kl", "reverse_kl", "teacher_ll/tok", "validity", "distinct", "distinct-2",
        "entropy", "reward/tok", "train_s", "tok/s",
    ]  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    first = next(iter(results.values()))
    title = (
        f"your models: {n_prompts} prompt(s), answers of {length} tokens; seed {seed}, device {first.device}; "
        "sequence-level KLs Monte Carlo (+- one standard error); "
        "validity: teacher log-lik/token >= its own answers' 5% quantile"
    )
    from kl_core.lm.hf_distill import verdict

    tail = [f"saved {name} -> {path}" for name, path in saved.items()]
    return "\n".join([title, *lines, verdict(results), *tail])


def _check_device(device: str) -> str:
    """``--device``: auto, cpu, cuda or cuda:i with i an index of an available GPU."""
    match = re.fullmatch(r"auto|cpu|cuda(?::(\d{1,3}))?", device)
    if match is None:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:i, got {short(device)}")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError("--device cuda was asked for but CUDA is not available; use --device auto or cpu")
        if match.group(1) is not None and int(match.group(1)) >= count:
            raise ValueError(f"--device {device}: the GPU index must be in [0, {count - 1}]")
    return device


def add_commands(sub: Any) -> dict[str, Any]:
    """Add ``distill`` to the ``kl-lab`` subparsers; returns {command: handler}."""
    p = sub.add_parser("distill", help="distil a synthetic language into a tiny student (LM lab)")
    p.add_argument("--language", type=choice("--language", LANGUAGE_NAMES), metavar="LANGUAGE",
                   help="cities (default), arithmetic or stories (kl_core.lm.LANGUAGES)")  # fmt: skip
    p.add_argument("--methods", help="comma-separated methods (default forward_kl,reverse_kl; kl_core.lm.METHODS)")
    p.add_argument("--steps", type=integer("--steps", 1, STEPS_MAX),
                   help=f"training steps per method, 1 .. {STEPS_MAX} (default 300)")  # fmt: skip
    p.add_argument("--lr", type=number("--lr", 0, 1, low_open=True), help="learning rate in (0, 1] (default 0.01)")
    p.add_argument("--batch-size", type=integer("--batch-size", 1, BATCH_MAX),
                   help=f"prompts per step, 1 .. {BATCH_MAX} (default 64)")  # fmt: skip
    p.add_argument("--eval-every", type=integer("--eval-every", 1, STEPS_MAX),
                   help=f"steps between evaluations (default 50; at most {MAX_EVALUATIONS} per method)")  # fmt: skip
    p.add_argument("--seed", type=seed(), default=0, help="seed in [0, 2**32 - 1] (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--threads", type=integer("--threads", 1, 256), default=1,
                   help="torch CPU threads, 1 .. 256 (default 1: tiny models)")  # fmt: skip
    p.add_argument("--context", type=integer("--context", 1, CONTEXT_MAX),
                   help=f"student context window, 1 .. {CONTEXT_MAX} (default 1: a bigram model)")  # fmt: skip
    p.add_argument("--n-layer", type=integer("--n-layer", 1, LAYERS_MAX),
                   help=f"student blocks, 1 .. {LAYERS_MAX} (default 1)")  # fmt: skip
    p.add_argument("--n-embd", type=integer("--n-embd", 2, WIDTH_MAX),
                   help=f"student width, even, 2 .. {WIDTH_MAX} (default 32)")  # fmt: skip
    p.add_argument("--beta", type=number("--beta", 0, 1), help="gkd: JSD beta in [0, 1]")
    p.add_argument("--alpha", type=number("--alpha", 0, 1),
                   help="skew_forward_kl / skew_reverse_kl: skew alpha in [0, 1]")  # fmt: skip
    p.add_argument("--lam", type=number("--lam", 0, 1),
                   help="gkd / skew methods: probability of student-generated batches, in [0, 1]")  # fmt: skip
    p.add_argument("--teacher", type=path_text("--teacher"), metavar="DIR",
                   help="your own teacher: a local Hugging Face checkpoint folder (with its tokenizer)")  # fmt: skip
    p.add_argument("--student", type=path_text("--student"), metavar="DIR",
                   help="your own student: a local checkpoint folder sharing the teacher's vocabulary")  # fmt: skip
    p.add_argument("--prompts", type=path_text("--prompts"), metavar="FILE",
                   help='with --teacher/--student: prompts, one per line or JSON lines {"prompt": ...}')  # fmt: skip
    p.add_argument("--length", type=integer("--length", 1, LENGTH_MAX),
                   help=f"with --teacher: answer tokens per prompt, 1 .. {LENGTH_MAX} (default 16)")  # fmt: skip
    p.add_argument("--shards", type=integer("--shards", 1, 64),
                   help="sample streams per batch, 1 .. 64, a multiple of the processes (default 1)")  # fmt: skip
    p.add_argument("--eval-samples", type=integer("--eval-samples", 2, 1024),
                   help="with --teacher: samples per prompt at each evaluation, 2 .. 1024 (default 16)")  # fmt: skip
    p.add_argument("--out", type=path_text("--out"), metavar="DIR",
                   help="save the trained students: DIR/METHOD (save_pretrained) or DIR/METHOD.npz")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (every evaluation) instead of a table")
    return {"distill": _cmd_distill}
