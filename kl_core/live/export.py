"""The live lab as one self-contained HTML file: engine, widget and a scenario baked in, no network.

The page inlines ``engine.js``, ``minima.js`` and ``widget.js`` (one ES module, imports resolved by
concatenation) and ``widget.css``; the scenario's teacher, student, objectives and kc.fit's own
starts for its seed go in as JSON. It works from ``file://`` (nothing is fetched) and trains from
the moment it loads unless the reader prefers reduced motion.

    kl-lab export --format live --out widget.html
    python -m kl_core.live.export --out kl_core/live/page.html      # the standalone page beside the engine
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

from kl_core.distributions import GaussianMixture
from kl_core.live import problem
from kl_core.scenario import Scenario, scenario_teacher, start_student
from kl_core.viz.colors import ROLE_COLORS

__all__ = ["MAX_BYTES", "bundle_js", "widget_css", "scene_from_scenario", "live_html", "write_live"]

HERE = Path(__file__).resolve().parent
MODULES = ("engine.js", "minima.js", "widget.js")  # in dependency order
MAX_BYTES = 300_000  # the budget for the standalone file
_IMPORT = re.compile(r"^import [^;]+;\n", re.MULTILINE)
_EXPORT = re.compile(r"^export (?=(?:async )?function|const|let|class)", re.MULTILINE)
_NAMES = re.compile(r"^export (?:async )?(?:function|const|let|class) (\w+)", re.MULTILINE)


@cache
def bundle_js() -> str:
    """The three modules as one script body: imports dropped, ``export`` dropped, and the engine's
    names gathered in ``E`` (the widget calls ``E.step`` etc.). Ends with ``mount`` in scope."""
    parts = []
    for name in MODULES:
        src = (HERE / name).read_text(encoding="utf-8")
        body = _EXPORT.sub("", _IMPORT.sub("", src))
        parts.append(f"// ---- {name} ----\n{body}")
        if name == "engine.js":
            names = _NAMES.findall(src)
            parts.append(f"const E = Object.freeze({{ {', '.join(names)} }});\n")
    return "\n".join(parts)


@cache
def widget_css() -> str:
    return (HERE / "widget.css").read_text(encoding="utf-8")


def _json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element: no '</script>' or '<!--' can close or confuse it."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def scene_from_scenario(
    scenario: Scenario | None = None,
    *,
    steps_per_frame: int = 5,
    autoplay: bool = True,
    global_keys: bool = False,
    notation: tuple[str, str] = ("T", "S"),
) -> dict:
    """The widget's scene for a 1-D scenario (default: the 1-D lab's default), with kc.fit's starts.

    ``notation`` is the (teacher, student) letters of the widget's readouts, e.g. ``("p", "q")``
    for the lesson (the 1-D lab's are T and S).
    """
    scenario = Scenario(space="1d") if scenario is None else scenario
    if scenario.space != "1d":
        raise ValueError(f"the live lab is 1-D; this scenario is {scenario.space}")
    if not 1 <= int(steps_per_frame) <= 50:
        raise ValueError(f"steps_per_frame must be in [1, 50], got {steps_per_frame!r}")
    if not (
        len(notation) == 2 and all(isinstance(n, str) and re.fullmatch(r"[A-Za-zπ]{1,3}", n) for n in notation)
    ):
        raise ValueError(f"notation must be two short letter names (teacher, student), got {notation!r}")
    teacher = scenario_teacher(scenario)
    student = start_student(teacher, scenario.preset, scenario.student, scenario.components)
    if isinstance(student, GaussianMixture) and student.n_components > 1:
        start = {"mean": float(teacher.mean), "std": math.sqrt(float(teacher.variance))}
    else:
        start = {"mean": float(student.mean), "std": math.sqrt(float(student.variance))}
    learn = ("mean",) if scenario.student == "gaussian_fixed_std" else None
    kind0, params0 = scenario.objectives[0]
    p = problem(
        teacher,
        student,
        kind0,
        steps=0,
        lr=scenario.lr,
        inits=scenario.inits,
        seed=scenario.seed,
        learn=learn,
        **dict(params0),
    )
    estimator = {"name": "exact"}
    if scenario.estimator != "exact":
        sampler = "teacher" if scenario.estimator == "off_policy" else "student"
        gradient = "score" if scenario.estimator == "on_policy_score" else "pathwise"
        estimator = {"name": "mc", "sampler": sampler, "gradient": gradient, "samples": int(scenario.samples)}
    weights, means, stds = (list(v) for v in zip(*scenario.teacher))
    return {
        "teacher": {"weights": weights, "means": means, "stds": stds},  # as the app's sliders hold them
        "student": {
            "family": scenario.student,
            "components": scenario.components if scenario.student == "mixture" else 1,
            "start": start,
        },
        "objectives": [{"kind": kind, "params": dict(params)} for kind, params in scenario.objectives],
        "inits": scenario.inits,
        "seed": scenario.seed,
        "lr": scenario.lr,
        "estimator": estimator,
        "starts": p["starts"],
        "stepsPerFrame": int(steps_per_frame),
        "autoplay": bool(autoplay),
        "colors": dict(ROLE_COLORS),
        "globalKeys": bool(global_keys),
        "notation": list(notation),
    }


def live_html(scenario: Scenario | None = None, *, title: str = "KL Lab: live", **scene_options: Any) -> str:
    """One self-contained HTML page of the live widget for ``scenario`` (see module docstring)."""
    scene = scene_from_scenario(scenario, **{"global_keys": True, **scene_options})
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{html.escape(title)}</title>
<style>
body {{ margin: 0; padding: 12px; background: Canvas; color: CanvasText; }}
{widget_css()}
</style>
</head>
<body>
<main id="kl-live-root" class="kl-live" aria-label="{html.escape(title)}"></main>
<script type="application/json" id="kl-live-scene">{_json_for_script(scene)}</script>
<script type="module">
{bundle_js()}
const scene = JSON.parse(document.getElementById("kl-live-scene").textContent);
window.klLive = mount(document.getElementById("kl-live-root"), scene);
</script>
</body>
</html>
"""
    size = len(page.encode("utf-8"))
    if size > MAX_BYTES:
        raise ValueError(f"the live page is {size} bytes, over its budget of {MAX_BYTES}")
    return page


def write_live(path: str | Path, scenario: Scenario | None = None, **options: Any) -> int:
    """Write :func:`live_html` to ``path``; returns the number of bytes written."""
    data = live_html(scenario, **options).encode("utf-8")
    Path(path).write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write the live lab's standalone page")
    parser.add_argument("--out", default=str(HERE / "page.html"))
    args = parser.parse_args(argv)
    n = write_live(args.out)
    print(f"wrote {args.out} ({n} bytes)")  # noqa: T201 (a command's output)


if __name__ == "__main__":
    main()
