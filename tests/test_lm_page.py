"""The language-model lab: shipped comparisons, records, figures and the page (AppTest).

Oracles: hand-computed mode probabilities of the languages (prompt weight x mode weight), brute-force
enumeration of a student's answers for its mode histogram, a rerun of the shipped comparison's first
evaluation (same seed), and the asset JSON itself for what the page shows.
"""

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from spec_tools import assert_clean, decode
from streamlit.testing.v1 import AppTest

from kl_core import lm
from kl_core.lm.neural import ASSETS
from kl_core.lm.showcase import Comparison, Settings, load_comparisons, method_record, mode_table
from kl_core.viz.lm import METHOD_COLORS, PANELS, metrics_figure, modes_figure, samples_html

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page imports `app.*`, as app/main.py arranges in a real run

from app import state as schema  # noqa: E402

PAGE = str(ROOT / "app" / "views" / "lm.py")
SHIPPED = load_comparisons(ASSETS / "comparisons.json")
DEFAULT = SHIPPED[Settings().key()]
LM_FIELDS = [f for f in schema.FIELDS.values() if f.name.startswith("lm_")]


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py


def page(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


# -- records and the shipped file ---------------------------------------------------------------------


def test_state_fields_match_the_library():
    assert schema.FIELDS["lm_language"].choices == tuple(lm.LANGUAGES)
    assert schema.FIELDS["lm_methods"].choices == tuple(lm.METHODS)
    assert schema.FIELDS["lm_methods"].default == lm.DEMO_METHODS
    assert schema.FIELDS["lm_steps"].default == lm.DEMO_STEPS
    student = Settings().student()
    assert student == lm.default_student(student.vocab_size)  # the page's default student is the library's
    assert set(METHOD_COLORS) == set(lm.METHODS) and len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)


def test_mode_table_hand_computed():
    labels, probs, index = mode_table(lm.get_language("cities"))
    assert labels[:2] == ("sucre", "la_paz") and index[0] == [0, 1]
    assert probs[0] == pytest.approx(0.6 / 6) and probs[labels.index("bloemfontein")] == pytest.approx(0.2 / 6)
    labels, probs, _ = mode_table(lm.get_language("arithmetic"))  # the same three formats for all 16 sums
    assert labels == ("digit", "word", "padded") and probs == pytest.approx((0.5, 0.3, 0.2))


def test_shipped_comparisons_cover_every_language_and_show_the_tradeoff():
    for settings in (
        Settings("cities"), Settings("arithmetic"), Settings("stories"), Settings("cities", teacher="neural"),
        Settings("arithmetic", teacher="neural"), Settings("cities", context=4),
    ):  # fmt: skip
        c = SHIPPED[settings.key()]
        assert list(c.methods) == list(lm.DEMO_METHODS)
        assert sum(c.teacher_mode_probs) == pytest.approx(1.0)
        for r in c.methods.values():
            assert r.steps == lm.DEMO_STEPS and r.device == "cpu" and r.tokens_per_s > 0
            assert sum(r.mode_probs) + r.invalid_prob == pytest.approx(1.0, abs=1e-6 if r.exact else 0.02)
            assert r.history["step"][0] == 0 and r.history["step"][-1] == lm.DEMO_STEPS
    fwd, rev = DEFAULT.methods["forward_kl"], DEFAULT.methods["reverse_kl"]
    # the lab's point, with a bigram student: reverse KL valid but fewer modes, forward KL all modes, mixed
    assert rev.final("validity") > 0.9 > 0.7 > fwd.final("validity")
    assert fwd.final("mode_coverage") == pytest.approx(1.0) and rev.final("mode_coverage") < 0.75
    assert fwd.final("forward_kl") < rev.final("forward_kl") and rev.final("reverse_kl") < fwd.final("reverse_kl")
    sample = next(s for s in rev.samples if s.mode >= 0)
    assert sample.mode_name in lm.get_language("cities").mode_names(sample.prompt)


def test_shipped_comparison_is_reproduced_by_its_seed():
    """Oracle: rerun the first 15 steps (the first evaluation after step 0) with the same seed."""
    shipped = DEFAULT.methods["reverse_kl"]
    assert shipped.history["step"][1] == 15
    result = lm.distill("cities", Settings().student(), "reverse_kl", steps=15, eval_every=15, seed=0, device="cpu")
    for key in ("forward_kl", "reverse_kl", "validity", "mode_coverage", "entropy"):
        assert shipped.history[key][1] == pytest.approx(result.series(key)[-1], rel=1e-4, abs=1e-6), key


