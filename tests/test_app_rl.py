"""The RL page, headless (AppTest): defaults, each part's numbers, random widget combinations, bad URLs.

Oracles: kl_core.divergence for the starting KL, brute-force normalisation for pi*, the closed form
sqrt(e^{mu^2} - 1 - mu^2) for k3's std.
"""

import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from spec_tools import assert_clean, decode, figures, traces
from streamlit.testing.v1 import AppTest

import kl_core as kc
import kl_core.rl as rl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page imports `app.*`, as app/main.py arranges in a real run

from app import state as schema  # noqa: E402

PAGE = str(ROOT / "app" / "views" / "rl.py")
RL_FIELDS = [f for f in schema.FIELDS.values() if f.name.startswith("rl_")]


def page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def test_defaults_render_the_gradient_part_with_its_numbers():
    at = page()
    assert_clean(at)
    assert at.title[0].value == "Reverse KL is RL"
    variance, training = figures(at)
    # variance falls with n for every estimator, pathwise lowest at the demo start
    lines = {t["meta"]["estimator"]: decode(t["y"]) for t in traces(variance, "variance")}
    assert set(lines) == {"pathwise", "score", "score_loo"}
    assert all(np.all(np.diff(v) < 0) for v in lines.values())
    assert lines["pathwise"][-1] < lines["score_loo"][-1] < lines["score"][-1]
    # every training curve starts at KL(N(-4, 0.5) || teacher), oracle kl_core.divergence
    start = kc.divergence(rl.DEMO_TEACHER, kc.Gaussian(-4.0, 0.5), "reverse_kl")
    curves = {t["meta"]["estimator"]: decode(t["y"]) for t in traces(training, "training")}
    assert set(curves) == {"exact", "pathwise", "score", "score_loo"}
    for y in curves.values():
        assert y[0] == pytest.approx(start, rel=1e-5) and y[-1] < 0.5 * start
    text = at.markdown[0].value
    assert "maximum-entropy RL" in text and f"KL = {start:.3f}" in text


def test_regularised_part_draws_pi_star_exactly():
    at = page({"rl_part": "regularised", "rl_beta": "0.8", "rl_tilt": "-1.5", "rl_arms": "30"})
    assert_clean(at)
    (fig,) = figures(at)
    b = rl.bandit(30, -1.5, 0.8)
    brute = np.exp(b.log_reference) * np.exp(b.reward / 0.8)
    brute /= brute.sum()  # direct normalisation
    for t in traces(fig, "optimum"):
        np.testing.assert_allclose(decode(t["y"]), brute, rtol=1e-5, atol=1e-8)
    rows = at.dataframe[0].value
    assert rows["KL(S‖π*)"].iloc[0] == 0.0 and rows["KL(S‖π*)"].iloc[1] < 0.01  # pi* itself; the sampled RL fit
    assert rows["E[r] − β·KL(S‖π_ref)"].iloc[0] == pytest.approx(0.8 * b.log_normaliser, rel=1e-9)


def test_estimator_part_table_and_sweep():
    at = page({"rl_part": "estimators", "rl_mu": "1.5"})
    assert_clean(at)
    histogram, sweep = figures(at)
    assert {t["meta"]["estimator"] for t in traces(histogram, "histogram")} == {"k1", "k2", "k3"}
    (k3,) = traces(sweep, "std", estimator="k3", source="exact")
    mu = decode(k3["x"])
    np.testing.assert_allclose(decode(k3["y"]), np.sqrt(np.exp(mu**2) - 1 - mu**2), rtol=1e-5)
    table = at.dataframe[0].value
    assert list(table["matches"]) == ["nothing: 0 in expectation", "∇ KL(S‖T), reverse", "∇ KL(T‖S), forward"]
    assert list(table["unbiased for KL(S‖T)?"])[::2] == ["yes", "yes"]
    assert table["mean estimate"].iloc[0] == pytest.approx(1.5**2 / 2, rel=0.02)


@pytest.mark.parametrize("penalty,below", [("exact", 0.02), ("k3_loss", None)])
def test_ppo_part_animates_the_policy(penalty, below):
    at = page({"rl_part": "ppo", "rl_penalty": penalty})
    assert_clean(at)
    bars, kls = figures(at)
    assert len(bars["frames"]) == 60 and traces(bars, "optimum")
    final = decode(traces(kls, "kl", to="optimum")[0]["y"])[-1]
    if below is not None:
        assert final < below
    else:  # k3 as a loss leads elsewhere: a third curve to its own fixed point, which it reaches
        assert final > 1.0 and decode(traces(kls, "kl", to="target")[0]["y"])[-1] < 0.01


def _random_value(field: schema.Field, rng: random.Random):
    if field.kind == "choice":
        return rng.choice(field.choices)
    steps = int(round((field.high - field.low) / field.step))
    value = field.low + field.step * rng.randint(0, steps)
    return int(value) if field.kind == "int" else round(value, 6)


@pytest.mark.parametrize("draw", range(20))
def test_random_widget_combinations(draw):
    """Every rl_ field drawn from its full range (the part cycles, so each part gets five draws)."""
    rng = random.Random(draw)
    query = {f.name: schema.FIELDS[f.name].dump(_random_value(f, rng)) for f in RL_FIELDS}
    query["rl_part"] = schema.FIELDS["rl_part"].choices[draw % 4]
    at = page(query)
    assert_clean(at)
    assert not at.warning, [w.value for w in at.warning]
    assert figures(at), query
    for field in RL_FIELDS:  # the widgets show the drawn values
        drawn = [
            w for w in at.get("slider") + at.get("selectbox") + at.get("number_input") if w.key == f"w_{field.name}"
        ]
        if drawn:
            assert drawn[0].value == pytest.approx(field.parse(query[field.name])), field.name


def test_bad_url_values_warn_and_fall_back():
    at = page({"rl_part": "bogus", "rl_beta": "-3", "rl_arms": "abc", "rl_mu": "nan", "rl_setting": "categorical"})
    assert_clean(at)
    warnings = " ".join(w.value for w in at.warning)
    for name in ("rl_part", "rl_beta", "rl_arms", "rl_mu"):
        assert name in warnings
    assert at.selectbox(key="w_rl_part").value == "gradients"  # fell back
    (variance, _) = figures(at)
    assert {t["meta"]["estimator"] for t in traces(variance, "variance")} == {"score", "score_loo"}  # kept
    at.selectbox(key="w_rl_part").set_value("regularised").run()
    assert_clean(at)
    assert at.slider(key="w_rl_beta").value == pytest.approx(schema.FIELDS["rl_beta"].default)
    assert at.slider(key="w_rl_arms").value == schema.FIELDS["rl_arms"].default
    assert math.isclose(at.slider(key="w_rl_tilt").value, 1.0)


def test_the_four_parts_are_tabs_in_step_with_the_menu_and_the_url():
    at = page({"rl_part": "ppo"})
    assert_clean(at)
    labels = [label for _, label in schema.FIELDS["rl_part"].labels]
    assert [t.label for t in at.tabs] == labels and at.session_state["rl_tabs"] == labels[3]
    # only the open part is computed, and it is drawn inside its own tab
    assert [len(t.children) > 0 for t in at.tabs] == [False, False, False, True]
    assert at.tabs[3].header[0].value.startswith("4. PPO")
    at.selectbox(key="w_rl_part").set_value("estimators").run()  # the sidebar menu moves the tab too
    assert_clean(at)
    assert at.session_state["rl_tabs"] == labels[2] and at.query_params["rl_part"] == "estimators"
    assert at.tabs[2].header[0].value.startswith("3. The KL estimators")
