"""The ``kl-lab`` command: fit a student, evaluate a divergence, list presets.

    kl-lab fit --preset bimodal --objective reverse_kl --inits 8 --seed 0 [--json]
    kl-lab divergence --teacher "0.5:-3:1,0.5:3:1" --student "0:1" --kind jsd --beta 0.5
    kl-lab presets [--json]

A bad flag or value prints one line ``kl-lab: error: ...`` and exits with status 2, before any work;
so does work past a budget, and any failure of the work itself (never a traceback). The limits are
listed in the README ("Limits of every kl-lab command"); the checked flag types live in ``kl_core.cli_args``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from kl_core.cli_args import (
    FIT_WORK_BUDGET,
    Parser,
    check_budget,
    choice,
    components,
    fit_work,
    integer,
    number,
    one_line,
    print_line,
    seed,
    short,
)
from kl_core.distributions import Distribution, Gaussian, GaussianMixture
from kl_core.divergences import KINDS, MCEstimate, divergence
from kl_core.fitting import ESTIMATORS, GRADIENTS, MAX_MC_DRAWS, fit
from kl_core.metrics import summarize
from kl_core.presets import PRESETS, get_preset

__all__ = ["main", "parse_mixture", "run_command"]


# Limits of the command line (README, "Limits of every kl-lab command"): past them, one line and exit 2.
MAX_SPEC_CHARS = 4096  # --teacher / --student text
MAX_COMPONENTS = 16  # mixture components per distribution
MEAN_LIMIT = 1e4  # |mean| <= this
STD_RANGE = (1e-3, 1e4)  # std in this closed range
WEIGHT_RANGE = (1e-6, 1e6)  # mixture weights (normalised to sum to 1)
ALPHA_RANGE = (-10.0, 10.0)  # the alpha-divergence's alpha (the library takes more; exp(alpha * ...) overflows)
MC_SAMPLES_MAX = 10_000_000  # divergence --method mc --n
MC_MEMORY_BUDGET = 40_000_000  # divergence: n x (teacher + student components): ~1.6 GB of work arrays
FIT_STEPS_MAX = 100_000
FIT_INITS_MAX = 64
FIT_SAMPLES_MAX = 1_000_000  # fit --n (per step and start)
FIT_SAMPLE_BUDGET = MAX_MC_DRAWS  # fit: n x inits per step (memory), the library's own cap (2**20)
PARAM_FLAGS = ("beta", "alpha", "mu")


def _taking(param: str) -> str:
    return ", ".join(k for k, v in KINDS.items() if param in v.params)


def _check_value(flag: str, kind: str, value: float, low: float, high: float, low_open: bool, high_open: bool) -> None:
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{flag} must be in {lo}{low:g}, {high:g}{hi} for {kind}, got {value:g}")


def parse_mixture(spec: str, name: str) -> Distribution:
    """``"w:mean:std,w:mean:std,..."`` -> GaussianMixture; ``"mean:std"`` -> Gaussian (1-D).

    The values must lie inside the command line's limits (:data:`MAX_COMPONENTS` components,
    ``abs(mean) <= MEAN_LIMIT``, std in :data:`STD_RANGE`, weights in :data:`WEIGHT_RANGE`);
    a ValueError names ``name`` and the range otherwise.
    """
    if len(spec) > MAX_SPEC_CHARS:
        raise ValueError(f"{name} is {len(spec)} characters long; the limit is {MAX_SPEC_CHARS}")
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"{name} is empty; expected 'mean:std' or 'weight:mean:std,...'")
    if len(parts) > MAX_COMPONENTS:
        raise ValueError(f"{name} has {len(parts)} components; at most {MAX_COMPONENTS} are allowed")
    try:
        rows = [[float(v) for v in p.split(":")] for p in parts]
    except ValueError:
        raise ValueError(
            f"{name} must hold numbers like 'mean:std' or 'weight:mean:std,...', got {short(spec)}"
        ) from None
    if not (len(rows) == 1 and len(rows[0]) == 2) and any(len(r) != 3 for r in rows):
        raise ValueError(f"{name}: each component must be 'weight:mean:std', got {short(spec)}")
    for row in rows:
        *weight, mean, std = row
        if not all(math.isfinite(v) for v in row):
            raise ValueError(f"{name}: every number must be finite (no nan or inf), got {short(spec)}")
        if abs(mean) > MEAN_LIMIT:
            raise ValueError(f"{name}: means must be in [-{MEAN_LIMIT:g}, {MEAN_LIMIT:g}], got {mean:g}")
        if not STD_RANGE[0] <= std <= STD_RANGE[1]:
            raise ValueError(f"{name}: stds must be > 0, in [{STD_RANGE[0]:g}, {STD_RANGE[1]:g}], got {std:g}")
        if weight and not WEIGHT_RANGE[0] <= weight[0] <= WEIGHT_RANGE[1]:
            raise ValueError(
                f"{name}: weights must be in [{WEIGHT_RANGE[0]:g}, {WEIGHT_RANGE[1]:g}], got {weight[0]:g}"
            )
    if len(rows) == 1 and len(rows[0]) == 2:
        return Gaussian(rows[0][0], rows[0][1])
    w, m, s = zip(*rows)
    return GaussianMixture(list(w), list(m), list(s))


def _objective_params(args: argparse.Namespace, kind: str) -> dict[str, float]:
    """The kind's parameters given on the command line, checked; a flag the kind does not take is refused."""
    params = {}
    for p in PARAM_FLAGS:
        value = getattr(args, p, None)
        if value is None:
            continue
        if p not in KINDS[kind].params:
            raise ValueError(f"--{p} is not a parameter of {kind}; the kinds that take it: {_taking(p)}")
        spec = KINDS[kind].params[p]
        low, high = ALPHA_RANGE if kind == "alpha" else (spec.low, spec.high)
        _check_value(f"--{p}", kind, value, low, high, spec.low_open, spec.high_open)
        params[p] = value
    return params


