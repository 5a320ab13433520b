"""Your own checkpoints: load a local Hugging Face teacher and student that share a tokenizer, and read prompts.

    pair = load_pair("ckpt/teacher", "ckpt/student")          # from_pretrained(dir, local_files_only=True)
    groups = read_prompts("prompts.txt", pair.tokenizer, context=pair.context, length=8)

Nothing here touches the network: both directories are read with ``local_files_only=True``. The
tokenizer is the one saved in the teacher's directory; when the student's directory holds one too, the
two vocabularies must be equal (same tokens, same ids), and both models must have the same output
width. Prompts come one per line, or as JSON lines ``{"prompt": "..."}`` (a file whose first non-blank
line starts with ``{`` is read as JSONL). Every problem is a ``ValueError`` of one line naming it.

Prompts have different lengths in tokens; rather than padding (which changes what a causal model sees)
they are grouped by length (:class:`PromptGroups`): each group is a (N_g, P_g) LongTensor that the
lab's methods and metrics take as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kl_core.lm.sampling import HFCausalLM

__all__ = ["ModelPair", "PromptGroups", "load_pair", "read_prompts", "load_model", "MAX_PROMPTS", "MAX_PROMPT_BYTES"]

MAX_PROMPTS = 10_000  # prompts per file
MAX_PROMPT_BYTES = 8 << 20  # a prompt file larger than this is refused before it is read


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    cut = text[:limit]
    return repr(cut)[:-1] + "…" + repr(cut)[-1] if len(text) > limit else repr(cut)


def _quiet_transformers() -> None:
    """No progress bars or config warnings on stderr: the CLI's errors are one line."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _check_dir(flag: str, path: str | Path) -> Path:
    p = Path(path)
    try:
        if not p.is_dir():
            raise ValueError(f"{flag}: {_short(str(path))} is not a directory (a saved Hugging Face checkpoint)")
        if not (p / "config.json").is_file():
            raise ValueError(f"{flag}: {_short(str(path))} has no config.json; save the model with save_pretrained")
    except OSError as err:
        raise ValueError(f"{flag}: cannot use {_short(str(path))}: {err.strerror or type(err).__name__}") from None
    return p


