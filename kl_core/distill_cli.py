"""The ``kl-lab distill`` command: distil a synthetic language into a tiny student with several methods.

    kl-lab distill --language cities --methods forward_kl,reverse_kl --steps 300 --seed 0 --device auto [--json]

Prints one row per method (final metrics) or, with ``--json``, every method's metric history.
It lives outside ``kl_core.lm`` because importing that package loads torch, and every ``kl-lab``
command builds this parser.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

__all__ = ["add_commands"]


def _float_or_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def _cmd_distill(args: argparse.Namespace) -> str:
    from kl_core.lm.distill import BATCH_SIZE, DEMO_METHODS, DEMO_STEPS, EVAL_EVERY, LR, compare, default_student
    from kl_core.lm.languages import DEFAULT_LANGUAGE, get_language
    from kl_core.lm.methods import METHODS
    from kl_core.lm.model import LMConfig

    # the parser leaves defaults to None so that building it does not import torch (every kl-lab command does)
    for name, value in (
        ("language", DEFAULT_LANGUAGE),
        ("methods", ",".join(DEMO_METHODS)),
        ("steps", DEMO_STEPS),
        ("lr", LR),
        ("batch_size", BATCH_SIZE),
        ("eval_every", EVAL_EVERY),
    ):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be an integer >= 1, got {args.threads}")
        import torch

        # the models are tiny: on a busy CPU extra intra-op threads only contend (1 thread measured ~10x faster
        # than 2 on 2 shared cores)
        torch.set_num_threads(args.threads)
    language = get_language(args.language)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("--methods is empty; give a comma-separated list, e.g. forward_kl,reverse_kl")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r} in --methods; valid methods: {', '.join(METHODS)}")
    params: dict[str, dict[str, Any]] = {}
    for m in methods:
        given = {k: getattr(args, k) for k in ("beta", "alpha", "lam") if getattr(args, k) is not None}
        params[m] = {k: v for k, v in given.items() if k in METHODS[m].defaults}
    base = default_student(language.vocab_size)
    student = LMConfig(
        vocab_size=language.vocab_size,
        context=args.context if args.context is not None else base.context,
        n_layer=args.n_layer if args.n_layer is not None else base.n_layer,
        n_head=base.n_head,
        n_embd=args.n_embd if args.n_embd is not None else base.n_embd,
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
        device=args.device,
        eval_every=args.eval_every,
    )
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
                    }
                    for name, r in results.items()
                },
            },
            indent=2,
        )
    rows = []
    for name, r in results.items():
        f = r.final

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
    return title + "\n" + "\n".join(lines)


def add_commands(sub: Any) -> dict[str, Any]:
    """Add ``distill`` to the ``kl-lab`` subparsers; returns {command: handler}."""
    p = sub.add_parser("distill", help="distil a synthetic language into a tiny student (LM lab)")
    p.add_argument("--language", help="cities (default), arithmetic or stories (kl_core.lm.LANGUAGES)")
    p.add_argument("--methods", help="comma-separated methods (default forward_kl,reverse_kl; kl_core.lm.METHODS)")
    p.add_argument("--steps", type=int, help="training steps per method (default 300)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    p.add_argument("--batch-size", type=int, help="prompts per step (default 64)")
    p.add_argument("--eval-every", type=int, help="steps between evaluations (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: tiny models)")
    p.add_argument("--context", type=int, help="student context window (default 1: a bigram model)")
    p.add_argument("--n-layer", type=int, help="student blocks (default 1)")
    p.add_argument("--n-embd", type=int, help="student width (default 32)")
    p.add_argument("--beta", type=float, help="gkd: JSD beta in [0, 1]")
    p.add_argument("--alpha", type=float, help="skew_forward_kl / skew_reverse_kl: skew alpha in [0, 1]")
    p.add_argument("--lam", type=float, help="gkd / skew methods: probability of student-generated batches")
    p.add_argument("--json", action="store_true", help="print JSON (every evaluation) instead of a table")
    return {"distill": _cmd_distill}
