"""Your own models: tiny GPT-2 checkpoints built from configs, a local word-level tokenizer, the CLI and metrics."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from kl_core import cli  # noqa: E402
from kl_core.lm.evaluation import evaluate  # noqa: E402
from kl_core.lm.hf import load_pair, read_prompts  # noqa: E402
from kl_core.lm.hf_distill import compare_hf, final_rows, verdict  # noqa: E402
from kl_core.lm.methods import METHODS  # noqa: E402
from kl_core.lm.open_eval import evaluate_open  # noqa: E402
from kl_core.viz.lm_own import OWN_PANELS, own_metrics_figure  # noqa: E402

WORDS = ["<unk>", "the", "cat", "dog", "sat", "ran", "on", "mat", "far", "."]


def make_tokenizer(words=WORDS):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def make_model(path: Path, *, vocab: int = len(WORDS), n_embd: int = 16, n_layer: int = 1, seed: int = 0,
               n_positions: int = 12, tokenizer=True, init: float = 0.02):  # fmt: skip
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=2,
                     bos_token_id=0, eos_token_id=0, initializer_range=init)  # fmt: skip
    GPT2LMHeadModel(cfg).save_pretrained(str(path))
    if tokenizer:
        make_tokenizer(WORDS if vocab == len(WORDS) else [*WORDS, *(f"w{i}" for i in range(vocab - len(WORDS)))]
                       ).save_pretrained(str(path))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    make_model(root / "teacher", n_embd=32, seed=1, init=0.5)  # peaked next-token distributions
    make_model(root / "student", n_embd=16, seed=2, tokenizer=False)
    (root / "prompts.txt").write_text("the cat\nthe dog sat\n\nthe cat\n")
    (root / "prompts.jsonl").write_text('{"prompt": "the dog"}\n{"prompt": "a cat ran"}\n')
    return root


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``kl-lab ARGV`` in this process (the subprocess path is tests/test_cli.py's): status, stdout, stderr."""
    capsys.readouterr()
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_prompts_grouped_by_length(ckpt, torch_one_thread):
    pair = load_pair(ckpt / "teacher", ckpt / "student")
    groups = read_prompts(ckpt / "prompts.txt", pair.tokenizer, context=pair.context, length=3)
    assert groups.texts == ("the cat", "the dog sat", "the cat")
    assert [tuple(g.shape) for g in groups.groups] == [(2, 2), (1, 3)]
    assert groups.index == ((0, 2), (1,))
    jsonl = read_prompts(ckpt / "prompts.jsonl", pair.tokenizer, context=pair.context, length=3)
    assert jsonl.texts == ("the dog", "a cat ran") and jsonl.groups[0].tolist() == [[1, 3]]
    assert pair.vocab_size == len(WORDS) and pair.context == 12