def _no_nan(value: Any, what: str) -> None:
    """ValueError if ``value`` (a number, or dicts/lists of them) holds a NaN: never print one silently."""
    if isinstance(value, dict):
        for v in value.values():
            _no_nan(v, what)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _no_nan(v, what)
    elif isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{what} came out as NaN for these inputs (a numerical failure); try other values")


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
        if args.teacher is not None or args.student is not None:
            raise ValueError("--teacher and --student cannot be used with --preset (the preset defines both)")
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
    params = _objective_params(args, args.objective)
    kind = KINDS[args.objective]
    on_policy = args.estimator == "mc" and kind.sampler != "teacher"
    if args.estimator != "mc" and args.n is not None:
        raise ValueError("--n (Monte-Carlo samples) applies to --estimator mc only")
    if not on_policy and args.gradient is not None:
        raise ValueError(
            "--gradient applies to on-policy Monte Carlo only (--estimator mc with a kind the student samples: "
            + ", ".join(k for k, v in KINDS.items() if v.sampler != "teacher" and v.integrand is not None)
            + ")"
        )
    n = 256 if args.n is None else args.n
    if args.estimator == "mc":
        check_budget("--n x --inits (samples held per step)", n * settings["inits"], FIT_SAMPLE_BUDGET,
                     "lower --n or --inits")  # fmt: skip
    work = fit_work(teacher, student, settings["steps"], settings["inits"], args.estimator, n)
    check_budget("the fit's work (steps x inits x grid points or samples)", work, FIT_WORK_BUDGET,
                 "lower --steps, --inits or --n")  # fmt: skip
    traj = fit(
        teacher,
        student,
        args.objective,
        seed=args.seed,
        estimator=args.estimator,
        gradient=args.gradient or "pathwise",
        n=n,
        **settings,
        **params,
    )
    results = []
    for i, s in enumerate(traj.final):
        summary = summarize(teacher, s)
        results.append({"start": i, "loss": float(traj.loss[-1, i]), **summary.as_dict()})
    _no_nan(results, f"the {args.objective} fit")
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


# values no divergence of the kind can exceed (JSD of any beta <= ln 2; TV <= 1): past them, the
# quadrature did not resolve the distributions, and the value is refused rather than printed
_UPPER = {"tv": 1.0, "jsd": math.log(2.0)}


