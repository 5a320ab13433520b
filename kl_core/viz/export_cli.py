"""The ``kl-lab export`` command: a lab animation (or its scenario) to HTML, div, PNG, SVG, GIF, MP4 or JSON.

    kl-lab export --preset bimodal --objectives forward_kl,reverse_kl --format gif --out fit.gif --fps 12
    kl-lab export --scenario saved.json --out fit.html          # the format follows the file's suffix
    kl-lab export --preset ring --format json --out ring.json   # the scenario only, no fitting
    kl-lab export --format live --out widget.html               # the live lab: trains in the browser

Flags given with ``--scenario`` override the file's values. A bad flag or value prints one line
``kl-lab: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kl_core.cli_args import (
    FIT_WORK_BUDGET,
    check_budget,
    choice,
    fit_work,
    integer,
    number,
    out_file,
    path_error,
    path_text,
    probe_writable,
    short,
)
from kl_core.presets import PRESETS
from kl_core.scenario import MAX_BYTES, OBJECTIVES, RANGES, Scenario

__all__ = ["add_commands", "export_work", "scenario_from_args"]

FORMATS = ("html", "div", "png", "svg", "gif", "mp4", "json", "live")
SUFFIXES = {".html": "html", ".htm": "html", ".png": "png", ".svg": "svg", ".gif": "gif", ".mp4": "mp4"}
SUFFIXES[".json"] = "json"


MAX_FRAMES = 200  # --frames: animation frames (2 .. this)
# GIF / MP4: every frame is rendered by a headless browser; frames x width x height past this is refused
PIXEL_BUDGET = 250_000_000  # e.g. 120 frames at 1920 x 1080
MOVIE_FORMATS = ("gif", "mp4")


def add_commands(sub: Any) -> dict[str, Any]:
    """Add ``export`` to the ``kl-lab`` subcommands; returns its handler."""
    e = sub.add_parser("export", help="export a lab animation or its scenario to a file")
    source = e.add_mutually_exclusive_group()
    presets = [n for n, p in PRESETS.items() if p.space in ("1d", "2d")]
    source.add_argument("--preset", type=choice("--preset", presets), metavar="PRESET", help=", ".join(presets))
    source.add_argument("--scenario", type=path_text("--scenario"),
                        help="a scenario JSON file (saved from the app or by --format json)")  # fmt: skip
    e.add_argument("--objectives", help=f"comma-separated kinds from: {', '.join(OBJECTIVES)}")
    # the scenario checks the ranges (and names its field); the types refuse what is not a number
    for flag, key, help_ in (("--beta", "beta", "jsd: beta"), ("--alpha", "alpha", "alpha-divergence: alpha"),
                             ("--skew", "skew", "skew KLs: alpha"), ("--lr", "lr", "learning rate")):  # fmt: skip
        low, high = RANGES[key]
        e.add_argument(flag, type=number(flag, low, high, check_range=False), help=f"{help_} in [{low:g}, {high:g}]")
    for flag, key, help_ in (("--steps", "steps", "optimisation steps (2-D: at most 1000)"),
                             ("--inits", "inits", "starts (2-D: at most 8)"), ("--seed", "seed", "seed")):  # fmt: skip
        low, high = RANGES[key]
        e.add_argument(flag, type=integer(flag, int(low), int(high), check_range=False),
                       help=f"{help_}, {low:g} .. {high:g}")  # fmt: skip
    e.add_argument("--format", type=choice("--format", FORMATS), metavar="FORMAT",
                   help=f"{', '.join(FORMATS)} (default: from the suffix of --out)")  # fmt: skip
    e.add_argument("--out", required=True, type=path_text("--out"), help="the file to write")
    e.add_argument("--frames", type=integer("--frames", 2, MAX_FRAMES),
                   help=f"animation frames, 2 .. {MAX_FRAMES} (default 40 in 1-D, 50 in 2-D)")  # fmt: skip
    e.add_argument("--fps", type=number("--fps", 0.5, 60, check_range=False),
                   help="GIF/MP4 frames per second in [0.5, 60] (default 12)")  # fmt: skip
    e.add_argument("--width", type=integer("--width", 16, 4096, check_range=False),
                   help="PNG/SVG/GIF/MP4 width in pixels, 16 .. 4096 (default 960)")  # fmt: skip
    e.add_argument("--height", type=integer("--height", 16, 4096, check_range=False),
                   help="PNG/SVG/GIF/MP4 height in pixels, 16 .. 4096 (default: the figure's)")  # fmt: skip
    return {"export": _cmd_export}


def _objectives(args: argparse.Namespace) -> tuple | None:
    if args.objectives is None:
        for flag in ("beta", "alpha", "skew"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag} needs --objectives listing the kind it is a parameter of")
        return None
    kinds = [k.strip() for k in args.objectives.split(",") if k.strip()]
    bad = [k for k in kinds if k not in OBJECTIVES]
    if bad or not kinds:
        raise ValueError(
            f"--objectives must be a comma-separated list of {', '.join(OBJECTIVES)}, got {short(args.objectives)}"
        )
    if len(args.objectives) > 400:
        raise ValueError(f"--objectives is {len(args.objectives)} characters long; list at most 8 kinds")
    values = {"jsd": ("beta", args.beta), "alpha": ("alpha", args.alpha)}
    values.update({k: ("alpha", args.skew) for k in ("skew_forward_kl", "skew_reverse_kl")})
    takers = {"--beta": ("jsd",), "--alpha": ("alpha",), "--skew": ("skew_forward_kl", "skew_reverse_kl")}
    for flag, kinds_taking in takers.items():
        if getattr(args, flag[2:]) is not None and not set(kinds_taking) & set(kinds):
            raise ValueError(f"{flag} is a parameter of {' and '.join(kinds_taking)}, which --objectives does not list")
    out = []
    for kind in dict.fromkeys(kinds):
        name, value = values.get(kind, (None, None))
        out.append((kind, ((name, value),) if value is not None else ()))
    return tuple(out)


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario the flags describe: ``--scenario`` (or ``--preset``, default bimodal) plus overrides."""
    if args.scenario is not None:
        path = Path(args.scenario)
        try:
            if not path.is_file():
                raise ValueError(f"--scenario: no such file {short(args.scenario)}")
            with path.open("rb") as f:
                data = f.read(MAX_BYTES + 1)  # reading one byte more lets it say "too big"
        except OSError as err:
            raise path_error("--scenario", args.scenario, err) from None
        scenario = Scenario.from_json(data)
    else:
        preset = args.preset or "bimodal"
        scenario = Scenario(space=PRESETS[preset].space, preset=preset)
        if scenario.space == "2d":  # the 2-D lab's defaults
            scenario = scenario.replace(steps=200, inits=4)
    changes: dict[str, Any] = {}
    objectives = _objectives(args)
    if objectives is not None:
        changes["objectives"] = objectives
    for name in ("steps", "inits", "lr", "seed"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return scenario.replace(**changes) if changes else scenario


def export_work(scenario: Scenario) -> float:
    """The scenario's fits' work in fit_work units (see :func:`kl_core.cli_args.fit_work`), all objectives."""
    from kl_core.scenario import ESTIMATOR_OPTIONS, scenario_teacher, start_student

    teacher = scenario_teacher(scenario)
    if scenario.space == "2d":
        student = PRESETS[scenario.preset].student
        estimator = "exact"
    else:
        student = start_student(teacher, scenario.preset, scenario.student, scenario.components)
        estimator = ESTIMATOR_OPTIONS[scenario.estimator]["estimator"]
    one = fit_work(teacher, student, scenario.steps, scenario.inits, estimator, scenario.samples)
    return one * len(scenario.objectives)


def _cmd_export(args: argparse.Namespace) -> str:
    out = out_file("--out", args.out)
    fmt = args.format or SUFFIXES.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise ValueError(
            f"--format is needed: the suffix of --out {short(args.out)} names no format ({', '.join(FORMATS)})"
        )
    scenario = scenario_from_args(args)
    fps = 12.0 if args.fps is None else args.fps
    # every given flag is checked, also where the format does not use it (--fps for a PNG)
    export_module().check_size(args.width, args.height, even=fmt == "mp4")
    export_module().check_fps(fps)
    if fmt in MOVIE_FORMATS:
        frames = args.frames or (50 if scenario.space == "2d" else 40)
        pixels = frames * (args.width or 960) * (args.height or 600)
        check_budget(f"--frames x --width x --height for {fmt}", pixels, PIXEL_BUDGET,
                     "lower --frames or the image size")  # fmt: skip
    if fmt != "json":
        check_budget("the scenario's fits' work (objectives x steps x inits x grid points or samples)",
                     export_work(scenario), FIT_WORK_BUDGET, "lower --steps, --inits or the objectives")  # fmt: skip
    probe_writable("--out", out)
    if fmt == "json":
        data = scenario.to_json().encode("utf-8")
        _write("--out", out, data)
        return f"wrote {out} (scenario, {len(data)} bytes)"
    if fmt == "live":  # the in-browser live lab: one self-contained HTML file (kl_core.live.export)
        from kl_core.live.export import live_html

        data = live_html(scenario).encode("utf-8")
        _write("--out", out, data)
        return f"wrote {out} (live lab, {len(data) / 1e3:.0f} KB, trains in the browser)"

    from kl_core.scenario import scenario_figure

    export = export_module()
    title, caption = export.scenario_labels(scenario)
    labels = {"title": title, "caption": caption}  # every file says what it shows and with which settings
    images = {"width": args.width, "height": args.height, **labels}
    options: dict[str, dict[str, Any]] = {
        "html": labels,
        "div": labels,
        "png": images,
        "svg": images,
        "gif": {**images, "fps": fps, "max_frames": None},
        "mp4": {**images, "fps": fps, "max_frames": None},
    }
    fig = scenario_figure(scenario, n_frames=args.frames) if args.frames is not None else scenario_figure(scenario)
    data = export.export(fig, fmt, **options[fmt])
    _write("--out", out, data)
    return f"wrote {out} ({fmt}, {len(data) / 1e6:.2f} MB, {len(fig.frames)} frames)"


def export_module() -> Any:
    """``kl_core.viz.export``, imported when a command needs it (it loads plotly and the image writers)."""
    from kl_core.viz import export

    return export


def _write(flag: str, path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as err:
        raise path_error(flag, path, err) from None
