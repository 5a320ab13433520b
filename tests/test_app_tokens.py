"""The token lab page, headless (AppTest): defaults, every preset, random widget combinations, bad URLs.

Oracles: the forward-KL student of a factorised family is the product of the teacher's marginals
(numpy sums); decoded next-token distributions by softmax / top-k written out here.
"""

import random
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax
from spec_tools import assert_clean, decode, figures, traces
from streamlit.testing.v1 import AppTest

from kl_core import PRESETS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page imports `app.*`, as app/main.py arranges in a real run

from app import state as schema  # noqa: E402

PAGE = str(ROOT / "app" / "views" / "tokens.py")
JOINT = [c for c in schema.FIELDS["tok_preset"].choices if c != "custom"]
SINGLE = list(schema.FIELDS["tok_next"].choices)


_COMPONENTS = {}  # one scan of the installed streamlit components for every AppTest here


def share_components(at: AppTest) -> AppTest:
    """Each new AppTest scans every installed package for streamlit components (about 2 s); the
    result does not change between tests, so the first scan is handed to the later AppTests."""
    if "manager" in _COMPONENTS and getattr(at, "_bidi_component_manager", "absent") is None:
        at._bidi_component_manager = _COMPONENTS["manager"]
    return at


def remember_components(at: AppTest) -> AppTest:
    if getattr(at, "_bidi_component_manager", None) is not None:
        _COMPONENTS.setdefault("manager", at._bidi_component_manager)
    return at


def page(query: dict | None = None) -> AppTest:
    at = share_components(AppTest.from_file(PAGE, default_timeout=120))
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return remember_components(at.run())


def grid(z) -> np.ndarray:
    """A heatmap's z: a list of rows, each a list or a base64 array."""
    if isinstance(z, dict) and "bdata" in z:
        flat = decode(z)
        return flat.reshape([int(n) for n in str(z["shape"]).split(",")]) if "shape" in z else flat
    return np.array([decode(row) for row in z])


def product_of_marginals(p: np.ndarray) -> np.ndarray:
    out = np.ones(())
    for i in range(p.ndim):
        out = np.multiply.outer(out, p.sum(axis=tuple(a for a in range(p.ndim) if a != i)))
    return out


def test_default_render_shows_the_lesson_in_numbers():
    at = page()
    assert_clean(at)
    assert at.title[0].value == "Token lab"
    joint, decoding = figures(at)
    teacher = PRESETS["city_tokens"].teacher.probs
    (fwd,) = traces(joint, "joint", run=0, start=0)
    (rev,) = traces(joint, "joint", run=1, start=0)
    # forward KL: the product of the teacher's marginals (float32 in the spec)
    np.testing.assert_allclose(grid(fwd["z"]), product_of_marginals(teacher), atol=1e-4)
    assert grid(rev["z"]).max() > 0.9  # reverse KL: one city
    assert len(joint["frames"]) > 10
    text = " ".join(m.value for m in at.markdown)
    assert "**reverse KL**: 8 of 8 starts put > 90% on one valid answer" in text
    invalid = 1.0 - np.trace(product_of_marginals(teacher))
    assert "**forward KL**: 0 of 8 starts" in text and f"{invalid:.1%} of its mass on invalid pairs" in text
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 16
    # decoding view at T = 1, no filters: the student's own distribution in the bars
    (bars,) = traces(decoding, "bars", what="decoded")
    student = np.exp(PRESETS["breakfast_next_token"].student.log_probs)
    np.testing.assert_allclose(decode(bars["y"]), student, atol=1e-6)


def test_the_page_is_in_the_navigation():
    at = share_components(AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120))
    at.query_params["steps"] = "50"  # keep the default page's fit short
    at.run()
    at.switch_page("views/tokens.py").run()
    assert_clean(at)
    assert at.title[0].value == "Token lab"


@pytest.mark.parametrize("preset", JOINT)
def test_every_joint_preset(preset):
    at = page({"tok_preset": preset, "tok_steps": "100", "tok_inits": "3"})
    assert_clean(at)
    joint = figures(at)[0]
    (t,) = traces(joint, "teacher_joint")
    p = PRESETS[preset].teacher.probs
    np.testing.assert_allclose(grid(t["z"]), p.reshape(p.shape[0], -1), atol=1e-6)


