"""The live lab's Python side around the engine: the standalone page, its scene, the CLI and the app's glue."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kl_core as kc
from app.live_ui import teacher_from_release
from kl_core.live import export
from kl_core.scenario import Scenario
from kl_core.viz.colors import ROLE_COLORS

ROOT = Path(__file__).resolve().parents[1]


def scene_of(page: str) -> dict:
    raw = re.search(r'<script type="application/json" id="kl-live-scene">(.*?)</script>', page, re.S).group(1)
    return json.loads(raw)


def test_widget_colours_are_kl_core_role_colours():
    src = (ROOT / "kl_core" / "live" / "widget.js").read_text()
    block = src[src.index("export const ROLE_COLORS = {") : src.index("};", src.index("export const ROLE_COLORS"))]
    assert dict(re.findall(r"(\w+): \"(#[0-9A-Fa-f]{6})\"", block)) == ROLE_COLORS


def test_scene_bakes_in_the_scenario_and_kc_fit_starts():
    scenario = Scenario(objectives=(("jsd", (("beta", 0.3),)), ("tv", ())), inits=5, seed=4)
    scene = export.scene_from_scenario(scenario)
    assert [o["kind"] for o in scene["objectives"]] == ["jsd", "tv"] and scene["objectives"][0]["params"] == {
        "beta": 0.3
    }
    w, m, s = zip(*scenario.teacher)
    assert scene["teacher"] == {"weights": list(w), "means": list(m), "stds": list(s)}
    teacher = kc.GaussianMixture(list(w), list(m), list(s))
    start = kc.Gaussian(scene["student"]["start"]["mean"], scene["student"]["start"]["std"])
    traj = kc.fit(teacher, start, "jsd", steps=0, inits=5, seed=4, beta=0.3)
    assert np.allclose(scene["starts"], traj.params[0], rtol=1e-15, atol=0)
    assert scene["colors"] == ROLE_COLORS


def test_scene_rejects_2d_and_bad_steps_per_frame():
    with pytest.raises(ValueError, match="1-D"):
        export.scene_from_scenario(Scenario(space="2d", preset="ring"))
    with pytest.raises(ValueError, match=r"steps_per_frame must be in \[1, 50\]"):
        export.scene_from_scenario(steps_per_frame=51)


def test_page_is_self_contained_small_and_escapes_its_json():
    page = export.live_html(title="KL Lab <b>&</b>")
    assert len(page.encode()) <= export.MAX_BYTES
    assert "<title>KL Lab &lt;b&gt;&amp;&lt;/b&gt;</title>" in page
    assert re.search(r"https?://", page) is None and "<script src" not in page
    assert "import " not in page.split('<script type="module">')[1].split("</script>")[0].split("\n", 2)[1]
    assert scene_of(page)["autoplay"] is True and scene_of(page)["globalKeys"] is True
    assert "</" not in export._json_for_script({"x": "</script><!--"})


def test_bundle_defines_every_engine_export_once():
    bundle = export.bundle_js()
    assert "export " not in re.sub(r"//.*", "", bundle) and not re.search(r"^import ", bundle, re.M)
    names = re.findall(r"^export (?:function|const) (\w+)", (ROOT / "kl_core/live/engine.js").read_text(), re.M)
    assert f"const E = Object.freeze({{ {', '.join(names)} }});" in bundle
    declared = re.findall(r"^(?:function|const|let|class) (\w+)", bundle, re.M)
    assert len(declared) == len(set(declared)), "two modules declare the same top-level name"


def test_shipped_page_is_the_generated_default():
    assert (ROOT / "kl_core" / "live" / "page.html").read_text(encoding="utf-8") == export.live_html(), (
        "kl_core/live/page.html is stale: run `python -m kl_core.live.export`"
    )


def test_cli_writes_the_live_page(tmp_path: Path):
    out = tmp_path / "w.html"
    cmd = [sys.executable, "-m", "kl_core.cli", "export", "--preset", "bimodal", "--objectives", "reverse_kl,jsd"]
    done = subprocess.run(
        [*cmd, "--beta", "0.2", "--format", "live", "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out} (live lab, " in done.stdout
    assert [o["kind"] for o in scene_of(out.read_text())["objectives"]] == ["reverse_kl", "jsd"]
    bad = subprocess.run(
        [*cmd, "--preset", "ring", "--format", "live", "--out", str(out)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "the live lab is 1-D" in bad.stderr


@pytest.mark.parametrize(
    "release, expected",
    [
        (
            {"teacher": {"weights": [0.52, 0.5], "means": [-6.27, 3.0], "stds": [1.04, 9.0]}},
            ((0.5, -6.3, 1.0), (0.5, 3.0, 4.0)),
        ),
        ({"teacher": {"weights": [0.01], "means": [-40.0], "stds": [0.01]}}, ((0.05, -10.0, 0.2),)),
        ({"teacher": {"weights": [1, 1], "means": [0.0], "stds": [1, 1]}}, None),
        ({"teacher": {"weights": ["x"], "means": [0.0], "stds": [1]}}, None),
        ({"teacher": {"weights": [1] * 7, "means": [0.0] * 7, "stds": [1] * 7}}, None),
        ({"teacher": {"weights": [1], "means": [float("nan")], "stds": [1]}}, None),
        ({"nothing": 1}, None),
        ("teacher", None),
    ],
)
def test_app_snaps_a_released_teacher_to_the_sidebar(release, expected):
    assert teacher_from_release(release) == expected


def test_scene_notation_is_validated_and_baked_in():
    assert export.scene_from_scenario()["notation"] == ["T", "S"]
    assert export.scene_from_scenario(notation=("p", "q"))["notation"] == ["p", "q"]
    for bad in (("p",), ("p", "<b>"), ("p", ""), ("p", 1)):
        with pytest.raises(ValueError, match="notation must be two short letter names"):
            export.scene_from_scenario(notation=bad)
    src = (ROOT / "kl_core" / "live" / "widget.js").read_text()
    assert "KL(${P}‖${Q})" in src and "KL(T‖S)" not in src  # the readouts take the scene's letters


# the lesson's live steps: oracle = the step's own facts (kl_core.lesson's fits for its figure)
LESSON_LIVE = {"forward": ["forward_kl"], "reverse": ["reverse_kl"], "both": ["forward_kl", "reverse_kl"]}


@pytest.mark.parametrize("key", list(LESSON_LIVE))
def test_lesson_scene_trains_what_the_steps_figure_trains(key):
    from kl_core import lesson
    from kl_core.live.lesson import lesson_scene

    step = lesson.BY_KEY[key]
    scene = lesson_scene(step)
    facts = step.facts()
    traj = facts["traj"] if "traj" in facts else facts["fwd"]
    assert [o["kind"] for o in scene["objectives"]] == LESSON_LIVE[key]
    assert scene["notation"] == ["p", "q"] and scene["inits"] == traj.inits
    assert np.allclose(scene["starts"], traj.params[0], rtol=1e-15, atol=0)  # kc.fit's starts, start 0 first
    w, m, s = facts["teacher"].components()
    assert np.allclose(scene["teacher"]["means"], m[:, 0]) and np.allclose(scene["teacher"]["weights"], w)
    assert (scene["lr"], scene["seed"]) == (lesson.LR, lesson.SEED)


def test_lesson_steps_without_a_live_widget():
    from kl_core.lesson import STEPS
    from kl_core.live.lesson import lesson_scene

    assert [s.key for s in STEPS if lesson_scene(s) is not None] == list(LESSON_LIVE)


def _bidi_scenes(at) -> dict[str, dict]:
    return {
        e.proto.id.rsplit("-", 1)[-1]: json.loads(e.proto.json)
        for e in at.get("bidi_component")
        if e.proto.component_name == "kl_lab_live"
    }


def test_app_lesson_steps_show_the_live_widget_after_the_answer():
    from streamlit.testing.v1 import AppTest

    from kl_core.lesson import STEPS
    from kl_core.live.lesson import lesson_scene

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120)
    at.query_params["lesson_step"] = "2"
    at = at.switch_page("views/lesson.py").run()
    for number in (2, 3, 4, 5):
        step = STEPS[number - 1]
        assert not at.exception
        assert _bidi_scenes(at) == {}  # predict first: nothing trains before the answer
        at.radio(key=f"lesson_answer_{step.key}").set_value(step.answer)
        at = at.button(key=f"lesson_check_{step.key}").click().run()
        assert not at.exception
        scenes = _bidi_scenes(at)
        if step.key in LESSON_LIVE:
            assert list(scenes) == [f"lesson_live_{number}"]
            data = scenes[f"lesson_live_{number}"]
            assert data["report"] is False and data["scene"] == json.loads(json.dumps(lesson_scene(step)))
            assert any(c.value.startswith("Now play with it") for c in at.caption)
        else:
            assert scenes == {}
        at = at.button(key="lesson_next").click().run()