def test_every_method_runs_with_finite_metrics(ckpt, torch_one_thread):
    pair = load_pair(ckpt / "teacher", ckpt / "student")
    groups = read_prompts(ckpt / "prompts.txt", pair.tokenizer, context=pair.context, length=3)
    before = {k: v.clone() for k, v in pair.student.state_dict().items()}
    results = compare_hf(pair, groups, list(METHODS), length=3, steps=3, batch_size=4, seed=0, eval_every=3,
                         eval_samples=4, lr=1e-2)  # fmt: skip
    assert list(results) == list(METHODS)
    for name, r in results.items():
        assert r.steps == 3 and len(r.history) == 2 and r.loss.shape == (3,)
        assert np.isfinite(r.loss).all(), name
        f = r.final
        for k in ("forward_kl", "forward_kl_se", "reverse_kl", "reverse_kl_se", "teacher_loglik", "validity",
                  "valid_threshold", "distinct", "ngram_diversity", "entropy"):  # fmt: skip
            assert math.isfinite(getattr(f, k)), (name, k)
        assert f.forward_kl >= 0 and f.reverse_kl >= 0 and 0 <= f.validity <= 1 and 0 < f.distinct <= 1
        on_policy = METHODS[name].objective(r.params).lam > 0
        assert math.isfinite(f.reward) == on_policy, name
        assert len(r.sample_text) == 3 * 4 and all(len(t.split()) == 3 for t in r.sample_text)
        assert any(not torch.equal(before["model." + k], v) for k, v in r.student.state_dict().items()), name
    # the sentence names the best methods by the numbers it quotes
    text = verdict(results)
    finals = {n: r.final for n, r in results.items()}
    best_valid = max(finals.values(), key=lambda f: f.validity).validity
    valid_name = text.split("Most valid answers: ")[1].split(" (")[0]
    assert finals[valid_name].validity == best_valid and f"{best_valid:.0%} of its samples" in text
    diverse_name = text.split("Most diverse: ")[1].split(" (")[0]
    assert finals[diverse_name].ngram_diversity == max(f.ngram_diversity for f in finals.values())
    closest = text.split("Lowest reverse KL: ")[1].split(" (")[0]
    assert f"({finals[closest].reverse_kl:.3f} ± {finals[closest].reverse_kl_se:.3f} nats)" in text
    assert finals[closest].reverse_kl == min(f.reverse_kl for f in finals.values())
    fig = own_metrics_figure({n: [e.as_dict() for e in r.history] for n, r in results.items()})
    trace = next(t for t in fig.data if t.meta["method"] == "gkd" and t.meta["metric"] == "reverse_kl")
    assert list(trace.y) == [e.reverse_kl for e in results["gkd"].history]
    assert list(trace.error_y.array) == [e.reverse_kl_se for e in results["gkd"].history]
    rows = final_rows(results)
    assert [r["method"] for r in rows] == list(METHODS) and rows[0]["validity"] == finals[rows[0]["method"]].validity
    # the student given is not trained in place
    assert all(torch.equal(before[k], v) for k, v in pair.student.state_dict().items())


def exact_sequence_kls(teacher, student, prompts, length, vocab):
    """Sequence-level KL(T||S), KL(S||T) by listing every answer (test oracle, independent of evaluate)."""
    import itertools

    fkl = rkl = 0.0
    for prompt in prompts:
        answers = torch.tensor(list(itertools.product(range(vocab), repeat=length)))
        x = torch.cat([prompt.expand(len(answers), -1), answers], 1)
        with torch.no_grad():
            lt = torch.log_softmax(teacher(x[:, :-1]).double(), -1)[:, prompt.numel() - 1 :]
            ls = torch.log_softmax(student(x[:, :-1]).double(), -1)[:, prompt.numel() - 1 :]
        st = lt.gather(-1, answers[..., None]).squeeze(-1).sum(-1)
        ss = ls.gather(-1, answers[..., None]).squeeze(-1).sum(-1)
        fkl += float((st.exp() * (st - ss)).sum())
        rkl += float((ss.exp() * (ss - st)).sum())
    return fkl / len(prompts), rkl / len(prompts)


def test_monte_carlo_metrics_agree_with_enumeration(ckpt, torch_one_thread):
    pair = load_pair(ckpt / "teacher", ckpt / "student")
    groups = read_prompts(ckpt / "prompts.txt", pair.tokenizer, context=pair.context, length=2)
    fkl, rkl = exact_sequence_kls(pair.teacher, pair.student, groups.groups[0], 2, pair.vocab_size)
    ev = evaluate_open(pair.teacher, pair.student, groups.groups[:1], 2, n_samples=400, seed=3)
    assert ev.forward_kl_se > 0 and ev.reverse_kl_se > 0
    assert abs(ev.forward_kl - fkl) < 4 * ev.forward_kl_se, (ev.forward_kl, ev.forward_kl_se, fkl)
    assert abs(ev.reverse_kl - rkl) < 4 * ev.reverse_kl_se, (ev.reverse_kl, ev.reverse_kl_se, rkl)
    assert fkl > 0.5 and rkl > 0.5  # a test that could fail: the models differ
    # the lab's exact path (kl_core.lm.evaluation, enumeration) gives the same numbers as the oracle
    exact = evaluate(pair.teacher, pair.student, prompts=groups.groups[0], length=2, exact=True, n_samples=2)
    assert exact.forward_kl == pytest.approx(fkl, rel=1e-6) and exact.reverse_kl == pytest.approx(rkl, rel=1e-6)
    # on-policy reward per token = -reverse KL / L in expectation
    ev = evaluate_open(pair.teacher, pair.student, groups.groups[:1], 2, n_samples=400, seed=4, reward=True)
    assert abs(ev.reward + rkl / 2) < 4 * ev.reward_se + 1e-9
    # the teacher scored against itself: KL 0, and about 95% of its answers pass its own 5% quantile
    same = evaluate_open(pair.teacher, pair.teacher, groups.groups, 2, n_samples=200, seed=5)
    assert same.forward_kl == pytest.approx(0, abs=1e-9) and same.reverse_kl == pytest.approx(0, abs=1e-9)
    assert abs(same.validity - 0.95) < 0.05, same.validity
    # a student far from the teacher (the untrained one, near uniform) passes much less often
    far = evaluate_open(pair.teacher, pair.student, groups.groups, 2, n_samples=200, seed=5)
    assert far.validity < 0.8 and far.teacher_loglik < same.teacher_loglik


