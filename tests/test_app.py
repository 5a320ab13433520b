"""The Streamlit app, headless (AppTest): every page, every preset, random widget combinations."""

import math
import random
from pathlib import Path

import numpy as np
import pytest
from spec_tools import assert_clean, decode, figures, traces
from streamlit.testing.v1 import AppTest

from app import state as schema
from kl_core import PRESETS

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGES = ["views/lab_1d.py", "views/landscape.py", "views/family.py", "views/lab_2d.py", "views/theory.py"]


def app(query: dict | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_defaults(page):
    at = app(page=None if page == PAGES[0] else page)
    assert_clean(at)
    if page != "views/theory.py":
        assert figures(at), "a chart is drawn"


def student_moments(fig: dict, run: int, start: int = 0) -> tuple[float, float]:
    """Mean and std of the drawn density of one student (initial data = the final frame)."""
    (t,) = traces(fig, "student", run=run, start=start)
    x, y = decode(t["x"]), decode(t["y"])
    mass = np.trapezoid(y, x)
    mean = np.trapezoid(x * y, x) / mass
    return mean, math.sqrt(np.trapezoid((x - mean) ** 2 * y, x) / mass)


def test_lab_1d_default_numbers_reflect_the_maths():
    at = app()
    assert_clean(at)
    assert at.title[0].value == "Mode covering vs mode seeking"
    fig = figures(at)[0]
    # forward KL (run 0) from the default bimodal teacher: moment matching, N(0, sqrt(10))
    mean, std = student_moments(fig, run=0)
    assert mean == pytest.approx(0.0, abs=0.02) and std == pytest.approx(math.sqrt(10), rel=0.02)
    # reverse KL (run 1): start 0 settles on the mode at +2.984 with std 1.023
    mean, std = student_moments(fig, run=1)
    assert mean == pytest.approx(2.984, abs=0.02) and std == pytest.approx(1.023, rel=0.02)
    assert len(fig["frames"]) > 10
    text = " ".join(m.value for m in at.markdown)
    assert "reverse KL" in text and "forward KL" in text


@pytest.mark.parametrize("preset", [p for p in schema.PRESETS_1D])
def test_every_1d_preset(preset):
    at = app({"preset": preset, "steps": "150"})
    assert_clean(at)
    fig = figures(at)[0]
    # the drawn teacher is the preset's teacher
    t = traces(fig, "teacher")[0]
    x, y = decode(t["x"]), decode(t["y"])
    np.testing.assert_allclose(y, PRESETS[preset].teacher.prob(x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("preset", schema.PRESETS_2D)
def test_every_2d_preset(preset):
    at = app({"preset2d": preset, "steps2d": "50", "inits2d": "2"}, page="views/lab_2d.py")
    assert_clean(at)
    assert at.title[0].value == "2-D lab"
    assert traces(figures(at)[0], "ellipse")


def test_widgets_drive_the_figure_and_the_url():
    at = app()
    at.slider(key="w_m1").set_value(-5.0).run()
    assert_clean(at)
    assert at.query_params["m1"] == "-5" and at.query_params["preset"] == "custom"
    fig = figures(at)[0]
    t = traces(fig, "teacher")[0]  # drawn once per objective's column
    x, y = decode(t["x"]), decode(t["y"])
    # the teacher's left mode moved to -5: its peak is there now
    left = x < -1
    assert x[left][np.argmax(y[left])] == pytest.approx(-5.0, abs=0.15)
    at.selectbox(key="w_preset").set_value("three_modes").run()
    assert_clean(at)
    assert at.slider(key="w_m1").value == pytest.approx(-5.0) and at.slider(key="w_modes").value == 3


def test_controls_keep_their_values_across_pages():
    # Streamlit drops the value of a widget the last run did not draw: the shared sidebar controls used to
    # open at their minimum after a change of page (one mode at -10, lr 0.005)
    at = app()
    at.slider(key="w_m1").set_value(-4.0).run()
    at.slider(key="w_lr").set_value(0.1).run()
    for page in ("views/landscape.py", "views/family.py", "views/lab_1d.py"):
        at.switch_page(page).run()
        assert_clean(at)
        assert at.slider(key="w_m1").value == pytest.approx(-4.0), page
        assert at.slider(key="w_modes").value == 2, page
    assert at.slider(key="w_lr").value == pytest.approx(0.1)
    assert at.query_params["m1"] == "-4" and at.query_params["lr"] == "0.1"


def test_bad_url_warns_and_falls_back():
    at = app({"lr": "banana", "steps": "100", "objectives": "nope"})
    assert_clean(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "lr must be a number" in warnings and "objectives must be" in warnings
    assert at.slider(key="w_lr").value == schema.DEFAULTS["lr"] and at.slider(key="w_steps").value == 100


def test_hide_removes_controls():
    at = app({"hide": "lr,steps", "steps": "100"})
    assert_clean(at)
    keys = {s.key for s in at.slider}
    assert "w_lr" not in keys and "w_steps" not in keys and "w_inits" in keys


def random_query(rng: random.Random, page: str) -> dict:
    """Values drawn from the full range of every control the page shows."""
    f = schema.FIELDS

    def draw(name):
        fld = f[name]
        if fld.kind == "int":
            return str(rng.randrange(int(fld.low), int(fld.high) + 1, int(fld.step) if fld.step else 1))
        if fld.kind == "float":
            return f"{rng.uniform(fld.low, fld.high):.4g}"
        if fld.kind == "choice":
            return rng.choice(fld.choices)
        return ",".join(rng.sample(fld.choices, rng.randint(1, 3)))

    common = ["lr", "seed"]
    names = {
        "views/lab_1d.py": [
            "preset",
            "modes",
            "student",
            "k",
            "objectives",
            "beta",
            "alpha",
            "skew",
            "estimator",
            "samples",
            "steps",
            "inits",
            "speed",
            *[f"{c}{i}" for i in range(1, 7) for c in "wms"],
        ],
        "views/landscape.py": [
            "preset",
            "modes",
            "left",
            "right",
            "beta",
            "alpha",
            "skew",
            "grid",
            "estimator",
            "steps",
            "inits",
            "m1",
            "s1",
        ],
        "views/family.py": ["preset", "sweep", "points", "steps", "inits", "kmax", "m1", "s2"],
        "views/lab_2d.py": ["preset2d", "objectives2d", "beta", "alpha", "skew", "steps2d", "inits2d"],
    }[page]
    query = {n: draw(n) for n in names + common}
    # bound the work of one draw (the ranges of every value above stay full)
    if page == "views/lab_1d.py":
        query["steps"] = str(min(int(query["steps"]), 300))
        query["samples"] = str(min(int(query["samples"]), 256))
    if page == "views/landscape.py":
        query["steps"], query["grid"] = str(min(int(query["steps"]), 200)), str(min(int(query["grid"]), 60))
    if page == "views/family.py":
        query["steps"], query["points"], query["inits"] = "100", str(min(int(query["points"]), 5)), "2"
    if page == "views/lab_2d.py":
        query["steps2d"], query["inits2d"] = "50", str(min(int(query["inits2d"]), 2))
    return query


@pytest.mark.parametrize("draw", range(60))
def test_random_widget_combinations_never_crash(draw):
    rng = random.Random(draw)
    page = ["views/lab_1d.py", "views/lab_1d.py", "views/landscape.py", "views/family.py", "views/lab_2d.py"][draw % 5]
    query = random_query(rng, page)
    at = app(query, page=None if page == "views/lab_1d.py" else page)
    assert not at.exception, (query, [e.value for e in at.exception])
    assert not at.warning, (query, [w.value for w in at.warning])  # every drawn value is valid
    for e in at.error:  # a combination that cannot be computed must say why, never crash
        assert "cannot be computed" in e.value
    assert figures(at) or at.error