def test_record_mode_probs_against_brute_force():
    language = lm.get_language("cities")
    result = lm.distill(language, Settings().student(), "forward_kl", steps=10, eval_every=10, seed=1, device="cpu")
    record = method_record("forward_kl", {}, result.history, language, device="cpu", requested_steps=10)
    student, teacher = result.load_student(), lm.SyntheticTeacher(language)
    labels, _, _ = mode_table(language)
    expected = np.zeros(len(labels))
    V = language.vocab_size
    for i in range(language.n_prompts):  # every answer of every prompt: student prob, teacher prob, mode
        answers = torch.cartesian_prod(*[torch.arange(V)] * language.answer_length)
        seqs = torch.cat([language.prompt_ids[i].expand(len(answers), -1), answers], 1)
        with torch.no_grad():
            q = lm.sequence_log_prob(student, seqs, 1).double().exp()
            valid = lm.sequence_log_prob(teacher, seqs, 1) >= np.log(teacher.threshold)
        modes = language.answer_modes(torch.full((len(answers),), i), answers)
        for m, name in enumerate(language.mode_names(i)):
            expected[labels.index(name)] += float(language.prompt_weights[i]) * float(q[valid & (modes == m)].sum())
    np.testing.assert_allclose(record.mode_probs, expected, rtol=1e-4, atol=1e-7)
    assert record.invalid_prob == pytest.approx(1 - expected.sum(), abs=1e-6)
    raw = json.loads(json.dumps(Comparison(Settings(), labels, (), {"forward_kl": record}).to_json()))
    back = Comparison.from_json(raw).methods["forward_kl"]  # JSON round trip (NaN timings: null)
    assert json.dumps(back.as_dict()) == json.dumps(record.as_dict()) and back.samples == record.samples


def test_figures_carry_the_records_numbers():
    fig = metrics_figure(DEFAULT).to_plotly_json()
    for name, r in DEFAULT.methods.items():
        for key, _ in PANELS:
            (trace,) = [t for t in fig["data"] if t["meta"] == {"role": "metric", "method": name, "metric": key}]
            np.testing.assert_allclose(decode(trace["y"]), r.history[key])
            assert trace["line"]["color"] == METHOD_COLORS[name]
    bars = modes_figure(DEFAULT).to_plotly_json()["data"]
    np.testing.assert_allclose(decode(bars[0]["y"])[:-1], DEFAULT.teacher_mode_probs)
    for bar, r in zip(bars[1:], DEFAULT.methods.values()):
        np.testing.assert_allclose(decode(bar["y"]), [*r.mode_probs, r.invalid_prob])
    html = samples_html(DEFAULT.methods["forward_kl"])
    first = DEFAULT.methods["forward_kl"].samples[0]
    assert first.text in html and html.count("<br>") == min(24, len(DEFAULT.methods["forward_kl"].samples)) - 1


# -- the page -----------------------------------------------------------------------------------------


def test_default_render_shows_the_shipped_comparison():
    at = page()
    assert_clean(at)
    assert at.title[0].value == "Language-model lab"
    assert any("Precomputed" in c.value for c in at.caption)
    rows = at.dataframe[0].value
    for i, r in enumerate(DEFAULT.methods.values()):
        assert rows["validity"].iloc[i] == pytest.approx(r.final("validity"), abs=1e-4)
        assert rows["mode coverage"].iloc[i] == pytest.approx(r.final("mode_coverage"), abs=1e-4)
        assert rows["KL(T‖S)"].iloc[i] == f"{r.final('forward_kl'):.3f}"
        assert rows["KL(S‖T)"].iloc[i] == f"{r.final('reverse_kl'):.3f}"
        assert rows["tokens/s"].iloc[i] == round(r.tokens_per_s) and rows["device"].iloc[i] == "cpu"
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    wanted = {"role": "metric", "method": "reverse_kl", "metric": "validity"}
    (rkl,) = [t for t in curves["data"] if t["meta"] == wanted]
    np.testing.assert_allclose(decode(rkl["y"]), DEFAULT.methods["reverse_kl"].history["validity"], rtol=1e-6)
    text = at.markdown[0].value
    assert f"{100 * DEFAULT.methods['reverse_kl'].final('validity'):.0f}% valid answers" in text
    assert at.button(key="lm_stop").proto.disabled  # nothing runs: Stop is disabled


def wait_for_job(at: AppTest, timeout: float = 60) -> None:
    job = at.session_state["_lm_job"]
    assert job.join(timeout), "training did not finish"
    assert job.error is None, job.error