def test_diversity_metrics_on_known_samples():
    from kl_core.lm.open_eval import _ngram_share

    assert _ngram_share(np.array([[1, 2, 3], [1, 2, 3]]), 2) == pytest.approx(2 / 4)
    assert _ngram_share(np.array([[1, 2, 3], [3, 2, 1]]), 2) == pytest.approx(1.0)
    assert _ngram_share(np.array([[5], [5], [6]]), 1) == pytest.approx(2 / 3)


def test_cli_json_and_out(ckpt, tmp_path, capsys, torch_one_thread):
    out = tmp_path / "students"
    rc, stdout, stderr = run_cli(
        capsys,
        "distill", "--teacher", str(ckpt / "teacher"), "--student", str(ckpt / "student"), "--prompts",
        str(ckpt / "prompts.jsonl"), "--methods", "sft,on_policy_sampled", "--steps", "2", "--eval-every", "1",
        "--batch-size", "4", "--length", "3", "--eval-samples", "4", "--out", str(out), "--json",
    )  # fmt: skip
    assert rc == 0, stderr
    data = json.loads(stdout)
    assert set(data["methods"]) == {"sft", "on_policy_sampled"}
    for name, m in data["methods"].items():
        assert [e["step"] for e in m["history"]] == [0, 1, 2]
        assert all(math.isfinite(e["reverse_kl"]) and e["exact"] is False for e in m["history"])
        assert (m["history"][-1]["reward"] is None) == (name == "sft")
        assert m["device"] == "cpu" and m["tokens_per_s"] > 0
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(str(out / "sft"), local_files_only=True)
    assert saved.config.n_embd == 16 and (out / "sft" / "tokenizer.json").is_file()
    rc, stdout, stderr = run_cli(
        capsys,
        "distill", "--teacher", str(ckpt / "teacher"), "--student", str(ckpt / "student"), "--prompts",
        str(ckpt / "prompts.txt"), "--steps", "1", "--batch-size", "2", "--length", "2", "--eval-samples", "2",
    )  # fmt: skip
    assert rc == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].startswith("your models: 3 prompt(s), answers of 2 tokens; seed 0, device cpu")
    assert lines[1].split()[:4] == ["method", "steps", "forward_kl", "reverse_kl"]
    assert [ln.split()[0] for ln in lines[3:5]] == ["forward_kl", "reverse_kl"]
    assert lines[5].startswith("Most valid answers: ") and len(lines) == 6


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_dir", "--teacher: "),
        ("vocab_tokenizer", "mismatched vocabularies: the teacher's tokenizer has 10 tokens, the student's 12"),
        ("vocab_models", "mismatched vocabularies: the teacher predicts 10 tokens, the student 12"),
        ("empty", "--prompts: the file holds no prompt"),
        ("too_long", "--prompts: line 2 is 11 tokens long; with --length 3 it needs 14 positions"),
        ("bad_json", "--prompts: line 1 is not valid JSON"),
        ("no_prompts", "--prompts: "),
        ("partial", "missing --prompts"),
        ("language", "--language applies to the synthetic languages only"),
    ],
)
def test_cli_errors_are_one_line(ckpt, tmp_path, capsys, case, expected):
    teacher, student, prompts = ckpt / "teacher", ckpt / "student", ckpt / "prompts.txt"
    extra: list[str] = []
    if case == "missing_dir":
        teacher = tmp_path / "nope"
    elif case == "vocab_tokenizer":
        student = make_model(tmp_path / "s12", vocab=12)
    elif case == "vocab_models":
        student = make_model(tmp_path / "s12", vocab=12, tokenizer=False)
    elif case == "empty":
        prompts = tmp_path / "p.txt"
        prompts.write_text("\n  \n")
    elif case == "too_long":
        prompts = tmp_path / "p.txt"
        prompts.write_text("the cat\n" + "the cat sat on the mat the dog ran far .\n")
    elif case == "bad_json":
        prompts = tmp_path / "p.jsonl"
        prompts.write_text('{"prompt": "the cat"\n')
    elif case == "no_prompts":
        prompts = tmp_path / "absent.txt"
    elif case == "language":
        extra = ["--language", "cities"]
    argv = ["distill", "--teacher", str(teacher), "--student", str(student), "--length", "3", *extra]
    if case != "partial":
        argv += ["--prompts", str(prompts)]
    rc, stdout, stderr = run_cli(capsys, *argv)
    assert rc == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("kl-lab: error: ") and expected in stderr, stderr


