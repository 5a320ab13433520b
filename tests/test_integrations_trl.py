"""kl_core.integrations.trl: TRL's GKDTrainer and DistillationTrainer with kl_core losses, on tiny GPT-2s.

Oracles: TRL 1.16.0's own ``GKDTrainer.compute_loss`` and ``DistillationTrainer`` (same models, same batch or the
same seeded generations); the unfused ``token_divergence`` for the fused path; the full batch's gradient for
gradient accumulation.
"""

from __future__ import annotations

import copy
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")
pytest.importorskip("tokenizers")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from datasets import Dataset  # noqa: E402
from spec_tools import TOKEN_KIND_PARAMS  # noqa: E402
from test_lm_hf import WORDS, make_tokenizer  # noqa: E402
from trl.experimental.gkd import GKDConfig, GKDTrainer  # noqa: E402

import kl_core.integrations.trl as kl_trl  # noqa: E402
from kl_core.integrations.trl import KLDistillationTrainer, KLGKDTrainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPT = 3  # prompt tokens per row; the rest is the completion


def gpt(seed: int, init: float = 0.02):
    """A 2-layer GPT-2 (n_embd 32) over the 10-word vocabulary, built from its config (no download)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(WORDS), n_positions=16, n_embd=32, n_layer=2, n_head=2, bos_token_id=0,
                     eos_token_id=9, pad_token_id=0, initializer_range=init)  # fmt: skip
    return GPT2LMHeadModel(cfg)


def pair():
    """(student, teacher): the teacher's larger initial weights give peaked next-token distributions."""
    return gpt(0), gpt(1, init=0.5)


@pytest.fixture(scope="module", autouse=True)
def frozen_gc():
    """Trainer.train() ends with gc.collect() (accelerate's free_memory): over the frozen imports it is ~50x faster."""
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="module")
def tokenizer():
    tok = make_tokenizer()
    tok.pad_token, tok.eos_token = "<unk>", "."
    tok.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tok


