"""Scenario: one lab experiment as a strictly validated JSON file (teacher, student, objectives, training, seed).

A scenario is everything needed to reproduce an animation of the 1-D or the 2-D lab: save it with
:meth:`Scenario.to_json`, restore it with :meth:`Scenario.from_json`, and run it with
:func:`scenario_runs` / :func:`scenario_figure` (the same fits and figures as the app). Reading a
file is ``json.loads`` and nothing else: nothing is executed or unpickled, the text is at most
64 KB, every key must be known, every value has its type and range (the app's control ranges),
and any mistake raises one ``ValueError`` naming the field.

The file (version 1; every section but ``version`` is optional and falls back to the defaults)::

    {
      "format": "kl-lab-scenario", "version": 1, "space": "1d",
      "preset": "bimodal",                       # a 1-D preset or "custom" (2-D: a 2-D preset)
      "teacher": [{"weight": 0.5, "mean": -3.0, "std": 1.0}, ...],   # 1-D only
      "student": {"family": "gaussian", "components": 2},             # 1-D only
      "objectives": [{"kind": "forward_kl"}, {"kind": "jsd", "beta": 0.5}],
      "estimator": {"name": "exact", "samples": 256},                 # 1-D only
      "training": {"lr": 0.05, "steps": 400, "inits": 8, "seed": 0},
      "animation": {"frame_ms": 80}
    }
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kl_core.distributions import Distribution, Gaussian, GaussianMixture
from kl_core.divergences import KINDS
from kl_core.fitting import fit
from kl_core.presets import PRESETS, starting_student

if TYPE_CHECKING:  # plotly is imported only when a figure is drawn
    import plotly.graph_objects as go

    from kl_core.viz.runs import Run

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "MAX_BYTES",
    "RANGES",
    "ESTIMATOR_OPTIONS",
    "Scenario",
    "start_student",
    "fit_1d",
    "fit_2d",
    "scenario_teacher",
    "scenario_runs",
    "scenario_figure",
]

FORMAT = "kl-lab-scenario"
SCHEMA_VERSION = 1
MAX_BYTES = 64 * 1024  # a scenario is a few hundred bytes; anything near this is not one
MAX_WHITESPACE = 8 * 1024  # bytes of spaces and line breaks: indented JSON of the largest scenario has ~1.5 KB
SHOWN_CHARS = 40  # a bad value is quoted in an error message cut to this many characters

# (low, high) of every number, the same as the app's controls (app/state.py; a test keeps them equal)
RANGES: dict[str, tuple[float, float]] = {
    "weight": (0.05, 1.0),
    "mean": (-10.0, 10.0),
    "std": (0.2, 4.0),
    "modes": (1, 6),
    "components": (1, 4),
    "beta": (0.0, 1.0),  # jsd
    "alpha": (-2.0, 3.0),  # alpha-divergence
    "skew": (0.0, 0.95),  # alpha of skew_forward_kl / skew_reverse_kl
    "samples": (16, 2048),
    "lr": (0.005, 0.5),
    "steps": (50, 1500),
    "inits": (1, 16),
    "seed": (0, 10_000),
    "frame_ms": (20, 400),
    "steps_2d": (50, 1000),
    "inits_2d": (1, 8),
}
SPACES = ("1d", "2d")
STUDENTS = ("gaussian", "gaussian_fixed_std", "mixture")
OBJECTIVES = tuple(k for k, v in KINDS.items() if not v.discrete_only)
MAX_OBJECTIVES = 8
PRESETS_1D = tuple(n for n, p in PRESETS.items() if p.space == "1d")
PRESETS_2D = tuple(n for n, p in PRESETS.items() if p.space == "2d")

# how the app's estimator choices map onto fit()'s keywords
ESTIMATOR_OPTIONS: dict[str, dict[str, str]] = {
    "exact": {"estimator": "exact"},
    "off_policy": {"estimator": "mc", "sampler": "teacher"},
    "on_policy_pathwise": {"estimator": "mc", "sampler": "student", "gradient": "pathwise"},
    "on_policy_score": {"estimator": "mc", "sampler": "student", "gradient": "score"},
}

Mode = tuple[float, float, float]  # (weight, mean, std)
ObjectiveSpec = tuple[str, tuple[tuple[str, float], ...]]  # (kind, sorted (name, value) params)

# the parameter each objective takes, the RANGES entry that bounds it, and its default
_OBJECTIVE_PARAMS: dict[str, tuple[str, str, float]] = {
    "jsd": ("beta", "beta", 0.5),
    "alpha": ("alpha", "alpha", 0.5),
    "skew_forward_kl": ("alpha", "skew", 0.1),
    "skew_reverse_kl": ("alpha", "skew", 0.1),
}


def _spec(teacher: GaussianMixture) -> tuple[Mode, ...]:
    """A preset teacher's modes, rounded as the app's editor holds them."""
    return tuple(
        (round(float(w), 4), round(float(m), 4), round(float(s), 4))
        for w, m, s in zip(teacher.weights, teacher.means, teacher.stds)
    )


# -- checks: each raises ValueError naming the field ------------------------------------------------


def _shown(value: Any) -> str:
    """``repr(value)`` cut to SHOWN_CHARS characters: an error never echoes a 60 KB string or a 400-digit number."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**SHOWN_CHARS:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _number(field: str, value: Any, kind: str, key: str) -> float | int:
    """``value`` as an int (kind "int") or a float, within ``RANGES[key]``.

    Integers of any size are compared exactly (never converted to float first, which overflows).
    """
    low, high = RANGES[key]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{field} must be an integer in [{low:g}, {high:g}], got {_shown(value)}")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number in [{low:g}, {high:g}], got {_shown(value)}")
    finite = isinstance(value, int) or math.isfinite(value)
    if not (finite and low <= value <= high):
        raise ValueError(f"{field} must be in [{low:g}, {high:g}], got {_shown(value)}")
    return int(value) if kind == "int" else float(value)