# -- the page's "Your own models" section (AppTest on the section alone; app/views/lm.py calls it in one line) --

SECTION = """
import sys
sys.path.insert(0, {root!r})
from app import lm_own_models
lm_own_models.section()
"""


def section_app(monkeypatch, on: bool):
    from streamlit.testing.v1 import AppTest

    root = str(Path(__file__).resolve().parents[1])
    if on:
        monkeypatch.setenv("KL_LAB_LOCAL_MODELS", "1")
    else:
        monkeypatch.delenv("KL_LAB_LOCAL_MODELS", raising=False)
    return AppTest.from_string(SECTION.format(root=root), default_timeout=120)


def test_page_section_is_off_by_default(monkeypatch):
    at = section_app(monkeypatch, on=False).run()
    assert not at.exception
    assert len(at.text_input) == 0 and len(at.button) == 0
    assert "KL_LAB_LOCAL_MODELS=1 streamlit run app/main.py" in at.caption[0].value
    page = (Path(__file__).resolve().parents[1] / "app" / "views" / "lm.py").read_text()
    assert "\nlm_own_models.section()" in page


def test_page_section_runs_and_escapes_hostile_paths(monkeypatch, ckpt, tmp_path, torch_one_thread):
    from app.lm_own_models import md_escape
    from kl_core.cli_args import short

    at = section_app(monkeypatch, on=True).run()
    assert not at.exception
    hostile = "**bold** <img src=x onerror=alert(1)> [a](javascript:x) $x$"
    at.text_input(key="lm_own_teacher").set_value(hostile)
    at.text_input(key="lm_own_student").set_value(str(ckpt / "student"))
    at.text_input(key="lm_own_prompts").set_value(str(ckpt / "prompts.txt"))
    at.button(key="lm_own_run").click().run()
    assert not at.exception and len(at.error) == 1
    shown = at.error[0].value
    assert shown.startswith("Teacher folder\\: ") and md_escape(short(hostile, 60), 300) in shown
    assert re.search(r"(?<!\\)[<>*\[\]()$]", shown) is None  # every Markdown/HTML character escaped
    at.text_input(key="lm_own_teacher").set_value(str(ckpt / "teacher"))
    at.number_input(key="lm_own_steps").set_value(2)
    at.number_input(key="lm_own_length").set_value(2)
    at.number_input(key="lm_own_batch_size").set_value(2)
    at.button(key="lm_own_run").click().run()
    assert not at.exception and len(at.error) == 0
    table = at.dataframe[0].value  # the final table (then the history, then the samples)
    assert list(table["method"]) == ["forward_kl", "reverse_kl"]
    assert all(np.isfinite(table[c]).all() for c in ("forward_kl", "reverse_kl", "validity", "ngram_diversity"))
    assert at.markdown[0].value.startswith("Most valid answers\\: ")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    traces = [t for t in spec["data"] if t.get("meta", {}).get("role") == "metric"]
    assert {(t["meta"]["method"], t["meta"]["metric"]) for t in traces} == {
        (m, k) for m in ("forward_kl", "reverse_kl") for k, _ in OWN_PANELS
    }
    # an empty prompt file: the library's one-line message, escaped
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    at.text_input(key="lm_own_prompts").set_value(str(empty))
    at.button(key="lm_own_run").click().run()
    assert len(at.error) == 1 and "the file holds no prompt" in at.error[0].value
