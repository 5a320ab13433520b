"""kl_core.lm training: the forward-vs-reverse demonstration, every method's objective, the loop, the CLI, HF models.

The demonstration (fixed seeds, the default preset ``cities`` and the default bigram student): the
reverse-KL student answers consistently (validity near 1) on one capital per country; the forward-KL
and SFT students name every capital but contradict themselves about half the time.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from kl_core import lm
from kl_core.cli import main

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def demo():
    return lm.compare("cities", ("sft", "forward_kl", "reverse_kl"), steps=150, seed=0, eval_every=150, device="cpu")


def test_reverse_kl_student_is_valid_and_forward_kl_student_covers_the_modes(demo):
    fwd, sft, rev = demo["forward_kl"].final, demo["sft"].final, demo["reverse_kl"].final
    # a bigram student that covers every capital mixes them: validity ~ sum_m w_m^2 (about 0.5 here)
    for f in (fwd, sft):
        assert f.validity < 0.65 and f.mode_coverage > 0.95
    # the reverse-KL student commits to one capital per country: (5 * 1/2 + 1/3) / 6 = 0.472
    assert rev.validity > 0.95 and rev.valid_mass > 0.95
    assert rev.mode_coverage == pytest.approx((5 * 0.5 + 1 / 3) / 6)
    assert rev.validity > fwd.validity + 0.3 and fwd.mode_coverage > rev.mode_coverage + 0.4
    # each wins on its own divergence (exact, sequence level)
    assert fwd.exact and rev.exact
    assert fwd.forward_kl < rev.forward_kl - 1.0 and rev.reverse_kl < fwd.reverse_kl - 1.0
    # the best a bigram can do under forward KL: match the capitals' weights twice, independently
    # KL = E_c sum_m w_m log(w_m / w_m^2) = E_c H(w) (plus smoothing, checked loosely)
    w = [(0.6, 0.4), (0.7, 0.3), (0.5, 0.3, 0.2), (0.65, 0.35), (0.55, 0.45), (0.5, 0.5)]
    entropy = np.mean([-sum(x * math.log(x) for x in ws) for ws in w])
    assert fwd.forward_kl == pytest.approx(entropy, abs=0.1)
    assert sft.forward_kl == pytest.approx(entropy, abs=0.1)


def test_compare_starts_every_method_from_the_same_student(demo):
    first = [r.history[0] for r in demo.values()]
    for e in first[1:]:
        assert e.forward_kl == first[0].forward_kl and e.reverse_kl == first[0].reverse_kl
        np.testing.assert_array_equal(e.samples, first[0].samples)
    r = demo["reverse_kl"]
    assert r.device == "cpu" and r.steps == 150 and r.tokens_per_s > 0 and len(r.loss) == 150
    assert len(r.sample_text) == 6 * lm.evaluation.N_SAMPLES
    assert r.sample_text[0].startswith("bolivia? ") and set(r.sample_mode_name) <= {
        "sucre", "la_paz", "amsterdam", "the_hague", "pretoria", "cape_town", "bloemfontein", "kuala_lumpur",
        "putrajaya", "colombo", "kotte", "porto_novo", "cotonou", "invalid",
    }  # fmt: skip
    np.testing.assert_array_equal(r.series("step"), [0, 150])
    assert r.series("validity")[-1] == r.final.validity
    with pytest.raises(ValueError, match="valid metrics"):
        r.series("samples")
    student = r.load_student()
    again = lm.evaluate(lm.SyntheticTeacher(lm.get_language("cities")), student, seed=0)
    assert again.reverse_kl == pytest.approx(r.final.reverse_kl, rel=1e-5)


@pytest.mark.parametrize("method", list(lm.METHODS))
def test_every_method_lowers_its_own_objective(method):
    # REINFORCE from a near-uniform student first raises the sequence-level reverse KL (it grows confident
    # in its first token before the rest is right), then drops it: it gets more steps and larger batches
    steps, batch = (80, 64) if method == "on_policy_sampled" else (40, 32)
    r = lm.distill("cities", method=method, steps=steps, batch_size=batch, seed=1, eval_every=steps, device="cpu")
    start, end = r.history[0].objective, r.history[-1].objective
    assert math.isfinite(start) and end < 0.6 * start, (start, end)


def test_distill_is_reproducible_and_callbacks_can_stop_it():
    seen = []

    def stop_at_20(progress: lm.Progress):
        seen.append((progress.method, progress.step, len(progress.history)))
        if progress.step >= 20:
            raise lm.StopTraining

    a = lm.distill("arithmetic", method="gkd", steps=100, batch_size=16, seed=3, eval_every=10, callback=stop_at_20)
    assert seen == [("gkd", 0, 1), ("gkd", 10, 2), ("gkd", 20, 3)]
    assert a.stopped_early and a.steps == 20 and len(a.loss) == 20
    b = lm.distill("arithmetic", method="gkd", steps=20, batch_size=16, seed=3, eval_every=10)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not b.stopped_early
    assert [e.forward_kl for e in a.history] == [e.forward_kl for e in b.history]
    c = lm.distill("arithmetic", method="gkd", steps=5, batch_size=16, seed=3, callback=lambda p: False)
    assert c.steps == 0 and c.stopped_early and len(c.history) == 1


def test_stories_is_evaluated_by_monte_carlo_with_standard_errors():
    r = lm.distill("stories", method="forward_kl", steps=30, batch_size=32, seed=0, eval_every=30, eval_samples=32)
    first, last = r.history
    assert not last.exact and math.isnan(last.valid_mass)
    assert 0 < last.forward_kl_se < last.forward_kl and 0 < last.reverse_kl_se
    assert last.forward_kl < first.forward_kl - 5 * (first.forward_kl_se + last.forward_kl_se)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="ppo"), "valid methods"),
        (dict(steps=-1), "steps"),
        (dict(lr=0.0), "lr"),
        (dict(device="tpu"), "device"),
        (dict(teacher="klingon"), "valid languages"),
        (dict(params={"beta": 2.0}, method="gkd"), "beta"),
    ],
)
def test_distill_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lm.distill(**{"steps": 1, **kwargs})


def test_resolve_device():
    assert lm.resolve_device("cpu").type == "cpu"
    assert lm.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_distill_prints_json_and_a_table(capsys):
    argv = ["distill", "--language", "cities", "--methods", "forward_kl,reverse_kl", "--steps", "60", "--seed", "0"]
    assert main(argv + ["--eval-every", "60", "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fwd, rev = out["methods"]["forward_kl"]["history"][-1], out["methods"]["reverse_kl"]["history"][-1]
    assert out["methods"]["reverse_kl"]["device"] == "cpu" and fwd["step"] == 60 and fwd["exact"]
    assert rev["validity"] > fwd["validity"] + 0.2 and fwd["mode_coverage"] > rev["mode_coverage"] + 0.3
    assert main(["distill", "--methods", "sft", "--steps", "2", "--eval-every", "2", "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "cities" in table and "validity" in table and table.splitlines()[-1].split()[:2] == ["sft", "2"]


@pytest.mark.parametrize(
    "argv",
    [
        ["distill", "--methods", "ppo"],
        ["distill", "--steps", "-3"],
        ["distill", "--language", "klingon"],
        ["distill", "--device", "tpu"],
        ["distill", "--steps", "ten"],
    ],
)
def test_cli_bad_flags_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kl-lab: error:")


# ---------------------------------------------------------------------------------------------
# real models: two tiny GPT-2s sharing the cities vocabulary (no download)
# ---------------------------------------------------------------------------------------------


def test_every_method_runs_on_hugging_face_gpt2_models():
    transformers = pytest.importorskip("transformers")
    lang = lm.get_language("cities")

    def gpt2(seed: int, n_embd: int) -> lm.HFCausalLM:
        config = transformers.GPT2Config(
            vocab_size=lang.vocab_size, n_positions=8, n_embd=n_embd, n_layer=1, n_head=2, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
        )  # fmt: skip
        with torch.random.fork_rng(devices=[]):  # transformers initialises from the global RNG: contain it
            torch.manual_seed(seed)
            return lm.wrap_hf(transformers.GPT2LMHeadModel(config))

    teacher, student = gpt2(0, 32), gpt2(1, 16)
    with torch.no_grad():  # a peaked teacher, so that there is something to learn
        teacher.model.lm_head.weight.mul_(30.0)
    prompts = lang.prompt_ids
    x = lm.generate(teacher, prompts, 3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (6, 4)
    for method in lm.METHODS:
        r = lm.distill(
            teacher, student, method, prompts=prompts, length=3, language=lang, steps=12, batch_size=16, lr=1e-2,
            seed=0, eval_every=12, device="cpu",
        )  # fmt: skip
        first, last = r.history
        assert first.exact and r.steps == 12 and r.student_config is None and r.student_state
        assert last.objective < first.objective, method
    # the student passed in is not modified (distill trains a copy)
    before = lm.evaluate(teacher, student, prompts=prompts, length=3, seed=0)
    assert before.forward_kl == pytest.approx(r.history[0].forward_kl, rel=1e-6)