def _choice(field: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}, got {_shown(value)}")
    return value


def _section(field: str, value: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``value`` as a JSON object whose keys are all in ``keys``."""
    if not isinstance(value, dict):
        raise ValueError(f"{field} must be a JSON object, got {type(value).__name__}")
    unknown = [k for k in value if k not in keys]
    if unknown:
        raise ValueError(f"{field} has unknown key {_shown(unknown[0])}; allowed: {', '.join(keys)}")
    return value


def _list(field: str, value: Any, low: int, high: int) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a JSON list, got {type(value).__name__}")
    if not low <= len(value) <= high:
        raise ValueError(f"{field} must hold {low} to {high} entries, got {len(value)}")
    return value


@dataclass(frozen=True)
class Scenario:
    """One experiment of the 1-D or 2-D lab; validated at construction (ValueError naming the field).

    Examples:
        >>> s = Scenario(preset="bimodal", objectives=(("forward_kl", ()), ("jsd", (("beta", 0.3),))))
        >>> Scenario.from_json(s.to_json()) == s
        True
        >>> Scenario.from_json('{"version": 1, "training": {"steps": 9}}')
        Traceback (most recent call last):
        ...
        ValueError: training.steps must be in [50, 1500], got 9
    """

    space: str = "1d"  # "1d" (kl_core.viz.animation_1d) or "2d" (animation_2d)
    preset: str = "bimodal"  # 1-D: a 1-D preset or "custom"; 2-D: a 2-D preset (its teacher and start)
    teacher: tuple[Mode, ...] = ()  # 1-D modes (weight, mean, std); () = the preset's teacher
    student: str = "gaussian"  # 1-D: gaussian | gaussian_fixed_std | mixture
    components: int = 2  # 1-D mixture student: K
    objectives: tuple[ObjectiveSpec, ...] = (("forward_kl", ()), ("reverse_kl", ()))  # one column each
    estimator: str = "exact"  # 1-D: a key of ESTIMATOR_OPTIONS
    samples: int = 256  # 1-D Monte-Carlo samples per step
    lr: float = 0.05  # learning rate
    steps: int = 400  # optimisation steps
    inits: int = 8  # starts (start 0 is the preset's / neutral student, the others random)
    seed: int = 0  # seed of the random starts and Monte-Carlo samples
    frame_ms: int = 80  # animation: milliseconds per frame at 1x

    def __post_init__(self) -> None:
        _choice("space", self.space, SPACES)
        two_d = self.space == "2d"
        _choice("preset", self.preset, PRESETS_2D if two_d else (*PRESETS_1D, "custom"))
        if two_d:
            if self.teacher:
                raise ValueError("teacher must be empty for a 2d scenario (its preset defines the teacher)")
        else:
            if not self.teacher and self.preset == "custom":
                raise ValueError("teacher is required when preset is 'custom'")
            if not self.teacher:
                object.__setattr__(self, "teacher", _spec(PRESETS[self.preset].teacher))
            object.__setattr__(self, "teacher", self._checked_teacher(self.teacher))
            if self.preset != "custom" and not _same_modes(self.teacher, _spec(PRESETS[self.preset].teacher)):
                raise ValueError(f"teacher differs from preset {self.preset!r}'s; set preset to 'custom' to edit it")
        if two_d:
            unused = [n for n in _ONLY_1D if getattr(self, n) != _DEFAULTS_1D[n]]
            if unused:
                raise ValueError(f"{unused[0]} is not used by a 2d scenario; leave it at its default")
        _choice("student", self.student, STUDENTS)
        object.__setattr__(self, "components", _number("components", self.components, "int", "components"))
        object.__setattr__(self, "objectives", _checked_objectives(self.objectives))
        _choice("estimator", self.estimator, tuple(ESTIMATOR_OPTIONS))
        object.__setattr__(self, "samples", _number("samples", self.samples, "int", "samples"))
        object.__setattr__(self, "lr", _number("lr", self.lr, "float", "lr"))
        object.__setattr__(self, "steps", _number("steps", self.steps, "int", "steps_2d" if two_d else "steps"))
        object.__setattr__(self, "inits", _number("inits", self.inits, "int", "inits_2d" if two_d else "inits"))
        object.__setattr__(self, "seed", _number("seed", self.seed, "int", "seed"))
        object.__setattr__(self, "frame_ms", _number("frame_ms", self.frame_ms, "int", "frame_ms"))

    @staticmethod
    def _checked_teacher(modes: Any) -> tuple[Mode, ...]:
        if not isinstance(modes, (tuple, list)):
            raise ValueError(f"teacher must be a list of (weight, mean, std) modes, got {type(modes).__name__}")
        low, high = RANGES["modes"]
        if not low <= len(modes) <= high:
            raise ValueError(f"teacher must have {low:g} to {high:g} modes, got {len(modes)}")
        out = []
        for i, mode in enumerate(modes):
            if not isinstance(mode, (tuple, list)) or len(mode) != 3:
                raise ValueError(f"teacher[{i}] must be (weight, mean, std), got {_shown(mode)}")
            out.append(
                tuple(_number(f"teacher[{i}].{n}", v, "float", n) for n, v in zip(("weight", "mean", "std"), mode))
            )
        return tuple(out)

    # -- JSON -------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this scenario (only the sections its space uses)."""
        out: dict[str, Any] = {"format": FORMAT, "version": SCHEMA_VERSION, "space": self.space, "preset": self.preset}
        if self.space == "1d":
            out["teacher"] = [{"weight": w, "mean": m, "std": s} for w, m, s in self.teacher]
            out["student"] = {"family": self.student, "components": self.components}
        out["objectives"] = [{"kind": kind, **dict(params)} for kind, params in self.objectives]
        if self.space == "1d":
            out["estimator"] = {"name": self.estimator, "samples": self.samples}
        out["training"] = {"lr": self.lr, "steps": self.steps, "inits": self.inits, "seed": self.seed}
        out["animation"] = {"frame_ms": self.frame_ms}
        return out

    def to_json(self) -> str:
        """The scenario as indented JSON text (what :meth:`from_json` reads back to an equal Scenario)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """A Scenario from a parsed JSON object; ValueError naming the first bad field."""
        top = _section("scenario", data, ("format", "version", "space", "preset", "teacher", "student",
                                           "objectives", "estimator", "training", "animation"))  # fmt: skip
        if "version" not in top:
            raise ValueError(f"version is missing; this reader reads version {SCHEMA_VERSION}")
        if isinstance(top["version"], bool) or top["version"] != SCHEMA_VERSION:
            raise ValueError(f"version must be {SCHEMA_VERSION}, got {_shown(top['version'])}")
        if "format" in top and top["format"] != FORMAT:
            raise ValueError(f"format must be {FORMAT!r}, got {_shown(top['format'])}")
        space = _choice("space", top.get("space", "1d"), SPACES)
        kw: dict[str, Any] = {"space": space}
        if "preset" in top:
            kw["preset"] = top["preset"]
        elif space == "2d":
            kw["preset"] = PRESETS_2D[0]
        elif "teacher" in top:
            kw["preset"] = "custom"
        if space == "2d":
            extra = [k for k in ("teacher", "student", "estimator") if k in top]
            if extra:
                raise ValueError(f"{extra[0]} is not used by a 2d scenario (its preset defines teacher and student)")
        if "teacher" in top:
            modes = _list("teacher", top["teacher"], *map(int, RANGES["modes"]))
            kw["teacher"] = tuple(
                _mode_from_json(f"teacher[{i}]", _section(f"teacher[{i}]", m, ("weight", "mean", "std")))
                for i, m in enumerate(modes)
            )
        if "student" in top:
            student = _section("student", top["student"], ("family", "components"))
            if "family" in student:
                kw["student"] = _choice("student.family", student["family"], STUDENTS)
            if "components" in student:
                kw["components"] = _number("student.components", student["components"], "int", "components")
        if "objectives" in top:
            items = _list("objectives", top["objectives"], 1, MAX_OBJECTIVES)
            kw["objectives"] = tuple(_objective_from_json(f"objectives[{i}]", o) for i, o in enumerate(items))
        if "estimator" in top:
            est = _section("estimator", top["estimator"], ("name", "samples"))
            if "name" in est:
                kw["estimator"] = _choice("estimator.name", est["name"], tuple(ESTIMATOR_OPTIONS))
            if "samples" in est:
                kw["samples"] = _number("estimator.samples", est["samples"], "int", "samples")
        if "training" in top:
            train = _section("training", top["training"], ("lr", "steps", "inits", "seed"))
            for name, kind in (("lr", "float"), ("steps", "int"), ("inits", "int"), ("seed", "int")):
                if name in train:
                    key = f"{name}_2d" if space == "2d" and name in ("steps", "inits") else name
                    kw[name] = _number(f"training.{name}", train[name], kind, key)
        if "animation" in top:
            anim = _section("animation", top["animation"], ("frame_ms",))
            if "frame_ms" in anim:
                kw["frame_ms"] = _number("animation.frame_ms", anim["frame_ms"], "int", "frame_ms")
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str | bytes) -> Scenario:
        """A Scenario from JSON text (at most 64 KB); ValueError with a message naming the bad field.

        Only ``json.loads`` reads the text (NaN and Infinity are refused): nothing is executed.
        """
        if isinstance(text, (bytes, bytearray)):
            if len(text) > MAX_BYTES:
                raise ValueError(f"scenario file is {len(text)} bytes; the limit is {MAX_BYTES} (64 KB)")
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError("scenario file is not UTF-8 text") from None
        if not isinstance(text, str):
            raise ValueError(f"scenario must be JSON text, got {type(text).__name__}")
        if len(text.encode("utf-8")) > MAX_BYTES:
            raise ValueError(f"scenario file is {len(text.encode('utf-8'))} bytes; the limit is {MAX_BYTES} (64 KB)")
        blank = sum(c.isspace() for c in text)
        if blank > MAX_WHITESPACE:
            raise ValueError(
                f"scenario file holds {blank} bytes of whitespace; a scenario file has at most {MAX_WHITESPACE} "
                "(it is a few hundred bytes of JSON)"
            )
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as err:
            raise ValueError(f"scenario file is not valid JSON: {err}") from None
        except RecursionError:
            raise ValueError("scenario file is nested too deeply") from None
        except _RefusedConstant:
            raise
        except ValueError:  # json.loads' other refusal: an integer of more than 4300 digits (Python's limit)
            raise ValueError("scenario file holds a number of more than 4300 digits, which is no number here") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (validated again)."""
        return Scenario(**{**asdict(self), **changes})


_ONLY_1D = ("student", "components", "estimator", "samples")
_DEFAULTS_1D = {"student": "gaussian", "components": 2, "estimator": "exact", "samples": 256}


def _params_text(params: Sequence[tuple[str, float]]) -> str:
    return ", ".join(f"{n}={v:g}" for n, v in params) or "no parameters"


class _RefusedConstant(ValueError):
    """NaN, Infinity or -Infinity in the file (json.loads accepts them; a scenario does not)."""


def _refuse_constant(name: str) -> Any:
    raise _RefusedConstant(f"scenario file holds {name}, which is not a JSON number")


def _same_modes(a: Sequence[Mode], b: Sequence[Mode]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= 1e-6 for ma, mb in zip(a, b) for x, y in zip(ma, mb))


def _mode_from_json(field: str, mode: dict[str, Any]) -> Mode:
    missing = [k for k in ("weight", "mean", "std") if k not in mode]
    if missing:
        raise ValueError(f"{field}.{missing[0]} is missing")
    return tuple(_number(f"{field}.{k}", mode[k], "float", k) for k in ("weight", "mean", "std"))


def _objective_from_json(field: str, item: Any) -> ObjectiveSpec:
    if not isinstance(item, dict):
        raise ValueError(f'{field} must be a JSON object like {{"kind": "reverse_kl"}}, got {_shown(item)}')
    if "kind" not in item:
        raise ValueError(f"{field}.kind is missing")
    kind = _choice(f"{field}.kind", item["kind"], OBJECTIVES)
    param = _OBJECTIVE_PARAMS.get(kind)
    _section(field, item, ("kind", param[0]) if param else ("kind",))
    if param and param[0] in item:
        return kind, ((param[0], _number(f"{field}.{param[0]}", item[param[0]], "float", param[1])),)
    return kind, ()


def _checked_objectives(objectives: Any) -> tuple[ObjectiveSpec, ...]:
    """Objectives with their parameter filled in (a kind with a parameter always names it)."""
    if not isinstance(objectives, (tuple, list)) or not 1 <= len(objectives) <= MAX_OBJECTIVES:
        raise ValueError(f"objectives must hold 1 to {MAX_OBJECTIVES} (kind, params) entries, got {_shown(objectives)}")
    out: list[ObjectiveSpec] = []
    for i, entry in enumerate(objectives):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise ValueError(f"objectives[{i}] must be (kind, params), got {_shown(entry)}")
        kind = _choice(f"objectives[{i}].kind", entry[0], OBJECTIVES)
        params = dict(entry[1])
        param = _OBJECTIVE_PARAMS.get(kind)
        allowed = (param[0],) if param else ()
        unknown = [k for k in params if k not in allowed]
        if unknown:
            raise ValueError(f"objectives[{i}] ({kind}) has unknown parameter {_shown(unknown[0])}")
        spec: ObjectiveSpec = (kind, ())
        if param:
            value = _number(f"objectives[{i}].{param[0]}", params.get(param[0], param[2]), "float", param[1])
            spec = (kind, ((param[0], value),))
        if spec in out:
            raise ValueError(f"objectives[{i}] repeats {kind} with the same parameters")
        if any(kind == k for k, _ in out):  # one panel per kind: two βs of one jsd would share its title
            before = next(p for k, p in out if k == kind)
            raise ValueError(
                f"objectives[{i}] repeats {kind} ({_params_text(spec[1])} after {_params_text(before)}); "
                "a scenario holds each kind once"
            )
        out.append(spec)
    return tuple(out)


# -- running a scenario: the app's code paths ---------------------------------------------------------


def start_student(teacher: GaussianMixture, preset: str, student: str, k: int) -> Gaussian | GaussianMixture:
    """Start 0 of the 1-D lab: the preset's own student when it fits the choice, else a neutral start."""
    if student == "mixture":
        return starting_student(teacher, k)
    if preset in PRESETS and PRESETS[preset].space == "1d":
        return PRESETS[preset].student
    return starting_student(teacher, 1)


def fit_1d(
    spec: Sequence[Mode],
    preset: str,
    student: str,
    k: int,
    objectives: Sequence[ObjectiveSpec],
    estimator: str,
    samples: int,
    lr: float,
    steps: int,
    inits: int,
    seed: int,
) -> list[Run]:
    """One fit per objective, same teacher, start and seed: the 1-D lab's experiment."""
    from kl_core.viz.runs import Run

    w, m, s = zip(*spec)
    teacher = GaussianMixture(list(w), list(m), list(s))
    start = start_student(teacher, preset, student, k)
    learn = ("mean",) if student == "gaussian_fixed_std" else None
    options = {**ESTIMATOR_OPTIONS[estimator], "n": int(samples)}
    return [
        Run(
            kind,
            dict(params),
            fit(
                teacher, start, kind, steps=steps, lr=lr, inits=inits, seed=seed, learn=learn, **options, **dict(params)
            ),
        )
        for kind, params in objectives
    ]


def fit_2d(preset: str, objectives: Sequence[ObjectiveSpec], steps: int, inits: int, lr: float, seed: int) -> list[Run]:
    """One fit per objective of a 2-D preset's teacher from its student: the 2-D lab's experiment."""
    from kl_core.viz.runs import Run

    p = PRESETS[preset]
    settings = {k: v for k, v in p.settings.items() if k not in ("steps", "inits", "lr")}
    return [
        Run(
            kind,
            dict(params),
            fit(p.teacher, p.student, kind, steps=steps, lr=lr, inits=inits, seed=seed, **settings, **dict(params)),
        )
        for kind, params in objectives
    ]


def scenario_teacher(scenario: Scenario) -> Distribution:
    if scenario.space == "2d":
        return PRESETS[scenario.preset].teacher
    w, m, s = zip(*scenario.teacher)
    return GaussianMixture(list(w), list(m), list(s))


def scenario_runs(scenario: Scenario) -> list[Run]:
    """The fits of a scenario, exactly as its lab page computes them."""
    if scenario.space == "2d":
        return fit_2d(scenario.preset, scenario.objectives, scenario.steps, scenario.inits, scenario.lr, scenario.seed)
    return fit_1d(
        scenario.teacher,
        scenario.preset,
        scenario.student,
        scenario.components,
        scenario.objectives,
        scenario.estimator,
        scenario.samples,
        scenario.lr,
        scenario.steps,
        scenario.inits,
        scenario.seed,
    )


def scenario_figure(scenario: Scenario, *, n_frames: int | None = None, runs: Sequence[Run] | None = None) -> go.Figure:
    """The lab's animation of a scenario (``animation_1d`` / ``animation_2d``, as the pages draw it).

    Args:
        scenario: what to fit and draw.
        n_frames: at most this many animation frames (default: as the pages draw, 40 in 1-D, 50 in 2-D).
        runs: the scenario's fits if already computed (default: :func:`scenario_runs`).
    """
    from kl_core.viz import animation_1d, animation_2d

    runs = scenario_runs(scenario) if runs is None else runs
    teacher = scenario_teacher(scenario)
    if scenario.space == "2d":
        return animation_2d(teacher, runs, n_frames=n_frames or 50, frame_ms=scenario.frame_ms)
    return animation_1d(teacher, runs, n_frames=n_frames or 40, frame_ms=scenario.frame_ms)