@pytest.mark.parametrize("pair", SINGLE)
def test_every_next_token_pair_with_top_k(pair):
    at = page({"tok_next": pair, "tok_topk": "3", "tok_temp": "0.5", "tok_steps": "50", "tok_inits": "2"})
    assert_clean(at)
    decoding = figures(at)[1]
    (bars,) = traces(decoding, "bars", what="decoded")
    q = softmax(PRESETS[pair].student.log_probs / 0.5)
    q = np.where(q >= np.sort(q)[-3], q, 0.0)
    np.testing.assert_allclose(decode(bars["y"]), q / q.sum(), atol=1e-6)
    (fwd,) = traces(decoding, "sweep", kind="forward_kl")
    assert "∞" in fwd["name"]  # top-k dropped tokens the teacher uses


def test_custom_table_starts_from_the_city_table():
    at = page({"tok_preset": "custom", "tok_steps": "50", "tok_inits": "2"})
    assert_clean(at)
    (t,) = traces(figures(at)[0], "teacher_joint")
    p = PRESETS["city_tokens"].teacher.probs
    np.testing.assert_allclose(grid(t["z"]), np.round(p, 3) / np.round(p, 3).sum(), atol=1e-6)


def test_widgets_drive_the_figures_and_the_url():
    at = page({"tok_steps": "50", "tok_inits": "2"})
    at.slider(key="w_tok_temp").set_value(2.0).run()
    assert_clean(at)
    assert at.query_params["tok_temp"] == "2"
    (bars,) = traces(figures(at)[1], "bars", what="decoded")
    student = PRESETS["breakfast_next_token"].student.log_probs
    np.testing.assert_allclose(decode(bars["y"]), softmax(student / 2.0), atol=1e-6)
    at.slider(key="w_tok_start").set_value(1).run()
    assert_clean(at)
    assert traces(figures(at)[0], "joint", run=0, start=1)


def test_bad_url_values_warn_and_fall_back():
    at = page({"tok_temp": "banana", "tok_topk": "99", "tok_preset": "nope", "tok_steps": "100"})
    assert_clean(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "tok_temp must be a number" in warnings and "tok_topk must be in" in warnings
    assert "tok_preset must be one of" in warnings
    assert at.slider(key="w_tok_temp").value == schema.DEFAULTS["tok_temp"]
    assert at.slider(key="w_tok_topk").value == 0 and at.slider(key="w_tok_steps").value == 100
    assert at.selectbox(key="w_tok_preset").value == "city_tokens"


NAMES = [
    "tok_preset",
    "tok_objectives",
    "beta",
    "alpha",
    "skew",
    "tok_mu",
    "tok_steps",
    "tok_inits",
    "tok_lr",
    "tok_seed",
    "tok_start",
    "speed",
    "tok_next",
    "tok_temp",
    "tok_topk",
    "tok_topp",
    "tok_decode",
]


def random_query(rng: random.Random) -> dict:
    """A value from the full range of every control on the page."""
    query = {}
    for name in NAMES:
        f = schema.FIELDS[name]
        if f.kind == "int":
            query[name] = str(rng.randrange(int(f.low), int(f.high) + 1, int(f.step)))
        elif f.kind == "float":
            query[name] = f"{rng.uniform(f.low, f.high):.4g}"
        elif f.kind == "choice":
            query[name] = rng.choice(f.choices)
        else:
            query[name] = ",".join(rng.sample(f.choices, rng.randint(1, 3)))
    query["tok_steps"] = str(min(int(query["tok_steps"]), 150))  # bound the work; other ranges stay full
    return query


@pytest.mark.parametrize("draw", range(20))
def test_random_widget_combinations_never_crash(draw):
    query = random_query(random.Random(draw))
    at = page(query)
    assert not at.exception, (query, [e.value for e in at.exception])
    assert not at.warning, (query, [w.value for w in at.warning])
    for e in at.error:
        assert "cannot be" in e.value, query
    figs = figures(at)
    assert len(figs) == 2 or at.error
    if len(figs) == 2:
        kinds = query["tok_objectives"].split(",")
        assert len(traces(figs[0], "joint")) == len(kinds)
        start = min(int(query["tok_start"]), int(query["tok_inits"]) - 1)
        assert {t["meta"]["start"] for t in traces(figs[0], "joint")} == {start}
