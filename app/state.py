"""Typed app state: one schema for every control, parsed from and written back to the URL.

Pure Python (no streamlit import) so it can be tested on its own. Each :class:`Field` knows its
type, default and allowed range; :func:`parse` turns query parameters into a complete state plus
one warning per rejected value (that value falls back to its default, the others are kept);
:func:`to_query` writes back only what differs from the defaults, so links stay short.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kl_core.divergences import KINDS
from kl_core.lesson import N_STEPS
from kl_core.presets import PRESETS

__all__ = [
    "Field",
    "FIELDS",
    "DEFAULTS",
    "parse",
    "to_query",
    "hidden_controls",
    "is_embed",
    "teacher_fields",
    "quote",
]

MAX_MODES = 6
PRESETS_1D = [n for n, p in PRESETS.items() if p.space == "1d"]
PRESETS_2D = [n for n, p in PRESETS.items() if p.space == "2d"]
OBJECTIVES = [k for k, v in KINDS.items() if not v.discrete_only]
ESTIMATORS = ["exact", "off_policy", "on_policy_pathwise", "on_policy_score"]
STUDENTS = ["gaussian", "gaussian_fixed_std", "mixture"]
MAX_VALUE_CHARS = 200  # no control's value is longer; a longer one is refused before it is parsed
QUOTE_CHARS = 40  # user text shown back (in a warning) is cut to this many characters


def quote(text: Any, limit: int = QUOTE_CHARS) -> str:
    """User text as one inert Markdown code span, cut to ``limit`` characters.

    Inside a code span Markdown and HTML are shown literally; backticks (which would end the span)
    and control characters (line breaks) are replaced, so no user text can format, link or load anything.
    """
    text = str(text)
    cut = len(text) > limit
    text = text[:limit]
    text = "".join("'" if c == "`" else (" " if not c.isprintable() else c) for c in text)
    if not text.strip():
        return "an empty value"
    return f"`{text}{'…' if cut else ''}`"


@dataclass(frozen=True)
class Field:
    """One control: its URL key (also its widget key), type, default and allowed values."""

    name: str
    kind: str  # "int" | "float" | "choice" | "multi" | "bool"
    default: Any
    label: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # display names of some choices (the URL keeps the value)

    def parse(self, raw: Any) -> Any:
        """The typed value of a raw URL string; ValueError (naming the field and range) if invalid.

        Never raises anything else: huge integers, NaN, infinities, unicode and 10 k-character values
        all end in a ValueError whose message shows the value only as a short code span (:func:`quote`).
        """
        text = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw
        text = str(text).strip()
        if len(text) > MAX_VALUE_CHARS:
            raise ValueError(f"{self.name} must be {self.allowed()}, got a value of {len(text)} characters")
        if self.kind in ("int", "float"):
            try:
                value = int(text) if self.kind == "int" else float(text)
            except (ValueError, OverflowError):
                raise ValueError(f"{self.name} must be {self.allowed()}, got {quote(text)}") from None
            return self._in_range(value, text)
        if self.kind == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{self.name} must be {self.allowed()}, got {quote(text)}")
        if self.kind == "choice":
            if text not in self.choices:
                raise ValueError(f"{self.name} must be {self.allowed()}, got {quote(text)}")
            return text
        if self.kind == "multi":
            items = [t for t in text.split(",") if t]
            bad = [t for t in items if t not in self.choices]
            if bad or not items:
                raise ValueError(f"{self.name} must be {self.allowed()}, got {quote(text)}")
            return tuple(dict.fromkeys(items))  # unique, in the given order
        raise AssertionError(self.kind)

    def allowed(self) -> str:
        """The allowed values in words, e.g. "an integer in [50, 1500]" (schema text, never user text)."""
        if self.kind == "int":
            return f"an integer in [{self.low:g}, {self.high:g}]"
        if self.kind == "float":
            return f"a number in [{self.low:g}, {self.high:g}]"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        return f"a comma-separated subset of {', '.join(self.choices)}"

    def _in_range(self, value: float, text: str) -> float:
        # exact comparisons: an int of any size compares with the float bounds without converting it
        finite = self.kind == "int" or math.isfinite(value)
        if not (finite and self.low <= value <= self.high):
            raise ValueError(f"{self.name} must be in [{self.low:g}, {self.high:g}], got {quote(text)}")
        return value

    def dump(self, value: Any) -> str:
        if self.kind == "multi":
            return ",".join(value)
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "float":
            return f"{value:.6g}"
        return str(value)


def _f(name, kind, default, label, **kw) -> Field:
    return Field(name, kind, default, label, **kw)


_TEACHER_DEFAULTS = {
    "w": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
    "m": [-3.0, 3.0, 0.0, -6.0, 6.0, 8.0],
    "s": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
}

_FIELD_LIST: list[Field] = [
    # -- the 1-D lab: teacher -------------------------------------------------------------------
    _f(
        "preset",
        "choice",
        "bimodal",
        "Preset",
        choices=(*PRESETS_1D, "custom"),
        help="A named teacher (bimodal is the textbook figure of mode covering vs mode seeking); "
        "editing any mode switches to 'custom'.",
    ),
    _f("modes", "int", 2, "Number of modes", low=1, high=MAX_MODES, step=1),
    *[
        f
        for i in range(1, MAX_MODES + 1)
        for f in (
            _f(f"w{i}", "float", _TEACHER_DEFAULTS["w"][i - 1], f"Mode {i} weight", low=0.05, high=1.0, step=0.05),
            _f(f"m{i}", "float", _TEACHER_DEFAULTS["m"][i - 1], f"Mode {i} mean", low=-10.0, high=10.0, step=0.1),
            _f(f"s{i}", "float", _TEACHER_DEFAULTS["s"][i - 1], f"Mode {i} std", low=0.2, high=4.0, step=0.1),
        )
    ],
    _f("teacher_seed", "int", 0, "Random teacher seed", low=0, high=9999, step=1),
    # -- the 1-D lab: student and training ----------------------------------------------------
    _f(
        "student",
        "choice",
        "gaussian",
        "Student",
        choices=tuple(STUDENTS),
        help="A Gaussian, a Gaussian whose std is held fixed, or a mixture of K Gaussians.",
    ),
    _f("k", "int", 2, "Mixture components (K)", low=1, high=4, step=1),
    _f("objectives", "multi", ("forward_kl", "reverse_kl"), "Objectives", choices=tuple(OBJECTIVES)),
    _f("beta", "float", 0.5, "JSD β", low=0.0, high=1.0, step=0.05, help="β=0 is forward KL, β=1 reverse KL."),
    _f(
        "alpha",
        "float",
        0.5,
        "α-divergence α",
        low=-2.0,
        high=3.0,
        step=0.1,
        help="α→1 forward KL, α→0 reverse KL; α≤0 is zero-forcing.",
    ),
    _f("skew", "float", 0.1, "Skew KL α", low=0.0, high=0.95, step=0.05),
    _f(
        "estimator",
        "choice",
        "exact",
        "Estimator",
        choices=tuple(ESTIMATORS),
        help="Exact: quadrature on a grid. MC: teacher samples: Monte Carlo on teacher samples (off-policy, "
        "maximum likelihood). MC: pathwise: Monte Carlo on student samples (on-policy), reparameterised "
        "gradient. MC: REINFORCE: student samples, score-function gradient (the RL estimator).",
    ),
    _f("samples", "int", 256, "Samples per step", low=16, high=2048, step=16),
    _f("lr", "float", 0.05, "Learning rate", low=0.005, high=0.5, step=0.005),
    _f("steps", "int", 400, "Steps", low=50, high=1500, step=50),
    _f("inits", "int", 8, "Starts", low=1, high=16, step=1),
    _f("seed", "int", 0, "Seed", low=0, high=10_000, step=1),
    _f("speed", "int", 80, "Frame duration (ms)", low=20, high=400, step=10),
    # -- loss landscape ---------------------------------------------------------------------------
    _f("left", "choice", "forward_kl", "Left objective", choices=tuple(OBJECTIVES)),
    _f("right", "choice", "reverse_kl", "Right objective", choices=tuple(OBJECTIVES)),
    _f("grid", "int", 120, "Grid points per axis", low=40, high=160, step=10),
    # -- divergence family -------------------------------------------------------------------------
    _f("sweep", "choice", "alpha", "Sweep", choices=("alpha", "beta")),
    _f("points", "int", 9, "Values in the sweep", low=3, high=15, step=1),
    _f("kmax", "int", 4, "Largest K", low=1, high=4, step=1),
    # -- 2-D lab -------------------------------------------------------------------------------------
    _f("preset2d", "choice", "ring", "2-D preset", choices=tuple(PRESETS_2D)),
    _f("objectives2d", "multi", ("forward_kl", "reverse_kl"), "Objectives (2-D)", choices=tuple(OBJECTIVES)),
    # 250 steps at lr 0.3: every start of every 2-D preset has stopped moving (seeds 0-2; tests/test_claims.py)
    _f("steps2d", "int", 250, "Steps (2-D)", low=50, high=1000, step=50),
    _f("lr2d", "float", 0.3, "Learning rate (2-D)", low=0.005, high=0.5, step=0.005),
    _f("inits2d", "int", 4, "Starts (2-D)", low=1, high=8, step=1),
    # -- token lab (app/views/tokens.py) -------------------------------------------------------------
    _f(
        "tok_preset",
        "choice",
        "city_tokens",
        "Joint teacher",
        choices=(*[n for n, p in PRESETS.items() if p.space == "discrete" and len(p.teacher.shape) > 1], "custom"),
        help="Correlated answers over token positions; 'custom' opens an editable table.",
    ),
    _f("tok_objectives", "multi", ("forward_kl", "reverse_kl"), "Objectives (tokens)", choices=tuple(KINDS)),
    _f("tok_mu", "float", 0.5, "AKL μ", low=0.05, high=1.0, step=0.05, help="Head/tail split of adaptive KL."),
    _f("tok_steps", "int", 300, "Steps (tokens)", low=50, high=1000, step=50),
    _f("tok_inits", "int", 8, "Starts (tokens)", low=1, high=16, step=1),
    _f("tok_lr", "float", 0.1, "Learning rate (tokens)", low=0.01, high=0.5, step=0.01),
    _f("tok_seed", "int", 0, "Seed (tokens)", low=0, high=10_000, step=1),
    _f("tok_start", "int", 0, "Start shown", low=0, high=15, step=1, help="Which start the heatmaps show."),
    _f(
        "tok_next",
        "choice",
        "breakfast_next_token",
        "Next-token pair",
        choices=tuple(n for n, p in PRESETS.items() if p.space == "discrete" and len(p.teacher.shape) == 1),
    ),
    _f("tok_temp", "float", 1.0, "Temperature", low=0.1, high=3.0, step=0.05),
    _f("tok_topk", "int", 0, "Top-k (0 = off)", low=0, high=12, step=1),
    _f("tok_topp", "float", 1.0, "Top-p (1 = off)", low=0.05, high=1.0, step=0.05),
    _f(
        "tok_decode",
        "choice",
        "student",
        "Decode",
        choices=("student", "teacher"),
        help="Which distribution temperature and top-k/top-p act on; the teacher at T=1 is the reference.",
    ),
    # -- RL connection (app/views/rl.py) ---------------------------------------------------------------
    _f(
        "rl_part",
        "choice",
        "gradients",
        "Part",
        choices=("gradients", "regularised", "estimators", "ppo"),
        labels=(
            ("gradients", "1. Reverse KL is max-entropy RL"),
            ("regularised", "2. KL-regularised RL (RLHF)"),
            ("estimators", "3. KL estimators k1, k2, k3"),
            ("ppo", "4. PPO with a KL penalty"),
        ),
        help="gradients: reverse KL as max-entropy RL; regularised: the RLHF objective and its optimum π*; "
        "estimators: k1/k2/k3; ppo: PPO with a KL penalty on a bandit.",
    ),
    _f(
        "rl_setting",
        "choice",
        "gaussian",
        "Student (gradients)",
        choices=("gaussian", "categorical"),
        labels=(("gaussian", "1-D Gaussian"), ("categorical", "Categorical, 20 arms")),
        help="A 1-D Gaussian (mean, log std) or a categorical over 20 arms (logits), against a two-mode teacher.",
    ),
    _f("rl_samples", "int", 16, "Samples per gradient step", low=2, high=512, step=2),
    _f("rl_steps", "int", 300, "Adam steps", low=50, high=400, step=50),
    _f("rl_lr", "float", 0.05, "Learning rate", low=0.005, high=0.3, step=0.005),
    _f("rl_seed", "int", 0, "Seed", low=0, high=10_000, step=1),
    _f("rl_arms", "int", 24, "Responses (arms)", low=12, high=40, step=1),
    _f("rl_tilt", "float", 1.0, "Reward slope (r = slope·x)", low=-3.0, high=3.0, step=0.1),
    _f("rl_beta", "float", 0.5, "KL coefficient β", low=0.05, high=5.0, step=0.05),
    _f("rl_mu", "float", 1.0, "Separation μ (T = N(μ, 1))", low=0.1, high=3.0, step=0.1),
    _f("rl_kl_samples", "int", 2000, "Samples for the histograms", low=100, high=20_000, step=100),
    _f(
        "rl_penalty",
        "choice",
        "exact",
        "KL penalty",
        choices=("exact", "k1_reward", "k3_loss"),
        labels=(
            ("exact", "exact KL on the table"),
            ("k1_reward", "k1 in the reward (InstructGPT, TRL)"),
            ("k3_loss", "k3 as a loss (GRPO)"),
        ),
        help="exact: β·KL(π‖π_ref) on the whole table; k1_reward: −β·log(π_old/π_ref) added to each sample's "
        "reward (InstructGPT, TRL); k3_loss: β·k3 on the samples as a loss (GRPO).",
    ),
    _f("rl_updates", "int", 100, "PPO updates", low=10, high=200, step=10),
    _f("rl_batch", "int", 128, "Samples per update", low=16, high=512, step=16),
    _f("rl_epochs", "int", 4, "Epochs per update", low=1, high=8, step=1),
    _f("rl_clip", "float", 0.2, "Clip ε", low=0.05, high=0.5, step=0.05),
    _f("rl_ppo_lr", "float", 0.02, "PPO learning rate (Adam)", low=0.005, high=0.1, step=0.005),
    # -- language-model lab (app/views/lm.py) ------------------------------------------------------
    # (choices spelled out to keep torch out of this module; tests/test_lm_page.py checks them against kl_core.lm)
    _f(
        "lm_language",
        "choice",
        "cities",
        "Language",
        choices=("cities", "arithmetic", "stories"),
        labels=(
            ("cities", "Capitals, asked twice"),
            ("arithmetic", "Sums in three formats"),
            ("stories", "Story openings in three styles"),
        ),
        help="The synthetic teacher language: prompts with several valid answers (modes).",
    ),
    _f(
        "lm_teacher",
        "choice",
        "exact",
        "Teacher",
        choices=("exact", "neural"),
        labels=(("exact", "exact (the language's formula)"), ("neural", "neural (a transformer trained on it)")),
        help="The exact synthetic teacher, or a tiny transformer trained on its samples (shipped weights).",
    ),
    _f(
        "lm_context",
        "int",
        1,
        "Student context window",
        low=1,
        high=8,
        step=1,
        help="Tokens each position sees. 1 = a bigram model: it cannot remember which answer (mode) it started.",
    ),
    _f("lm_layers", "int", 1, "Student layers", low=1, high=3, step=1),
    _f("lm_width", "int", 32, "Student width", low=8, high=96, step=8),
    _f(
        "lm_methods",
        "multi",
        ("forward_kl", "reverse_kl"),
        "Methods",
        choices=("sft", "forward_kl", "reverse_kl", "on_policy_sampled", "gkd", "skew_forward_kl", "skew_reverse_kl"),
        labels=(
            ("sft", "SFT (max. likelihood)"),
            ("forward_kl", "forward KL"),
            ("reverse_kl", "reverse KL (on-policy)"),
            ("on_policy_sampled", "on-policy, sampled tokens"),
            ("gkd", "GKD"),
            ("skew_forward_kl", "skew forward KL"),
            ("skew_reverse_kl", "skew reverse KL"),
        ),
    ),
    _f("lm_beta", "float", 0.5, "GKD β", low=0.0, high=1.0, step=0.05, help="JSD(β): 0 = forward KL, 1 = reverse."),
    _f(
        "lm_lam",
        "float",
        0.5,
        "GKD λ",
        low=0.0,
        high=1.0,
        step=0.05,
        help="Share of student-generated batches (0 = teacher samples only, 1 = on-policy only).",
    ),
    _f("lm_alpha", "float", 0.1, "Skew α", low=0.0, high=0.95, step=0.05, help="Skew KL mixes α of the other side."),
    _f("lm_steps", "int", 300, "Steps (LM)", low=5, high=1000, step=5),
    _f("lm_seed", "int", 0, "Seed (LM)", low=0, high=10_000, step=1),
    _f("lm_device", "choice", "auto", "Device", choices=("auto", "cpu", "cuda"), help="auto = CUDA when available."),
    # -- guided lesson (app/views/lesson.py) -------------------------------------------------------
    _f("lesson_step", "int", 1, "Lesson step", low=1, high=N_STEPS, step=1, help="Jump to any step of the lesson."),
]

FIELDS: dict[str, Field] = {f.name: f for f in _FIELD_LIST}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in _FIELD_LIST}
RESERVED = ("hide", "embed")  # not controls: classroom links and embedding


def teacher_fields(modes: int) -> list[str]:
    """The weight/mean/std field names of the first ``modes`` teacher modes."""
    return [f"{c}{i}" for i in range(1, modes + 1) for c in "wms"]


def parse(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A complete state from query parameters, and a warning for every value that was rejected.

    Unknown keys are ignored with a warning; a bad value falls back to its default alone.
    Never raises.
    """
    state = dict(DEFAULTS)
    warnings: list[str] = []
    unknown: list[str] = []
    for key, raw in params.items():
        if key in RESERVED:
            continue
        field = FIELDS.get(str(key))
        if field is None:
            unknown.append(str(key))
            continue
        try:
            state[field.name] = field.parse(raw)
        except (ValueError, OverflowError, TypeError) as err:  # Field.parse raises ValueError only; belt and braces
            warnings.append(f"Ignored URL value: {err}; using the default {field.dump(field.default)}.")
    if unknown:  # one warning for them all: a link stuffed with keys must not stuff the page with warnings
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        names = ", ".join(quote(k) for k in unknown[:3])
        warnings.append(f"Ignored unknown URL parameter{'s' if len(unknown) > 1 else ''} {names}{more}.")
    return state, warnings


def to_query(state: Mapping[str, Any], keep: Mapping[str, str] | None = None) -> dict[str, str]:
    """Query parameters for ``state``: only values that differ from the defaults (plus ``keep``)."""
    out = {k: FIELDS[k].dump(v) for k, v in state.items() if k in FIELDS and v != DEFAULTS[k]}
    for k, v in (keep or {}).items():
        out[k] = v
    return out


def hidden_controls(params: Mapping[str, Any]) -> set[str]:
    """``hide=name1,name2`` -> the controls to hide (unknown names are ignored)."""
    raw = params.get("hide", "")
    text = raw[-1] if isinstance(raw, list) else raw
    return {n for n in str(text).split(",") if n in FIELDS}


def is_embed(params: Mapping[str, Any]) -> bool:
    raw = params.get("embed", "")
    text = raw[-1] if isinstance(raw, list) else raw
    return str(text).lower() in ("1", "true", "yes")
