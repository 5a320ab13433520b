"""Distillation comparisons as plain records: what the LM lab page draws, ships as JSON and trains live.

* :class:`Settings` -- one comparison's inputs (language, teacher kind, student shape, methods and
  their parameters, steps, seed); ``key()`` identifies it.
* :class:`MethodRecord` -- one method's metric history, final samples with their mode labels, its
  mode histogram, timing and device, as plain Python values.
* :class:`Comparison` -- the settings, the teacher's mode probabilities and one record per method;
  ``to_json`` / ``from_json`` (the shipped ``assets/lm/comparisons.json`` holds a list of them).
* :func:`run_comparison` -- train every method (``kl_core.lm.distill``) and record it.
* :class:`LiveComparison` -- the same in a background thread, with snapshots while it trains and a
  ``stop()`` (the loop's ``StopTraining`` hook), so a page stays responsive while it runs. It sets
  torch's CPU threads to ``threads`` (default 1: fastest for these tiny models on a shared machine).
  At most :data:`MAX_LIVE` of them run at once in a process (``start()`` raises :class:`TooManyTrainings`
  beyond), and one given an ``alive`` check (the app: "is my browser session still connected?") stops
  by itself at its next evaluation once the check fails.

Everything is reproducible from ``Settings.seed``: the same settings on the same device give the
same numbers (timings aside).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kl_core.lm.distill import DEMO_METHODS, DEMO_STEPS, DistillResult, Progress, StopTraining, distill
from kl_core.lm.evaluation import Evaluation
from kl_core.lm.languages import Language, get_language
from kl_core.lm.methods import resolve_method
from kl_core.lm.model import LMConfig

__all__ = [
    "TEACHERS",
    "HISTORY_KEYS",
    "Settings",
    "Sample",
    "MethodRecord",
    "Comparison",
    "eval_every_for",
    "mode_table",
    "method_record",
    "run_comparison",
    "save_comparisons",
    "load_comparisons",
    "LiveComparison",
    "TooManyTrainings",
    "MAX_LIVE",
    "live_count",
]

TEACHERS = ("exact", "neural")  # the synthetic formula, or the shipped network trained on it
N_HEAD = 2  # the students' attention heads (the library's default student)
HISTORY_KEYS = (
    "step", "forward_kl", "forward_kl_se", "reverse_kl", "reverse_kl_se", "objective", "validity", "valid_mass",
    "mode_coverage", "answer_coverage", "entropy", "loss",
)  # fmt: skip


def eval_every_for(steps: int) -> int:
    """How often a comparison evaluates: about 20 points per curve, at least every 5 steps."""
    return max(5, int(steps) // 20)


@dataclass(frozen=True)
class Settings:
    """The inputs of one comparison; every field is validated at construction."""

    language: str = "cities"
    teacher: str = "exact"  # "exact" (SyntheticTeacher) or "neural" (the shipped TinyLM trained on it)
    context: int = 1  # student window (1 = a bigram model that cannot remember its mode)
    n_layer: int = 1
    n_embd: int = 32
    methods: tuple[str, ...] = DEMO_METHODS
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> its parameters (given ones)
    steps: int = DEMO_STEPS
    seed: int = 0

    def __post_init__(self) -> None:
        get_language(self.language)
        if self.teacher not in TEACHERS:
            raise ValueError(f"teacher must be one of {', '.join(TEACHERS)}, got {self.teacher!r}")
        if isinstance(self.methods, str) or not self.methods:
            raise ValueError("methods must be a non-empty sequence of method names")
        object.__setattr__(self, "methods", tuple(dict.fromkeys(self.methods)))
        unknown = set(self.params) - set(self.methods)
        if unknown:
            raise ValueError(f"params given for methods not compared: {', '.join(sorted(unknown))}")
        resolved = {m: resolve_method(m, self.params.get(m))[1] for m in self.methods}  # validates names and values
        object.__setattr__(self, "params", resolved)
        for name, low, high in (("steps", 1, 100_000), ("seed", 0, 2**31 - 1)):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and low <= v <= high):
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {v!r}")
        self.student()  # validates the student's shape

    def student(self) -> LMConfig:
        """The student's LMConfig (the language's vocabulary, ``N_HEAD`` heads)."""
        return LMConfig(
            vocab_size=get_language(self.language).vocab_size,
            context=self.context,
            n_layer=self.n_layer,
            n_head=N_HEAD,
            n_embd=self.n_embd,
        )

    def key(self) -> str:
        """A canonical string for these settings (parameters filled in with their defaults)."""
        return json.dumps(self.as_dict(), sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["methods"] = list(self.methods)
        out["params"] = {m: dict(p) for m, p in self.params.items()}
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Settings:
        return cls(**{**raw, "methods": tuple(raw["methods"])})


@dataclass(frozen=True)
class Sample:
    """One sampled answer: its prompt, text, mode index in the prompt (-1: invalid) and mode name."""

    prompt: int
    text: str
    mode: int
    mode_name: str


@dataclass(frozen=True)
class MethodRecord:
    """One method's run as plain values (see module docstring)."""

    method: str
    params: dict[str, Any]
    device: str
    steps: int  # steps done
    requested_steps: int
    stopped_early: bool
    exact: bool  # sequence-level KLs by enumeration (else Monte Carlo, with standard errors)
    train_seconds: float
    eval_seconds: float
    tokens_per_s: float
    history: dict[str, tuple[float, ...]]  # HISTORY_KEYS -> one value per evaluation
    mode_probs: tuple[float, ...]  # student probability of a valid answer of each Comparison.mode_labels entry
    invalid_prob: float  # student probability of an invalid answer
    samples: tuple[Sample, ...]

    def final(self, name: str) -> float:
        """The last value of a history series, e.g. ``final("validity")``."""
        if name not in self.history:
            raise ValueError(f"unknown metric {name!r}; valid metrics: {', '.join(self.history)}")
        return float(self.history[name][-1])

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["history"] = {k: [_num(v) for v in vals] for k, vals in self.history.items()}
        out["samples"] = [[s.prompt, s.text, s.mode, s.mode_name] for s in self.samples]
        for k in ("train_seconds", "eval_seconds", "tokens_per_s"):
            out[k] = _num(getattr(self, k))
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MethodRecord:
        raw = dict(raw)
        raw["history"] = {
            k: tuple(math.nan if v is None else float(v) for v in vals) for k, vals in raw["history"].items()
        }
        raw["samples"] = tuple(Sample(int(p), str(t), int(m), str(n)) for p, t, m, n in raw["samples"])
        raw["mode_probs"] = tuple(float(v) for v in raw["mode_probs"])
        for k in ("train_seconds", "eval_seconds", "tokens_per_s"):
            raw[k] = math.nan if raw[k] is None else float(raw[k])
        return cls(**raw)


