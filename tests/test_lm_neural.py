"""The neural teacher (kl_core.lm.neural): shipped weights reproduce their stored KL, load weights-only, distil.

Oracle: brute-force enumeration of every answer of every prompt, scored with
``sequence_log_prob`` (one forward pass per whole answer), independent of ``evaluate``'s prefix
tables: KL(p || q) = sum_i w_i sum_y p(y|x_i) (log p(y|x_i) - log q(y|x_i)).
"""

import json
import math

import pytest
import torch

from kl_core import lm
from kl_core.lm.evaluation import _base_digits
from kl_core.lm.neural import (
    ASSETS,
    NeuralTeacherInfo,
    load_neural_teacher,
    neural_config,
    neural_teacher_info,
    save_neural_teacher,
    shipped_neural_teachers,
    train_neural_teacher,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py


def all_answers(language: lm.Language) -> tuple[torch.Tensor, torch.Tensor]:
    """(N * V^L, P + L) every sequence, prompt by prompt, and (N * V^L,) the prompt index of each."""
    V, L, N = language.vocab_size, language.answer_length, language.n_prompts
    answers = _base_digits(V**L, V, L, torch.device("cpu"))  # (V^L, L)
    seqs = torch.cat([language.prompt_ids.repeat_interleave(V**L, 0), answers.repeat(N, 1)], 1)
    return seqs, torch.arange(N).repeat_interleave(V**L)


@torch.no_grad()
def brute_force_kl(p_model: torch.nn.Module, q_model: torch.nn.Module, language: lm.Language) -> float:
    seqs, prompt = all_answers(language)
    P = language.prompt_length
    lp = torch.cat([lm.sequence_log_prob(p_model, s, P).double() for s in seqs.split(8192)])
    lq = torch.cat([lm.sequence_log_prob(q_model, s, P).double() for s in seqs.split(8192)])
    per_prompt = torch.zeros(language.n_prompts, dtype=torch.float64).index_add_(0, prompt, lp.exp() * (lp - lq))
    return float(language.prompt_weights @ per_prompt)


@pytest.mark.parametrize("name", ["cities", "arithmetic"])
def test_shipped_teacher_reproduces_its_stored_kl(name):
    info = neural_teacher_info(name)
    model = load_neural_teacher(name)
    language = lm.get_language(name)
    exact = lm.SyntheticTeacher(language)
    fkl, rkl = brute_force_kl(exact, model, language), brute_force_kl(model, exact, language)
    assert fkl == pytest.approx(info.forward_kl, rel=1e-4, abs=1e-6)  # the number in the JSON, recomputed
    assert rkl == pytest.approx(info.reverse_kl, rel=1e-4, abs=1e-6)
    assert fkl < 0.03 and rkl < 0.03  # close to the formula: the students' KLs are 0.5-5 nats
    assert info.validity > 0.97 and info.mode_coverage == pytest.approx(1.0)
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert info.lm_config() == model.config == neural_config(name, n_embd=info.config["n_embd"])
    assert not model.training and not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", ["cities", "arithmetic"])
def test_shipped_weights_are_plain_tensors_under_a_megabyte(name):
    path = ASSETS / f"neural_{name}.pt"
    assert path.stat().st_size < 1_000_000
    state = torch.load(path, weights_only=True)  # would raise on anything but tensors and containers
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
    assert "lm_head.weight" not in state  # tied to the embedding: stored once
    raw = json.loads((ASSETS / f"neural_{name}.json").read_text())
    assert raw["language"] == name and raw["steps"] > 0 and math.isfinite(raw["forward_kl"])
    assert set(shipped_neural_teachers()) >= {"cities", "arithmetic"}


class _Payload:  # a pickled object that is not a tensor: weights_only loading must refuse it
    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_refuses_pickled_code(tmp_path):
    info = neural_teacher_info("cities")
    (tmp_path / "neural_cities.json").write_text(json.dumps(info.__dict__))
    torch.save({"wte.weight": _Payload()}, tmp_path / "neural_cities.pt")
    with pytest.raises(ValueError, match="weights_only"):
        load_neural_teacher("cities", tmp_path)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: load_neural_teacher("stories"), "no neural teacher for 'stories'"),
        (lambda: load_neural_teacher("../cities"), "name must be"),
        (lambda: train_neural_teacher("cities", lm.LMConfig(vocab_size=5), steps=3), "vocab_size must be 19"),
        (lambda: train_neural_teacher("klingon"), "unknown language"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_train_save_load_round_trip(tmp_path):
    config = neural_config("cities", n_layer=1, n_embd=16, n_head=2)
    model, info = train_neural_teacher("cities", config, steps=6, seed=3, batch_size=32)
    assert isinstance(info, NeuralTeacherInfo) and info.steps == 6 and info.seed == 3
    save_neural_teacher(model, info, tmp_path)
    loaded = load_neural_teacher("cities", tmp_path)
    ids = lm.get_language("cities").prompt_ids
    torch.testing.assert_close(loaded(ids), model(ids), rtol=0, atol=0)
    assert neural_teacher_info("cities", tmp_path) == info
    # the info's KL was measured on these very weights (oracle: brute force)
    language = lm.get_language("cities")
    assert brute_force_kl(lm.SyntheticTeacher(language), loaded, language) == pytest.approx(info.forward_kl, rel=1e-4)
    again, _ = train_neural_teacher("cities", config, steps=6, seed=3, batch_size=32)  # seeded: the same weights
    torch.testing.assert_close(again(ids), model(ids), rtol=0, atol=0)


def test_distill_takes_the_neural_teacher_as_a_module():
    language = lm.get_language("cities")
    teacher = load_neural_teacher("cities")
    student = lm.default_student(language.vocab_size)
    result = lm.distill(teacher, student, "reverse_kl", steps=5, eval_every=5, seed=0, device="cpu", language=language)
    assert result.steps == 5 and result.language == "cities" and len(result.history) == 2
    # step 0 is the fresh student: its exact KLs are against the *neural* teacher (oracle: brute force)
    fresh = lm.TinyLM(student, seed=0)
    assert result.history[0].forward_kl == pytest.approx(brute_force_kl(teacher, fresh, language), rel=1e-5)
    assert result.history[0].reverse_kl == pytest.approx(brute_force_kl(fresh, teacher, language), rel=1e-5)
    assert set(result.sample_mode_name) <= {"invalid", *(n for i in range(6) for n in language.mode_names(i))}
