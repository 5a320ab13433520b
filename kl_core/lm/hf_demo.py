"""Demo checkpoints for "your own models": a GPT-2 teacher trained on a synthetic language, a smaller student.

    python3 -m kl_core.lm.hf_demo DIR [--language cities] [--steps 300] [--seed 0]
    kl-lab distill --teacher DIR/teacher --student DIR/student --prompts DIR/prompts.txt --length 3

writes ``DIR/teacher`` (a 2-layer ``GPT2LMHeadModel`` fitted to the language by forward KL with the lab's
own loop, plus a word-level tokenizer over the language's vocabulary), ``DIR/student`` (a fresh 1-layer,
narrower GPT-2 with the same vocabulary) and ``DIR/prompts.txt`` (the language's prompts, one per line).
Everything is built locally from configs (no download), on the CPU, from ``seed``; dropout is off.
The tokenizer's unknown-word token is the vocabulary's first word (the models have exactly the
language's tokens).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from kl_core.lm.distill import distill
from kl_core.lm.languages import get_language
from kl_core.lm.sampling import HFCausalLM

__all__ = ["make_demo_checkpoints"]


def _gpt2(vocab: int, n_positions: int, n_embd: int, n_layer: int, seed: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)  # transformers initialises from the global RNG; seeded here, once
    cfg = GPT2Config(
        vocab_size=vocab, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=2, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    return GPT2LMHeadModel(cfg)


def make_demo_checkpoints(folder: str | Path, language: str = "cities", steps: int = 300, seed: int = 0) -> Path:
    """Write the teacher, the student and the prompt file under ``folder`` (module docstring); returns it."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    lang = get_language(language)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(lang.vocab)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=lang.vocab[0]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=lang.vocab[0])
    n_positions = lang.prompt_length + lang.answer_length + 4
    teacher = HFCausalLM(_gpt2(len(vocab), n_positions, 64, 2, seed))
    fitted = distill(lang, teacher, "forward_kl", steps=steps, seed=seed, device="cpu", eval_every=max(1, steps))
    teacher.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in fitted.student_state.items()})
    teacher.model.save_pretrained(str(out / "teacher"))
    tokenizer.save_pretrained(str(out / "teacher"))
    _gpt2(len(vocab), n_positions, 16, 1, seed + 1).save_pretrained(str(out / "student"))
    lines = [lang.decode(row.tolist()) for row in lang.prompt_ids]
    (out / "prompts.txt").write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kl_core.lm.hf_demo", description=__doc__.splitlines()[0])
    p.add_argument("folder")
    p.add_argument("--language", default="cities", choices=("cities", "arithmetic", "stories"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 1 <= args.steps <= 20_000 or not 0 <= args.seed < 2**31:
        p.error("--steps must be in [1, 20000] and --seed in [0, 2**31 - 1]")
    torch.set_num_threads(1)
    out = make_demo_checkpoints(args.folder, args.language, args.steps, args.seed)
    print(f"wrote {out / 'teacher'}, {out / 'student'} and {out / 'prompts.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