def _num(v: float) -> float | None:
    return None if isinstance(v, float) and math.isnan(v) else v  # JSON has no NaN


@dataclass(frozen=True)
class Comparison:
    """Several methods distilled from the same teacher into the same initial student (module docstring)."""

    settings: Settings
    mode_labels: tuple[str, ...]  # the language's modes (same-named modes of different prompts merged)
    teacher_mode_probs: tuple[float, ...]  # the language's probability of each, averaged over prompts
    methods: dict[str, MethodRecord]  # in the order trained; fewer than settings.methods while running
    note: str = ""  # how it was made (for a shipped comparison: machine, threads, torch version)

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": self.settings.as_dict(),
            "mode_labels": list(self.mode_labels),
            "teacher_mode_probs": list(self.teacher_mode_probs),
            "methods": {name: r.as_dict() for name, r in self.methods.items()},
            "note": self.note,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Comparison:
        return cls(
            settings=Settings.from_dict(raw["settings"]),
            mode_labels=tuple(raw["mode_labels"]),
            teacher_mode_probs=tuple(float(v) for v in raw["teacher_mode_probs"]),
            methods={name: MethodRecord.from_dict(r) for name, r in raw["methods"].items()},
            note=str(raw.get("note", "")),
        )


def mode_table(language: Language) -> tuple[tuple[str, ...], tuple[float, ...], list[list[int]]]:
    """The merged mode labels, their probability under the language and each prompt's mode -> label index."""
    labels: dict[str, int] = {}
    index: list[list[int]] = []
    for prompt in language.prompts:
        index.append([labels.setdefault(m.name, len(labels)) for m in prompt.modes])
    probs = np.zeros(len(labels))
    w = language.prompt_weights.numpy()
    for i, prompt in enumerate(language.prompts):
        for m, mode in enumerate(prompt.modes):
            probs[index[i][m]] += w[i] * mode.weight
    return tuple(labels), tuple(float(p) for p in probs), index


