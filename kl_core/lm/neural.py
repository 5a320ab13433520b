"""The neural teacher: a tiny causal transformer trained by maximum likelihood on a synthetic language.

The exact :class:`~kl_core.lm.teacher.SyntheticTeacher` is a formula; this is the same language
learnt by a network (a :class:`~kl_core.lm.model.TinyLM` with a window long enough to see the whole
sequence), so the lab can show that forward and reverse KL behave the same way when the teacher is a
real model. It has the same interface as every model of the lab: ids (B, T) -> logits (B, T, V).

    model, info = train_neural_teacher("cities", steps=1200, seed=0)
    info.forward_kl  # exact sequence-level KL(synthetic teacher || neural teacher), nats
    save_neural_teacher(model, info)                   # assets/lm/neural_cities.pt + .json
    teacher = load_neural_teacher("cities")            # eval mode, frozen, weights_only loading
    lm.distill(teacher, method="reverse_kl", language=lm.get_language("cities"))

Training is :func:`kl_core.lm.distill` with the method ``sft`` (maximum likelihood on exact
teacher samples, seeded), then a third as many steps at a tenth of the learning rate: the neural
teacher is just a well-fitted, full-context student.
The shipped weights are stored in float32 with ``torch.save(state_dict)`` and read back with
``torch.load(..., weights_only=True)`` (no pickled code); the JSON beside them holds the config,
the language, the training seed, steps and learning rate, and the exact KLs measured on the saved
weights, so loading and re-measuring reproduces them.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from kl_core.lm.distill import distill
from kl_core.lm.evaluation import evaluate
from kl_core.lm.languages import Language, get_language
from kl_core.lm.model import LMConfig, TinyLM
from kl_core.lm.teacher import SyntheticTeacher

__all__ = [
    "ASSETS",
    "NeuralTeacherInfo",
    "neural_config",
    "train_neural_teacher",
    "measure_teacher",
    "save_neural_teacher",
    "load_neural_teacher",
    "neural_teacher_info",
    "shipped_neural_teachers",
]

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "lm"  # the repository's shipped artefacts
NEURAL_STEPS = 1200
NEURAL_LR = 3e-3
NEURAL_BATCH = 256


@dataclass(frozen=True)
class NeuralTeacherInfo:
    """What the JSON beside the weights holds: how the teacher was made and how close it is (exact KLs)."""

    language: str
    config: dict[str, int]  # LMConfig fields
    seed: int
    steps: int
    lr: float
    batch_size: int
    parameters: int  # number of distinct weights
    forward_kl: float  # exact sequence-level KL(synthetic || neural), averaged over prompts (nats)
    reverse_kl: float  # exact sequence-level KL(neural || synthetic)
    validity: float  # share of the neural teacher's samples the language says
    mode_coverage: float  # share of each prompt's modes its samples reach
    train_seconds: float

    def lm_config(self) -> LMConfig:
        return LMConfig(**self.config)


def neural_config(language: Language | str, n_layer: int = 2, n_embd: int = 48, n_head: int = 4) -> LMConfig:
    """A teacher-sized TinyLM for ``language``: its window covers the prompt and the whole answer."""
    lang = get_language(language) if isinstance(language, str) else language
    return LMConfig(
        vocab_size=lang.vocab_size,
        context=lang.prompt_length + lang.answer_length,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
    )


def _n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights are counted once


def measure_teacher(language: Language | str, model: torch.nn.Module, *, seed: int = 0) -> dict[str, float]:
    """Exact sequence-level KLs between the synthetic teacher (p) and ``model`` (q), validity and coverage."""
    lang = get_language(language) if isinstance(language, str) else language
    ev = evaluate(SyntheticTeacher(lang), model.cpu(), language=lang, seed=seed, exact=True)
    return {
        "forward_kl": ev.forward_kl,
        "reverse_kl": ev.reverse_kl,
        "validity": ev.validity,
        "mode_coverage": ev.mode_coverage,
    }


def train_neural_teacher(
    language: Language | str = "cities",
    config: LMConfig | None = None,
    steps: int = NEURAL_STEPS,
    seed: int = 0,
    *,
    lr: float = NEURAL_LR,
    batch_size: int = NEURAL_BATCH,
    device: str = "cpu",
) -> tuple[TinyLM, NeuralTeacherInfo]:
    """Fit a TinyLM to ``language`` by maximum likelihood on exact teacher samples (``sft``), seeded.

    Returns the trained model (CPU, eval mode) and its :class:`NeuralTeacherInfo` with the exact KLs
    to the synthetic teacher, measured on the float32 weights that :func:`save_neural_teacher` stores.
    """
    lang = get_language(language) if isinstance(language, str) else language
    config = neural_config(lang) if config is None else config
    if config.vocab_size != lang.vocab_size:
        raise ValueError(f"config.vocab_size must be {lang.vocab_size} for {lang.name!r}, got {config.vocab_size}")
    # two phases of Adam: most steps at ``lr``, then a third at lr / 10 on batches twice as large, which
    # halves the gradient noise's floor on the KL (measured: 0.024 -> 0.014 nats on cities)
    anneal = steps // 3
    first = distill(
        lang, config, "sft", steps=steps - anneal, lr=lr, batch_size=batch_size, seed=seed, device=device,
        eval_every=max(1, steps),
    )  # fmt: skip
    model = first.load_student()
    train_seconds = first.train_seconds
    if anneal:
        second = distill(
            lang, model, "sft", steps=anneal, lr=lr / 10, batch_size=2 * batch_size, seed=seed + 1, device=device,
            eval_every=max(1, steps),
        )  # fmt: skip
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in second.student_state.items()})
        train_seconds += second.train_seconds
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    m = measure_teacher(lang, model)
    info = NeuralTeacherInfo(
        language=lang.name,
        config=asdict(config),
        seed=int(seed),
        steps=int(steps),
        lr=float(lr),
        batch_size=int(batch_size),
        parameters=_n_parameters(model),
        train_seconds=round(train_seconds, 2),
        **m,
    )
    return model, info


def _paths(name: str, directory: Path | str | None) -> tuple[Path, Path]:
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"name must be a language name such as 'cities', got {name!r}")
    base = Path(directory) if directory is not None else ASSETS
    return base / f"neural_{name}.pt", base / f"neural_{name}.json"


def save_neural_teacher(model: TinyLM, info: NeuralTeacherInfo, directory: Path | str | None = None) -> Path:
    """Write ``neural_<language>.pt`` (float32 state dict) and ``neural_<language>.json``; returns the .pt path."""
    weights, meta = _paths(info.language, directory)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    state.pop("lm_head.weight", None)  # tied to wte.weight: stored once, re-tied on loading
    torch.save(state, weights)
    meta.write_text(json.dumps(asdict(info), indent=2) + "\n")
    return weights


def neural_teacher_info(name: str = "cities", directory: Path | str | None = None) -> NeuralTeacherInfo:
    """The JSON of a shipped neural teacher; ValueError if there is none."""
    _, meta = _paths(name, directory)
    if not meta.exists():
        shipped = ", ".join(shipped_neural_teachers(directory)) or "none"
        raise ValueError(
            f"no neural teacher for {name!r} at {meta}; shipped: {shipped} "
            "(python scripts/make_lm_assets.py makes them)"
        )
    raw = json.loads(meta.read_text())
    info = NeuralTeacherInfo(**raw)
    if not all(math.isfinite(getattr(info, k)) for k in ("forward_kl", "reverse_kl")):
        raise ValueError(f"{meta}: the stored KLs must be finite numbers")
    return info


def load_neural_teacher(name: str = "cities", directory: Path | str | None = None) -> TinyLM:
    """The shipped neural teacher of language ``name``: a frozen TinyLM in eval mode on the CPU.

    The weights are read with ``torch.load(..., weights_only=True)``: tensors only, no pickled code.
    """
    info = neural_teacher_info(name, directory)
    weights, _ = _paths(name, directory)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{weights}: not a weights_only state dict of tensors ({err})") from None
    if not (isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ValueError(f"{weights}: expected a state dict of tensors (weights_only)")
    state["lm_head.weight"] = state.get("wte.weight")
    model = TinyLM(info.lm_config(), seed=info.seed)
    try:
        model.load_state_dict(state)  # strict: every tensor must be there, with the right shape
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"{weights} does not fit the config in its JSON: {err}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def shipped_neural_teachers(directory: Path | str | None = None) -> tuple[str, ...]:
    """The languages with a neural teacher on disk (both the weights and the JSON)."""
    base = Path(directory) if directory is not None else ASSETS
    return tuple(
        sorted(p.stem.removeprefix("neural_") for p in base.glob("neural_*.json") if p.with_suffix(".pt").exists())
    )