def _cmd_divergence(args: argparse.Namespace) -> str:
    teacher = parse_mixture(args.teacher, "--teacher")
    student = parse_mixture(args.student, "--student")
    params = _objective_params(args, args.kind)
    if KINDS[args.kind].discrete_only:
        raise ValueError(f"--kind {args.kind} is defined for discrete distributions only; --teacher is continuous")
    if args.method == "mc":
        n = 10_000 if args.n is None else args.n
        if KINDS[args.kind].integrand is None:
            raise ValueError(f"--kind {args.kind} has no Monte-Carlo estimator; use --method exact")
        check_budget("--n x (teacher + student components)", n * (components(teacher) + components(student)),
                     MC_MEMORY_BUDGET, "lower --n")  # fmt: skip
    elif args.n is not None:
        raise ValueError("--n (Monte-Carlo samples) applies to --method mc only")
    else:
        n = 10_000
    value = divergence(teacher, student, args.kind, method=args.method, n=n, seed=args.seed, **params)
    if isinstance(value, MCEstimate):
        _no_nan([value.value, value.stderr], f"the Monte-Carlo estimate of {args.kind}")
        out = {"kind": args.kind, "method": "mc", "value": value.value, "stderr": value.stderr, "n": value.n}
        text = f"{args.kind} = {value.value:.6f} +- {value.stderr:.6f} (Monte Carlo, n={value.n})"
    else:
        value = float(value)
        _no_nan(value, args.kind)
        upper = _UPPER.get(args.kind, math.inf)
        if not -1e-9 <= value <= upper * (1 + 1e-9):
            raise ValueError(
                f"{args.kind} came out as {value:.6g}, outside its possible range [0, {upper:.6g}]: the quadrature did "
                "not resolve these distributions; use --method mc, or fewer or wider components"
            )
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
    parser = Parser(prog="kl-lab", description="Forward vs reverse KL, measured.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    kinds = list(KINDS)

    def add_params(p: argparse.ArgumentParser) -> None:
        p.add_argument("--beta", type=number("--beta", 0, 1), help="jsd: mixture weight beta in [0, 1]")
        p.add_argument(
            "--alpha",
            type=number("--alpha", *ALPHA_RANGE),
            help=f"alpha: alpha in [{ALPHA_RANGE[0]:g}, {ALPHA_RANGE[1]:g}]; skew kinds: alpha in [0, 1]",
        )
        p.add_argument("--mu", type=number("--mu", 0, 1, low_open=True), help="akl: head mass mu in (0, 1]")
        p.add_argument("--seed", type=seed(), default=0, help="random seed in [0, 2**32 - 1] (default 0)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    f = sub.add_parser("fit", help="fit a student to a teacher")
    f.add_argument("--preset", type=choice("--preset", PRESETS), metavar="PRESET", help=", ".join(PRESETS))
    f.add_argument("--teacher", help="'weight:mean:std,...' (1-D) instead of a preset")
    f.add_argument("--student", help="'mean:std' starting student (default 0:1)")
    f.add_argument("--objective", default="reverse_kl", type=choice("--objective", kinds), metavar="KIND",
                   help=", ".join(kinds))  # fmt: skip
    f.add_argument("--steps", type=integer("--steps", 0, FIT_STEPS_MAX), help=f"0 .. {FIT_STEPS_MAX} (default 400)")
    f.add_argument("--lr", type=number("--lr", 0, 10, low_open=True), help="learning rate in (0, 10]")
    f.add_argument("--inits", type=integer("--inits", 1, FIT_INITS_MAX), help=f"starts, 1 .. {FIT_INITS_MAX}")
    f.add_argument("--estimator", default="exact", type=choice("--estimator", ESTIMATORS), metavar="EST",
                   help=", ".join(ESTIMATORS))  # fmt: skip
    f.add_argument("--gradient", type=choice("--gradient", GRADIENTS), metavar="GRAD",
                   help="on-policy Monte Carlo: " + ", ".join(GRADIENTS) + " (default pathwise)")  # fmt: skip
    f.add_argument("--n", type=integer("--n", 2, FIT_SAMPLES_MAX),
                   help=f"Monte-Carlo samples per step and start, 2 .. {FIT_SAMPLES_MAX} (default 256)")  # fmt: skip
    add_params(f)

    d = sub.add_parser("divergence", help="evaluate a divergence between two 1-D distributions")
    d.add_argument("--teacher", required=True, help="'weight:mean:std,...' or 'mean:std'")
    d.add_argument("--student", required=True, help="'weight:mean:std,...' or 'mean:std'")
    d.add_argument("--kind", default="forward_kl", type=choice("--kind", kinds), metavar="KIND", help=", ".join(kinds))
    d.add_argument("--method", default="exact", type=choice("--method", ["exact", "mc"]), metavar="METHOD",
                   help="exact or mc")  # fmt: skip
    d.add_argument("--n", type=integer("--n", 2, MC_SAMPLES_MAX),
                   help=f"Monte-Carlo samples, 2 .. {MC_SAMPLES_MAX} (default 10000)")  # fmt: skip
    add_params(d)

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


def _error(message: str) -> int:
    print_line(f"kl-lab: error: {one_line(message)}", sys.stderr)
    return 2


def run_command(handler: Any, args: argparse.Namespace) -> int:
    """Run one subcommand's handler and print its text; any failure becomes one line on stderr and status 2.

    Warnings (numpy's overflow notes, torch's) are silenced around the work: a result is checked for NaN
    instead, and a failure is reported once. KeyboardInterrupt is left alone.
    """
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            text = handler(args)
    except ValueError as err:  # the checks' own messages, and the library's (they name the parameter)
        return _error(str(err))
    except OverflowError as err:
        return _error(f"a number overflowed for these inputs ({err}); use less extreme values")
    except (ZeroDivisionError, FloatingPointError, ArithmeticError) as err:
        return _error(f"a numerical failure for these inputs ({type(err).__name__}: {err}); use other values")
    except MemoryError:
        return _error("out of memory for these inputs; use smaller values")
    except OSError as err:
        where = f" {short(str(err.filename))}" if err.filename else ""
        return _error(f"cannot read or write{where}: {err.strerror or err}")
    except Exception as err:  # an internal error still gets one line, not a traceback
        return _error(f"internal error ({type(err).__name__}: {err}); please report it with the command line")
    try:
        print_line(text)
    except BrokenPipeError:  # kl-lab ... | head: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit, so the final flush is quiet
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kl-lab`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status (0, or 2 on bad input)."""
    parser, commands = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or argparse's one-line error (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    return run_command(commands[args.command], args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