def _samples(ev: Evaluation, language: Language, per_prompt: int) -> tuple[Sample, ...]:
    out = []
    seen: dict[int, int] = {}
    for row, prompt, mode in zip(ev.samples, ev.sample_prompt, ev.sample_mode):
        prompt, mode = int(prompt), int(mode)
        if seen.get(prompt, 0) >= per_prompt:
            continue
        seen[prompt] = seen.get(prompt, 0) + 1
        name = language.mode_names(prompt)[mode] if mode >= 0 else "invalid"
        out.append(Sample(prompt, language.decode(row), mode, name))
    return tuple(out)


def method_record(
    method: str,
    params: Mapping[str, Any],
    history: Sequence[Evaluation],
    language: Language,
    *,
    device: str,
    requested_steps: int,
    stopped_early: bool = False,
    train_seconds: float = math.nan,
    eval_seconds: float = math.nan,
    tokens_per_s: float = math.nan,
) -> MethodRecord:
    """A :class:`MethodRecord` from an evaluation history (of a finished or a running distillation)."""
    if not history:
        raise ValueError("history must hold at least one evaluation")
    final = history[-1]
    labels, _, index = mode_table(language)
    probs = np.zeros(len(labels))
    w = language.prompt_weights.numpy()
    for i, prompt in enumerate(language.prompts):
        for m in range(len(prompt.modes)):
            probs[index[i][m]] += w[i] * float(final.mode_share[i, m])
    per_prompt = max(2, 24 // language.n_prompts)
    series = {k: tuple(float(e.as_dict()[k]) if k != "step" else float(e.step) for e in history) for k in HISTORY_KEYS}
    return MethodRecord(
        method=method,
        params=dict(params),
        device=device,
        steps=int(final.step),
        requested_steps=int(requested_steps),
        stopped_early=bool(stopped_early),
        exact=bool(final.exact),
        train_seconds=float(train_seconds),
        eval_seconds=float(eval_seconds),
        tokens_per_s=float(tokens_per_s),
        history=series,
        mode_probs=tuple(float(p) for p in probs),
        invalid_prob=float(max(0.0, 1.0 - probs.sum())),
        samples=_samples(final, language, per_prompt),
    )


def _record_result(result: DistillResult, language: Language) -> MethodRecord:
    return method_record(
        result.method, result.params, result.history, language, device=result.device,
        requested_steps=result.requested_steps, stopped_early=result.stopped_early,
        train_seconds=result.train_seconds, eval_seconds=result.eval_seconds, tokens_per_s=result.tokens_per_s,
    )  # fmt: skip


def _teacher(settings: Settings) -> Any:
    if settings.teacher == "neural":
        from kl_core.lm.neural import load_neural_teacher

        return load_neural_teacher(settings.language)
    return settings.language


def run_comparison(
    settings: Settings,
    *,
    device: str = "auto",
    callback: Callable[[Progress], bool | None] | None = None,
    on_record: Callable[[MethodRecord], None] | None = None,
    note: str = "",
) -> Comparison:
    """Train every method of ``settings`` from the same initial student and record each (module docstring).

    ``callback`` is the distillation loop's progress hook (return False or raise StopTraining to
    stop: the comparison then ends after that method); ``on_record`` receives each finished record.
    """
    language = get_language(settings.language)
    teacher = _teacher(settings)
    labels, teacher_probs, _ = mode_table(language)
    records: dict[str, MethodRecord] = {}
    for method in settings.methods:
        result = distill(
            teacher, settings.student(), method, params=settings.params[method], steps=settings.steps,
            seed=settings.seed, device=device, eval_every=eval_every_for(settings.steps), callback=callback,
            language=language,
        )  # fmt: skip
        records[method] = _record_result(result, language)
        if on_record is not None:
            on_record(records[method])
        if result.stopped_early:
            break
    return Comparison(settings, labels, teacher_probs, records, note)


def save_comparisons(comparisons: Sequence[Comparison], path: Path | str) -> None:
    """Write comparisons to a JSON file (a list)."""
    Path(path).write_text(json.dumps([c.to_json() for c in comparisons], indent=1, allow_nan=False) + "\n")


def load_comparisons(path: Path | str) -> dict[str, Comparison]:
    """The comparisons of a JSON file, by ``settings.key()``; ValueError if the file is missing or malformed."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        comparisons = [Comparison.from_json(c) for c in raw]
    except FileNotFoundError:
        raise ValueError(f"no comparisons file at {path} (python scripts/make_lm_assets.py makes it)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a comparisons file: {err}") from None
    return {c.settings.key(): c for c in comparisons}


MAX_LIVE = 2  # trainings one server runs at once: on a few cores more only slow each other (and every page)
_LIVE: set[LiveComparison] = set()  # started and not yet finished, in this process
_LIVE_LOCK = threading.Lock()


class TooManyTrainings(ValueError):
    """:meth:`LiveComparison.start` when :data:`MAX_LIVE` trainings already run in this process."""


def live_count() -> int:
    """How many live trainings run in this process now."""
    with _LIVE_LOCK:
        return len(_LIVE)


class LiveComparison:
    """:func:`run_comparison` in a background thread: ``snapshot()`` while it trains, ``stop()`` to end it.

    The thread only touches this object (under a lock); errors end the run and are kept as text in
    ``error`` (a ValueError's message, or the exception's type and message).
    """

    def __init__(
        self,
        settings: Settings,
        device: str = "auto",
        threads: int | None = 1,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        """``alive``: checked at every evaluation (in the training thread); once False, the run stops."""
        self.settings = settings
        self.alive = alive
        self.abandoned = False  # True once the run stopped because ``alive`` said so
        self.device = device
        self.threads = threads
        self.error: str | None = None
        self._language = get_language(settings.language)
        self._labels, self._teacher_probs, _ = mode_table(self._language)
        self._records: dict[str, MethodRecord] = {}
        self._partial: MethodRecord | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kl-lab-lm-train", daemon=True)

    def start(self) -> LiveComparison:
        """Start training in the background; TooManyTrainings if MAX_LIVE trainings already run here."""
        with _LIVE_LOCK:
            if len(_LIVE) >= MAX_LIVE:
                raise TooManyTrainings(
                    f"{len(_LIVE)} trainings are already running on this server (at most {MAX_LIVE} at once); "
                    "press Train again when one has finished"
                )
            _LIVE.add(self)
        try:
            self._thread.start()
        except BaseException:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            raise
        return self

    def _progress(self, progress: Progress) -> None:
        par = self.settings.params[progress.method]
        partial = method_record(
            progress.method, par, progress.history, self._language, device=self.device,
            requested_steps=progress.steps,
        )  # fmt: skip
        with self._lock:
            self._partial = partial
        if not self._stop.is_set() and self.alive is not None and not self._is_alive():
            self.abandoned = True  # nobody is watching: free the CPU
            self._stop.set()
        if self._stop.is_set():
            raise StopTraining

    def _is_alive(self) -> bool:
        try:
            return bool(self.alive())
        except Exception:  # noqa: BLE001 -- a failing check counts as "gone"
            return False

    def _finished_method(self, record: MethodRecord) -> None:
        with self._lock:
            self._records[record.method] = record
            self._partial = None

    def _run(self) -> None:
        if self.threads is not None:
            # process-wide: the lab's models are tiny, and on a busy CPU extra intra-op threads only contend
            # (measured on 2 shared cores: 1 thread trains about 10x faster than torch's default of 2)
            torch.set_num_threads(self.threads)
        try:
            run_comparison(self.settings, device=self.device, callback=self._progress, on_record=self._finished_method)
        except ValueError as err:
            self.error = str(err)
        except Exception as err:  # noqa: BLE001 -- shown to the user as text, never a traceback
            self.error = f"{type(err).__name__}: {err}"
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            self._done.set()

    def stop(self) -> None:
        """Ask the run to stop at its next evaluation (the current method keeps what it learnt)."""
        self._stop.set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True if it has."""
        self._thread.join(timeout)
        return self.finished

    def snapshot(self) -> Comparison:
        """The finished methods' records plus the running method's latest evaluation."""
        with self._lock:
            records = dict(self._records)
            if self._partial is not None and self._partial.method not in records:
                records[self._partial.method] = self._partial
        return Comparison(self.settings, self._labels, self._teacher_probs, records, "trained live in this session")