def test_train_runs_live_and_updates_the_curves():
    at = page({"lm_steps": "10", "lm_methods": "sft,gkd", "lm_beta": "0.3", "lm_context": "2"})
    assert_clean(at)
    assert any("not been trained yet" in i.value for i in at.info)
    at.button(key="lm_train").click().run()
    assert not at.exception
    wait_for_job(at)
    at.run()
    assert_clean(at)
    assert any("Trained in this session" in c.value for c in at.caption)
    rows = at.dataframe[0].value
    assert list(rows["steps"]) == [10, 10] and rows["method"].iloc[1] == "GKD (β=0.3, λ=0.5)"
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    steps = {t["meta"]["method"]: decode(t["x"]) for t in curves["data"] if t["meta"]["metric"] == "validity"}
    assert set(steps) == {"sft", "gkd"} and all(list(s) == [0, 5, 10] for s in steps.values())


def test_stop_keeps_what_was_trained():
    at = page({"lm_steps": "1000", "lm_methods": "reverse_kl,forward_kl"})
    at.button(key="lm_train").click().run()
    job = at.session_state["_lm_job"]
    assert not at.button(key="lm_stop").proto.disabled
    at.button(key="lm_stop").click().run()
    assert job.join(60) and job.stopping
    at.run()
    assert_clean(at)
    assert any("Stopped early" in c.value for c in at.caption)
    rows = at.dataframe[0].value
    assert list(rows["method"]) == ["reverse KL (on-policy)"] and rows["steps"].iloc[0] < 1000


@pytest.mark.parametrize(
    "query,warned",
    [
        ({"lm_steps": "abc", "lm_language": "klingon"}, ["lm_steps", "lm_language"]),
        ({"lm_methods": "sft,nonsense", "lm_width": "7"}, ["lm_methods", "lm_width"]),
        ({"lm_alpha": "inf", "lm_teacher": "oracle", "lm_seed": "-1"}, ["lm_alpha", "lm_teacher", "lm_seed"]),
    ],
)
def test_bad_urls_warn_and_fall_back(query, warned):
    at = page(query)
    assert_clean(at)
    text = " ".join(w.value for w in at.warning)
    assert all(name in text for name in warned)
    rows = at.dataframe[0].value  # every bad value fell back to its default: the shipped default comparison
    assert rows["validity"].iloc[1] == pytest.approx(DEFAULT.methods["reverse_kl"].final("validity"), abs=1e-4)


def test_neural_teacher_page_and_fallbacks():
    at = page({"lm_teacher": "neural"})
    assert_clean(at)
    shipped = SHIPPED[Settings("cities", teacher="neural").key()]
    validity = shipped.methods["forward_kl"].final("validity")
    assert at.dataframe[0].value["validity"].iloc[0] == pytest.approx(validity, abs=1e-4)
    at = page({"lm_teacher": "neural", "lm_language": "stories", "lm_device": "cuda"})
    assert not at.exception
    assert any("No neural teacher is shipped for stories" in i.value for i in at.info)
    if not torch.cuda.is_available():
        assert any("CUDA is not available" in w.value for w in at.warning)
    assert "±" in at.dataframe[0].value["KL(T‖S)"].iloc[0]  # stories: Monte-Carlo KLs with standard errors


def random_query(rng: random.Random) -> dict[str, str]:
    query = {}
    for f in LM_FIELDS:
        if rng.random() < 0.5 and f.name != "lm_steps":
            continue
        if f.kind == "choice":
            value = rng.choice(f.choices)
        elif f.kind == "multi":
            value = tuple(rng.sample(f.choices, rng.randint(1, 3)))
        elif f.name == "lm_steps":
            value = rng.choice([5, 10])  # tiny: some of these combinations train
        elif f.kind == "int":
            value = rng.randrange(int(f.low), int(f.high) + 1, int(f.step))
        else:
            value = round(f.low + f.step * rng.randrange(int(round((f.high - f.low) / f.step)) + 1), 6)
        query[f.name] = f.dump(value)
    return query


def test_random_url_combinations():
    rng = random.Random(20261128)
    for i in range(16):
        query = random_query(rng)
        at = page(query)
        assert not at.exception, (query, [e.value for e in at.exception])
        assert not at.error, (query, [e.value for e in at.error])
        assert at.title[0].value == "Language-model lab"
        if i % 5 == 0:  # train some of them for real (tiny steps)
            at.button(key="lm_train").click().run()
            wait_for_job(at, 90)
            at.run()
            assert_clean(at)
            assert all(s == int(query["lm_steps"]) for s in at.dataframe[0].value["steps"]), query