def rows(n: int = 4, length: int = 8, seed: int = 0) -> list[dict]:
    """Pre-tokenized rows: a prompt of 3 tokens (labels -100), a completion, the last row right-padded by 2."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, len(WORDS), (n, length), generator=gen)
    out = []
    for i, r in enumerate(ids.tolist()):
        pad = 2 if i == n - 1 else 0
        attention = [1] * (length - pad) + [0] * pad
        labels = [-100] * PROMPT + r[PROMPT : length - pad] + [-100] * pad
        out.append({"input_ids": r, "attention_mask": attention, "labels": labels, "prompts": r[:PROMPT],
                    "prompt_attention_mask": [1] * PROMPT})  # fmt: skip
    return out


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor([x[k] for x in batch]) for k in batch[0]}


def gkd_config(tmp_path, **kw) -> GKDConfig:
    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, max_steps=3, lmbda=0.0,
                report_to=[], save_strategy="no", use_cpu=True, bf16=False, learning_rate=5e-3,
                lr_scheduler_type="constant", logging_steps=1, disable_tqdm=True, max_new_tokens=3, seed=0)  # fmt: skip
    return GKDConfig(**{**base, **kw})


def gkd(cls, tmp_path, tokenizer, models=None, data=None, **kw):
    """A GKD trainer (TRL's or ours) on the tiny pair and rows, off-policy unless ``lmbda`` is given."""
    student, teacher = models or pair()
    config = {k: kw.pop(k) for k in list(kw) if k in GKDConfig.__dataclass_fields__}
    return cls(model=student, teacher_model=teacher, args=gkd_config(tmp_path, **config),
               train_dataset=Dataset.from_list(data or rows()), data_collator=collate, processing_class=tokenizer,
               **kw)  # fmt: skip


def grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def assert_grads_close(a: list[torch.Tensor], b: list[torch.Tensor], rtol: float) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert float((x - y).norm()) <= rtol * float(y.norm()) + 1e-12


# -- (a) the default loss is TRL's -------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_loss_equals_trls_gkd_loss(beta, tmp_path, tokenizer, torch_one_thread):
    """kl_kind="jsd" (beta from args.beta) is TRL's GKD loss: value and gradient, with and without num_items."""
    models = pair()
    theirs = gkd(GKDTrainer, tmp_path, tokenizer, models=models, beta=beta)
    ours = gkd(KLGKDTrainer, tmp_path, tokenizer, models=models, beta=beta, kl_kind="jsd")
    assert ours.kl_params == {"beta": beta}
    batch = collate(rows())
    count = torch.tensor(int((batch["labels"][:, 1:] != -100).sum()))
    for items in (None, count + 5):  # + 5: as if other micro-batches of the accumulated batch counted too
        student = models[0]
        student.zero_grad()
        trl_loss = theirs.compute_loss(student, dict(batch), num_items_in_batch=items)
        trl_loss.backward()
        trl_grads = grads(student)
        student.zero_grad()
        loss = ours.compute_loss(student, dict(batch), num_items_in_batch=items)
        loss.backward()
        assert float(trl_loss.detach()) > 1e-3
        assert float(loss.detach()) == pytest.approx(float(trl_loss.detach()), rel=1e-6)
        assert_grads_close(grads(student), trl_grads, rtol=1e-5)


def test_first_logged_training_loss_equals_trls(tmp_path, tokenizer, torch_one_thread):
    """Trainer.train() end to end, one step, beta = 0.5: the logged loss is TRL's to 1e-6."""
    student, teacher = pair()
    logged = []
    for cls in (GKDTrainer, KLGKDTrainer):
        trainer = gkd(cls, tmp_path, tokenizer, models=(copy.deepcopy(student), teacher), beta=0.5, max_steps=1)
        trainer.train()
        logged.append(trainer.state.log_history[0]["loss"])
    assert logged[1] == pytest.approx(logged[0], rel=1e-6)


# -- (b) training lowers the loss, every kind ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TOKEN_KIND_PARAMS))
def test_a_few_steps_lower_the_loss(kind, tmp_path, tokenizer, torch_one_thread):
    trainer = gkd(KLGKDTrainer, tmp_path, tokenizer, kl_kind=kind, kl_params=TOKEN_KIND_PARAMS[kind], max_steps=4)
    batch = collate(rows())
    with torch.no_grad():
        before = float(trainer.compute_loss(trainer.model, dict(batch)))
    trainer.train()
    with torch.no_grad():
        after = float(trainer.compute_loss(trainer.model, dict(batch)))
    assert trainer.state.global_step == 4
    assert 0.0 < after < 0.95 * before, (kind, before, after)


# -- (c) the fused path -------------------------------------------------------------------------------------------


@pytest.fixture
def spies(monkeypatch):
    """Counts of the fused and unfused loss calls made by the integration."""
    calls = {"fused": 0, "unfused": 0}

    def wrap(name, key):
        real = getattr(kl_trl, name)

        def spy(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(kl_trl, name, spy)

    wrap("fused_token_divergence", "fused")
    wrap("token_divergence", "unfused")
    return calls


@pytest.mark.parametrize("kind", list(TOKEN_KIND_PARAMS))
def test_fused_path_is_used_and_equals_the_unfused(kind, spies, tmp_path, tokenizer, torch_one_thread):
    models = pair()
    kw = dict(models=models, kl_kind=kind, kl_params=TOKEN_KIND_PARAMS[kind])
    fused = gkd(KLGKDTrainer, tmp_path, tokenizer, **kw)
    unfused = gkd(KLGKDTrainer, tmp_path, tokenizer, kl_fused=False, **kw)
    batch = collate(rows())
    student = models[0]
    values, gradients = [], []
    for trainer, expected in ((fused, {"fused": 1, "unfused": 0}), (unfused, {"fused": 1, "unfused": 1})):
        student.zero_grad()
        loss = trainer.compute_loss(student, dict(batch))
        loss.backward()
        assert spies == expected
        values.append(float(loss))
        gradients.append(grads(student))
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    assert_grads_close(gradients[0], gradients[1], rtol=1e-5)


def test_no_head_or_postprocessed_logits_fall_back_to_the_logits(spies, tmp_path, tokenizer, torch_one_thread):
    """Without an nn.Linear head, or when the head's output is not the logits, the unfused loss runs (a warning)."""
    batch = collate(rows())
    plain = gkd(KLGKDTrainer, tmp_path, tokenizer, kl_fused=False)
    reference = float(plain.compute_loss(plain.model, dict(batch)))

    student, teacher = pair()
    teacher.get_output_embeddings = lambda: None
    trainer = gkd(KLGKDTrainer, tmp_path, tokenizer, models=(student, teacher))
    with pytest.warns(UserWarning, match="not an nn.Linear"):
        loss = trainer.compute_loss(student, dict(batch))
    assert float(loss) == pytest.approx(reference, rel=1e-6) and spies["fused"] == 0 and not trainer.kl_fused

    student, teacher = pair()
    student.lm_head.register_forward_hook(lambda module, args, out: 2.0 * out)  # logits = 2 (h W^T)
    trainer = gkd(KLGKDTrainer, tmp_path, tokenizer, models=(student, teacher))
    with pytest.warns(UserWarning, match="not its head's output"):
        loss = trainer.compute_loss(student, dict(batch))
    doubled = gkd(KLGKDTrainer, tmp_path, tokenizer, models=(student, teacher), kl_fused=False)
    assert float(loss) == pytest.approx(float(doubled.compute_loss(student, dict(batch))), rel=1e-6)
    assert float(loss) != pytest.approx(reference, rel=1e-3) and spies["fused"] == 0


def test_bf16_mixed_precision_keeps_the_fused_path(spies, tmp_path, tokenizer, torch_one_thread, recwarn):
    """TRL's default bf16=True: the head check runs at the models' precision, so the fused loss is kept.

    Its projection is float32 while TRL's logits come from a bf16 matmul: the first logged losses agree to the
    bf16 rounding of the logits (here 1e-4), not to float32's.
    """
    student, teacher = pair()
    logged = []
    for cls in (GKDTrainer, KLGKDTrainer):
        trainer = gkd(cls, tmp_path, tokenizer, models=(copy.deepcopy(student), teacher), beta=1.0, max_steps=1,
                      bf16=True)  # fmt: skip
        trainer.train()
        logged.append(trainer.state.log_history[0]["loss"])
    assert spies == {"fused": 1, "unfused": 0} and trainer.kl_fused
    assert not [w for w in recwarn if "not fused" in str(w.message)]
    assert logged[1] == pytest.approx(logged[0], rel=1e-2)


# -- gradient accumulation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_micro_batches_with_num_items_add_up_to_the_full_batch(fused, tmp_path, tokenizer, torch_one_thread):
    models = pair()
    trainer = gkd(KLGKDTrainer, tmp_path, tokenizer, models=models, kl_kind="reverse_kl", kl_fused=fused)
    student = models[0]
    data = rows()
    full = collate(data)
    student.zero_grad()
    trainer.compute_loss(student, dict(full)).backward()  # the full batch, mean over its counted tokens
    reference = grads(student)
    count = torch.tensor(int((full["labels"][:, 1:] != -100).sum()))
    student.zero_grad()
    for micro in (data[:1], data[1:]):  # unequal counts: a plain mean of the two means would differ
        trainer.compute_loss(student, collate(micro), num_items_in_batch=count).backward()
    assert_grads_close(grads(student), reference, rtol=1e-5)
    zero = trainer.compute_loss(student, collate(data[:1]), num_items_in_batch=torch.tensor(0))
    assert torch.isfinite(zero)  # a count of 0 (nothing counted anywhere) is clamped to 1, never 0 / 0


def test_a_global_count_on_two_processes_doubles_the_loss(monkeypatch, tmp_path, tokenizer, torch_one_thread):
    """average_tokens_across_devices: the count is global, so the loss is x num_processes (as Trainer.compute_loss)."""
    import accelerate

    trainer = gkd(KLGKDTrainer, tmp_path, tokenizer, kl_kind="forward_kl")
    batch, count = collate(rows()), torch.tensor(40)
    with torch.no_grad():
        one = float(trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=count))
        monkeypatch.setattr(accelerate.Accelerator, "num_processes", property(lambda self: 2))
        two = float(trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=count))
        trainer.args.average_tokens_across_devices = False  # the count is then per process: no factor
        off = float(trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=count))
    assert two == pytest.approx(2 * one, rel=1e-7) and off == pytest.approx(one, rel=1e-7)