def load_model(flag: str, path: str | Path) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained(path, local_files_only=True)`` in float32; ValueError naming ``flag``."""
    p = _check_dir(flag, path)
    _quiet_transformers()
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{flag}: cannot load a causal LM from {_short(str(path))}: {first[:160]}") from None
    return model


def _context(model: nn.Module) -> int:
    cfg = model.config
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1 << 30  # no position limit in the config (e.g. rotary without a maximum)


def _output_width(model: nn.Module) -> int:
    """The number of tokens the model predicts (its output layer's rows, else ``config.vocab_size``)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if isinstance(weight, Tensor) and weight.ndim == 2:
        return int(weight.shape[0])
    return int(model.config.vocab_size)


@dataclass
class ModelPair:
    """A teacher and a student (wrapped as ids -> logits modules), their shared tokenizer and limits."""

    teacher: HFCausalLM
    student: HFCausalLM
    tokenizer: Any  # a transformers tokenizer (from the teacher's directory)
    vocab_size: int  # the models' output width
    context: int  # the smaller of the two models' position limits
    teacher_dir: str
    student_dir: str


def load_pair(teacher_dir: str | Path, student_dir: str | Path) -> ModelPair:
    """Load both checkpoints and the teacher's tokenizer; check that they share the vocabulary (module docstring)."""
    t_path = _check_dir("--teacher", teacher_dir)
    s_path = _check_dir("--student", student_dir)
    _quiet_transformers()
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(t_path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"--teacher: no tokenizer could be loaded from {_short(str(teacher_dir))} (save it there with "
            f"tokenizer.save_pretrained): {first[:120]}"
        ) from None
    student_tok = None
    if any((s_path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        try:
            student_tok = AutoTokenizer.from_pretrained(str(s_path), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError):
            student_tok = None
    if student_tok is not None and student_tok.get_vocab() != tokenizer.get_vocab():
        a, b = tokenizer.get_vocab(), student_tok.get_vocab()
        differ = sorted(set(a.items()) ^ set(b.items()), key=str)[:1]
        raise ValueError(
            f"mismatched vocabularies: the teacher's tokenizer has {len(a)} tokens, the student's {len(b)}"
            + (f"; e.g. token {_short(differ[0][0], 20)} differs" if differ else "")
            + "; distillation needs one shared tokenizer"
        )
    teacher = load_model("--teacher", t_path)
    student = load_model("--student", s_path)
    vt, vs = _output_width(teacher), _output_width(student)
    if vt != vs:
        raise ValueError(
            f"mismatched vocabularies: the teacher predicts {vt} tokens, the student {vs}; "
            "distillation needs one shared tokenizer and output layer"
        )
    if len(tokenizer) > vt:
        raise ValueError(f"mismatched vocabularies: the tokenizer has {len(tokenizer)} tokens, the models {vt}")
    return ModelPair(
        teacher=HFCausalLM(teacher),
        student=HFCausalLM(student),
        tokenizer=tokenizer,
        vocab_size=vt,
        context=min(_context(teacher), _context(student)),
        teacher_dir=str(teacher_dir),
        student_dir=str(student_dir),
    )


@dataclass(frozen=True)
class PromptGroups:
    """The prompts grouped by length in tokens: ``groups[g]`` is (N_g, P_g); ``index[g]`` their line order."""

    groups: tuple[Tensor, ...]
    index: tuple[tuple[int, ...], ...]  # position of each prompt of a group in the file's order
    texts: tuple[str, ...]  # the prompts as read, in file order

    @property
    def n_prompts(self) -> int:
        return len(self.texts)

    @property
    def sizes(self) -> Tensor:
        """(G,) float prompts per group: the weights that make each prompt equally likely."""
        return torch.tensor([float(g.shape[0]) for g in self.groups])


def _prompt_lines(path: Path) -> list[tuple[int, str]]:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValueError(f"--prompts: {_short(str(path))} is not a file")
        if size > MAX_PROMPT_BYTES:
            raise ValueError(f"--prompts: the file is {size} bytes; at most {MAX_PROMPT_BYTES}")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"--prompts: {_short(str(path))} does not exist") from None
    except OSError as err:
        raise ValueError(f"--prompts: cannot read {_short(str(path))}: {err.strerror or type(err).__name__}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"--prompts: the file is not UTF-8 text (byte {err.start})") from None
    lines = [(i + 1, line.rstrip("\r")) for i, line in enumerate(text.split("\n"))]
    kept = [(n, line) for n, line in lines if line.strip()]
    if not kept:
        raise ValueError("--prompts: the file holds no prompt (it is empty or blank); give one prompt per line")
    if kept[0][1].lstrip().startswith("{"):
        out = []
        for n, line in kept:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"--prompts: line {n} is not valid JSON ({err.msg})") from None
            if not (isinstance(obj, dict) and isinstance(obj.get("prompt"), str)):
                raise ValueError(f'--prompts: line {n} must be a JSON object with a string "prompt"')
            if not obj["prompt"].strip():
                raise ValueError(f"--prompts: line {n} has an empty prompt")
            out.append((n, obj["prompt"]))
        kept = out
    if len(kept) > MAX_PROMPTS:
        raise ValueError(f"--prompts: the file holds {len(kept)} prompts; at most {MAX_PROMPTS}")
    return kept


def read_prompts(path: str | Path, tokenizer: Any, *, context: int, length: int) -> PromptGroups:
    """Read and tokenize the prompt file; every prompt plus ``length`` answer tokens must fit in ``context``."""
    kept = _prompt_lines(Path(path))
    by_length: dict[int, list[tuple[int, list[int]]]] = {}
    for order, (n, text) in enumerate(kept):
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise ValueError(f"--prompts: line {n} tokenizes to no token")
        if len(ids) + length > context:
            raise ValueError(
                f"--prompts: line {n} is {len(ids)} tokens long; with --length {length} it needs {len(ids) + length} "
                f"positions, more than the models' context of {context}"
            )
        by_length.setdefault(len(ids), []).append((order, ids))
    groups, index = [], []
    for p in sorted(by_length):
        rows = by_length[p]
        groups.append(torch.tensor([ids for _, ids in rows], dtype=torch.long))
        index.append(tuple(order for order, _ in rows))
    return PromptGroups(groups=tuple(groups), index=tuple(index), texts=tuple(text for _, text in kept))
