"""The ``kl-lab export`` command: a lab animation (or its scenario) to HTML, div, PNG, SVG, GIF, MP4 or JSON.

    kl-lab export --preset bimodal --objectives forward_kl,reverse_kl --format gif --out fit.gif --fps 12
    kl-lab export --scenario saved.json --out fit.html          # the format follows the file's suffix
    kl-lab export --preset ring --format json --out ring.json   # the scenario only, no fitting

Flags given with ``--scenario`` override the file's values. A bad flag or value prints one line
``kl-lab: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kl_core.presets import PRESETS
from kl_core.scenario import MAX_BYTES, OBJECTIVES, Scenario

__all__ = ["add_commands", "scenario_from_args"]

FORMATS = ("html", "div", "png", "svg", "gif", "mp4", "json")
SUFFIXES = {".html": "html", ".htm": "html", ".png": "png", ".svg": "svg", ".gif": "gif", ".mp4": "mp4"}
SUFFIXES[".json"] = "json"


def add_commands(sub: Any) -> dict[str, Any]:
    """Add ``export`` to the ``kl-lab`` subcommands; returns its handler."""
    e = sub.add_parser("export", help="export a lab animation or its scenario to a file")
    source = e.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=[n for n, p in PRESETS.items() if p.space in ("1d", "2d")])
    source.add_argument("--scenario", help="a scenario JSON file (saved from the app or by --format json)")
    e.add_argument("--objectives", help=f"comma-separated kinds from: {', '.join(OBJECTIVES)}")
    e.add_argument("--beta", type=float, help="jsd: beta in [0, 1]")
    e.add_argument("--alpha", type=float, help="alpha-divergence: alpha in [-2, 3]")
    e.add_argument("--skew", type=float, help="skew KLs: alpha in [0, 0.95]")
    e.add_argument("--steps", type=int, help="optimisation steps")
    e.add_argument("--inits", type=int, help="starts")
    e.add_argument("--lr", type=float, help="learning rate")
    e.add_argument("--seed", type=int, help="seed of the starts and samples")
    e.add_argument("--format", choices=FORMATS, help="default: from the suffix of --out")
    e.add_argument("--out", required=True, help="the file to write")
    e.add_argument("--frames", type=int, help="animation frames (default 40 in 1-D, 50 in 2-D)")
    e.add_argument("--fps", type=float, default=12.0, help="GIF/MP4 frames per second (default 12)")
    e.add_argument("--width", type=int, help="PNG/SVG/GIF/MP4 width in pixels (default 960)")
    e.add_argument("--height", type=int, help="PNG/SVG/GIF/MP4 height in pixels (default: the figure's)")
    return {"export": _cmd_export}


def _objectives(args: argparse.Namespace) -> tuple | None:
    if args.objectives is None:
        return None
    kinds = [k.strip() for k in args.objectives.split(",") if k.strip()]
    bad = [k for k in kinds if k not in OBJECTIVES]
    if bad or not kinds:
        raise ValueError(
            f"--objectives must be a comma-separated list of {', '.join(OBJECTIVES)}, got {args.objectives!r}"
        )
    values = {"jsd": ("beta", args.beta), "alpha": ("alpha", args.alpha)}
    values.update({k: ("alpha", args.skew) for k in ("skew_forward_kl", "skew_reverse_kl")})
    out = []
    for kind in dict.fromkeys(kinds):
        name, value = values.get(kind, (None, None))
        out.append((kind, ((name, value),) if value is not None else ()))
    return tuple(out)


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario the flags describe: ``--scenario`` (or ``--preset``, default bimodal) plus overrides."""
    if args.scenario is not None:
        path = Path(args.scenario)
        if not path.is_file():
            raise ValueError(f"--scenario: no such file {args.scenario!r}")
        with path.open("rb") as f:
            scenario = Scenario.from_json(f.read(MAX_BYTES + 1))  # reading one byte more lets it say "too big"
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


def _cmd_export(args: argparse.Namespace) -> str:
    fmt = args.format or SUFFIXES.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise ValueError(f"--format is needed: the suffix of --out {args.out!r} names no format ({', '.join(FORMATS)})")
    scenario = scenario_from_args(args)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ValueError(f"--out: no such directory {str(out.parent)!r}")
    if fmt == "json":
        out.write_text(scenario.to_json())
        return f"wrote {out} (scenario, {out.stat().st_size} bytes)"

    from kl_core.scenario import scenario_figure
    from kl_core.viz import export

    title, caption = export.scenario_labels(scenario)
    labels = {"title": title, "caption": caption}  # every file says what it shows and with which settings
    images = {"width": args.width, "height": args.height, **labels}
    options: dict[str, dict[str, Any]] = {
        "html": labels,
        "div": labels,
        "png": images,
        "svg": images,
        "gif": {**images, "fps": args.fps, "max_frames": None},
        "mp4": {**images, "fps": args.fps, "max_frames": None},
    }
    if fmt in ("gif", "mp4", "png", "svg"):
        export.check_size(args.width, args.height, even=fmt == "mp4")
        if fmt in ("gif", "mp4"):
            export.check_fps(args.fps)
    fig = scenario_figure(scenario, n_frames=args.frames) if args.frames is not None else scenario_figure(scenario)
    data = export.export(fig, fmt, **options[fmt])
    out.write_bytes(data)
    return f"wrote {out} ({fmt}, {len(data) / 1e6:.2f} MB, {len(fig.frames)} frames)"