# -- the on-policy paths: GKD's lmbda / seq_kd and TRL's DistillationTrainer ---------------------------------------


@pytest.mark.parametrize("on_policy", [{"lmbda": 1.0}, {"lmbda": 0.0, "seq_kd": True}], ids=["lmbda", "seq_kd"])
def test_on_policy_and_seq_kd_steps_run_trls_generation(on_policy, spies, tmp_path, tokenizer, torch_one_thread):
    """TRL's training_step generates (student: lmbda; teacher: seq_kd), then our loss runs, fused, on its output."""
    trainer = gkd(KLGKDTrainer, tmp_path, tokenizer, kl_kind="alpha", kl_params={"alpha": 0.5}, max_steps=1,
                  **on_policy)  # fmt: skip
    generated = []
    trl_generate = trainer.generate_on_policy_outputs
    trainer.generate_on_policy_outputs = lambda *a, **k: generated.append(trl_generate(*a, **k)) or generated[-1]
    trainer.train()
    assert len(generated) == 1 and trainer.state.global_step == 1
    assert generated[0][0].shape[1] > PROMPT  # the prompt and new tokens
    assert spies == {"fused": 1, "unfused": 0}
    assert 0.0 < trainer.state.log_history[0]["loss"] < float("inf")


def distillation(cls, tmp_path, tokenizer, models, **kw):
    from trl import DistillationConfig

    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "left"
    config = DistillationConfig(output_dir=str(tmp_path / "dist"), per_device_train_batch_size=2, max_steps=1,
                                report_to=[], save_strategy="no", use_cpu=True, bf16=False, logging_steps=1,
                                gradient_checkpointing=False, disable_tqdm=True, max_completion_length=4,
                                learning_rate=1e-2, beta=0.5, seed=0)  # fmt: skip
    data = Dataset.from_list([{"prompt": p} for p in ("the cat", "the dog sat", "a cat ran", "the mat")])
    return cls(model=models[0], teacher_model=models[1], args=config, train_dataset=data, processing_class=tokenizer,
               **kw)  # fmt: skip


