"""The ``kl-lab`` command: fit a student, evaluate a divergence, list presets.

    kl-lab fit --preset bimodal --objective reverse_kl --inits 8 --seed 0 [--json]
    kl-lab divergence --teacher "0.5:-3:1,0.5:3:1" --student "0:1" --kind jsd --beta 0.5
    kl-lab presets [--json]

A bad flag or value prints one line ``kl-lab: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from kl_core.distributions import Distribution, Gaussian, GaussianMixture
from kl_core.divergences import KINDS, MCEstimate, divergence
from kl_core.fitting import ESTIMATORS, GRADIENTS, fit
from kl_core.metrics import summarize
from kl_core.presets import PRESETS, get_preset

__all__ = ["main", "parse_mixture"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"kl-lab: error: {message}\n")


def parse_mixture(spec: str, name: str) -> Distribution:
    """``"w:mean:std,w:mean:std,..."`` -> GaussianMixture; ``"mean:std"`` -> Gaussian (1-D)."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{name} is empty; expected 'mean:std' or 'weight:mean:std,...'")
    try:
        rows = [[float(v) for v in p.split(":")] for p in parts]
    except ValueError:
        raise ValueError(f"{name} must hold numbers like 'mean:std' or 'weight:mean:std,...', got {spec!r}") from None
    if len(rows) == 1 and len(rows[0]) == 2:
        return Gaussian(rows[0][0], rows[0][1])
    if any(len(r) != 3 for r in rows):
        raise ValueError(f"{name}: each component must be 'weight:mean:std', got {spec!r}")
    w, m, s = zip(*rows)
    return GaussianMixture(list(w), list(m), list(s))