@pytest.mark.parametrize("softcap", [None, 3.0], ids=["plain", "softcapped"])
def test_distillation_trainer_step_equals_trls(softcap, spies, tmp_path, tokenizer, torch_one_thread):
    """One on-policy step (same seed, so the same generations): TRL's loss and entropy for jsd, fused or not.

    ``softcap``: a config's final_logit_softcapping, which TRL reads and passes on; the loss then builds the
    counted positions' logits (soft-capped as TRL's kernel does them).
    """
    student, teacher = pair()
    for model in (student, teacher):
        model.config.final_logit_softcapping = softcap
    logs = []
    runs = ((kl_trl.DistillationTrainer, {}), (KLDistillationTrainer, {"kl_kind": "jsd"}),
            (KLDistillationTrainer, {"kl_kind": "jsd", "kl_fused": False}))  # fmt: skip
    for cls, kw in runs:
        trainer = distillation(cls, tmp_path, tokenizer, (copy.deepcopy(student), teacher), **kw)
        trainer.train()
        logs.append(trainer.state.log_history[0])
    assert spies == ({"fused": 1, "unfused": 1} if softcap is None else {"fused": 0, "unfused": 2})
    for ours in logs[1:]:
        assert ours["num_tokens"] == logs[0]["num_tokens"]  # the same generations
        assert ours["loss"] == pytest.approx(logs[0]["loss"], rel=1e-5)
        assert ours["entropy"] == pytest.approx(logs[0]["entropy"], rel=1e-5)
    if softcap is None:
        trainer = distillation(KLDistillationTrainer, tmp_path, tokenizer, (student, teacher), kl_kind="tv")
        trainer.train()
        assert 0.0 < trainer.state.log_history[0]["loss"] <= 1.0  # total variation is in [0, 1]


# -- README, arguments, import ------------------------------------------------------------------------------------


def readme_block(marker: str) -> str:
    """The python block of the README's "Use it in your trainer" section that contains ``marker``."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use it in your trainer", 1)[1].split("\n## ", 1)[0]
    return next(b for b in re.findall(r"```python\n(.*?)```", section, re.S) if marker in b)


def test_readme_trl_snippet_trains(monkeypatch, spies, tmp_path, tokenizer, torch_one_thread):
    """The README's TRL block, run as written on a chat dataset (TRL's ChatML collator), 2 steps on CPU."""
    import trl.experimental.gkd as gkd_module

    def cpu_config(**kw):  # the machine's settings on top of the README's: CPU, 2 steps, nothing saved
        kw.update(output_dir=str(tmp_path / "readme"), max_steps=2, use_cpu=True, bf16=False, report_to=[],
                  save_strategy="no", disable_tqdm=True, max_new_tokens=3, per_device_train_batch_size=2)  # fmt: skip
        return GKDConfig(**kw)

    monkeypatch.setattr(gkd_module, "GKDConfig", cpu_config)
    student, teacher = pair()
    chat = [("the cat", "sat on the mat ."), ("the dog", "ran far ."), ("the mat", "the cat sat ."), ("a dog", "ran .")]
    dataset = Dataset.from_list(
        [{"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]} for u, a in chat]
    )
    scope = {"student": student, "teacher": teacher, "tokenizer": tokenizer, "dataset": dataset}
    exec(readme_block("KLGKDTrainer"), scope)
    trainer = scope["trainer"]
    assert isinstance(trainer, KLGKDTrainer) and trainer.state.global_step == 2
    assert spies["fused"] == 2 and spies["unfused"] == 0


class GradientRecorder:
    """An optimizer stand-in for the README's plain loop: ``step`` keeps the gradients, ``zero_grad`` clears them."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def step(self):
        self.seen.append(grads(self.model))

    def zero_grad(self):
        self.model.zero_grad()


def test_readme_plain_loop_and_accelerate_snippets(torch_one_thread):
    """Both blocks, run as written: their gradients are the full batch's unfused mean loss's (the oracle)."""
    from types import SimpleNamespace

    import accelerate

    import kl_core as kc

    student, teacher = (m.eval() for m in pair())  # no dropout: the gradients are comparable
    data = rows()
    full = collate(data)
    counted = full["labels"][:, 1:] != -100

    def oracle(kind, **params):
        student.zero_grad()
        with torch.no_grad():
            t = teacher(full["input_ids"]).logits[:, :-1]
        s = student(full["input_ids"]).logits[:, :-1]
        kc.token_divergence(t, s, kind, mask=counted, reduction="mean", **params).backward()
        return grads(student)

    optimizer = GradientRecorder(student)
    loader = [SimpleNamespace(input_ids=full["input_ids"], labels=full["labels"])]
    scope = {"kc": kc, "torch": torch, "student": student, "teacher": teacher, "loader": loader, "optimizer": optimizer}
    exec(readme_block("for batch in loader"), scope)
    assert len(optimizer.seen) == 1
    assert_grads_close(optimizer.seen[0], oracle("reverse_kl"), rtol=1e-5)

    micro = [SimpleNamespace(**{k: v for k, v in collate(m).items() if k in ("input_ids", "labels")})
             for m in (data[:1], data[1:])]  # fmt: skip
    student.zero_grad()
    accelerator = accelerate.Accelerator(cpu=True)
    scope = {"kc": kc, "torch": torch, "student": student, "teacher": teacher, "micro_batches": micro,
             "accelerator": accelerator}  # fmt: skip
    exec(readme_block("accelerator.accumulate"), scope)
    assert_grads_close(grads(student), oracle("jsd_scaled", beta=0.9), rtol=1e-5)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"kl_kind": "kl"}, "unknown divergence kind 'kl'"),
        ({"kl_kind": "alpha", "kl_params": {"beta": 0.5}}, "alpha: unknown parameter"),
        ({"kl_kind": "jsd", "kl_params": {"beta": 1.5}}, "beta"),
        ({"kl_params": [0.5]}, "kl_params must be a dict"),
        ({"kl_temperature": True}, "kl_temperature must be None or a number"),
        ({"kl_temperature": float("nan")}, "kl_temperature must be None or a number"),
        ({"kl_fused": "yes"}, "kl_fused must be True or False"),
    ],
)
def test_bad_arguments_name_the_parameter_before_any_model_is_built(kw, match):
    for cls in (KLGKDTrainer, KLDistillationTrainer):
        with pytest.raises(ValueError, match=match):
            cls(model="never-loaded", **kw)


def test_kl_core_does_not_import_trl_and_the_error_names_pip_install(monkeypatch):
    code = "import sys, kl_core, kl_core.integrations; print('trl' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr
    monkeypatch.setitem(sys.modules, "trl", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "kl_core.integrations.trl")
    with pytest.raises(ImportError, match=r"pip install trl"):
        import kl_core.integrations.trl  # noqa: F401