def _objective_params(args: argparse.Namespace, kind: str) -> dict[str, float]:
    return {p: getattr(args, p) for p in KINDS[kind].params if getattr(args, p) is not None}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4f}"
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(header)] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_fit(args: argparse.Namespace) -> str:
    if args.preset is not None:
        preset = get_preset(args.preset)
        teacher, student = preset.teacher, preset.student
        settings = dict(preset.settings)
    else:
        if args.teacher is None:
            raise ValueError("fit needs --preset or --teacher")
        teacher = parse_mixture(args.teacher, "--teacher")
        student = parse_mixture(args.student or "0:1", "--student")
        settings = {}
    for key in ("steps", "lr", "inits"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    settings.setdefault("steps", 400)
    settings.setdefault("lr", 0.05)
    settings.setdefault("inits", 8)
    traj = fit(
        teacher,
        student,
        args.objective,
        seed=args.seed,
        estimator=args.estimator,
        gradient=args.gradient,
        n=args.n,
        **settings,
        **_objective_params(args, args.objective),
    )
    results = []
    for i, s in enumerate(traj.final):
        summary = summarize(teacher, s)
        results.append({"start": i, "loss": float(traj.loss[-1, i]), **summary.as_dict()})
    if args.json:
        return json.dumps(
            {
                "objective": traj.objective,
                "objective_params": traj.objective_params,
                "estimator": traj.estimator,
                "gradient": traj.gradient,
                "steps": traj.steps,
                "seed": args.seed,
                "param_names": traj.param_names,
                "final_params": traj.params[-1].tolist(),
                "students": results,
            },
            indent=2,
        )
    header = ["start", "mean", "std", "loss", "forward_kl", "reverse_kl", "modes", "low_density"]
    rows = [
        [
            r["start"],
            r["mean"],
            r["std"],
            r["loss"],
            r["forward_kl"],
            r["reverse_kl"],
            f"{r['n_modes_covered']}/{len(r['mode_shares'])}",
            r["low_density_mass"],
        ]
        for r in results
    ]
    title = f"{traj.objective} fit, {traj.steps} steps, {traj.inits} starts, seed {args.seed}"
    return title + "\n" + _table(header, rows)


def _cmd_divergence(args: argparse.Namespace) -> str:
    teacher = parse_mixture(args.teacher, "--teacher")
    student = parse_mixture(args.student, "--student")
    value = divergence(
        teacher, student, args.kind, method=args.method, n=args.n, seed=args.seed, **_objective_params(args, args.kind)
    )
    if isinstance(value, MCEstimate):
        out = {"kind": args.kind, "method": "mc", "value": value.value, "stderr": value.stderr, "n": value.n}
        text = f"{args.kind} = {value.value:.6f} +- {value.stderr:.6f} (Monte Carlo, n={value.n})"
    else:
        out = {"kind": args.kind, "method": "exact", "value": value}
        text = f"{args.kind} = {value:.10g}"
    return json.dumps(out) if args.json else text


def _cmd_presets(args: argparse.Namespace) -> str:
    if args.json:
        return json.dumps(
            [{"name": p.name, "title": p.title, "space": p.space, "lesson": p.lesson} for p in PRESETS.values()],
            indent=2,
        )
    return _table(["name", "space", "lesson"], [[p.name, p.space, p.lesson] for p in PRESETS.values()])


def _parser() -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    """The parser and its {command: handler} table (the built-in commands and the extensions')."""
    parser = _Parser(prog="kl-lab", description="Forward vs reverse KL, measured.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add_params(p: argparse.ArgumentParser) -> None:
        p.add_argument("--beta", type=float, help="jsd: mixture weight beta in [0, 1]")
        p.add_argument("--alpha", type=float, help="alpha / skew kinds: alpha")
        p.add_argument("--mu", type=float, help="akl: head mass mu in (0, 1]")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        p.add_argument("--n", type=int, default=256, help="Monte-Carlo samples (per step for fit)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    f = sub.add_parser("fit", help="fit a student to a teacher")
    f.add_argument("--preset", choices=list(PRESETS), help="a named scenario")
    f.add_argument("--teacher", help="'weight:mean:std,...' (1-D) instead of a preset")
    f.add_argument("--student", help="'mean:std' starting student (default 0:1)")
    f.add_argument("--objective", default="reverse_kl", choices=list(KINDS))
    f.add_argument("--steps", type=int)
    f.add_argument("--lr", type=float)
    f.add_argument("--inits", type=int)
    f.add_argument("--estimator", default="exact", choices=list(ESTIMATORS))
    f.add_argument("--gradient", default="pathwise", choices=list(GRADIENTS))
    add_params(f)

    d = sub.add_parser("divergence", help="evaluate a divergence between two 1-D distributions")
    d.add_argument("--teacher", required=True, help="'weight:mean:std,...' or 'mean:std'")
    d.add_argument("--student", required=True, help="'weight:mean:std,...' or 'mean:std'")
    d.add_argument("--kind", default="forward_kl", choices=list(KINDS))
    d.add_argument("--method", default="exact", choices=["exact", "mc"])
    add_params(d)
    d.set_defaults(n=10_000)

    p = sub.add_parser("presets", help="list the named scenarios")
    p.add_argument("--json", action="store_true")
    commands = {"fit": _cmd_fit, "divergence": _cmd_divergence, "presets": _cmd_presets}
    commands.update(_extensions(sub))
    return parser, commands


# Subcommands that live beside the code they drive: each module has ``add_commands(sub)``, which adds
# its parsers to ``sub`` and returns {command name: handler(args) -> str}. Such a module imports its
# heavy dependencies (models, exporters) inside its handlers, so ``kl-lab fit`` does not pay for them.
EXTENSIONS: tuple[str, ...] = ("kl_core.viz.export_cli", "kl_core.site", "kl_core.distill_cli", "kl_core.identify_cli")


def _extensions(sub: Any) -> dict[str, Any]:
    import importlib

    handlers: dict[str, Any] = {}
    for name in EXTENSIONS:
        handlers.update(importlib.import_module(name).add_commands(sub))
    return handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(argv)
    try:
        print(commands[args.command](args))
    except ValueError as err:
        print(f"kl-lab: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
