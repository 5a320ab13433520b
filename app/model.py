"""From plain app values to kl_core results: teachers, students, objectives and the fits of each page.

No streamlit here: every function takes plain, hashable values (so the pages can cache them with
``st.cache_data``) and returns immutable kl_core results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import kl_core as kc
from app import state as schema
from kl_core import budget
from kl_core.presets import PRESETS, starting_student
from kl_core.scenario import ESTIMATOR_OPTIONS, fit_1d, fit_2d
from kl_core.scenario import start_student as _student
from kl_core.viz import Run, run_summaries

__all__ = [
    "TeacherSpec",
    "ObjectiveSpec",
    "teacher_spec",
    "teacher_fields",
    "start_state",
    "teacher_from_spec",
    "objective_specs",
    "fit_options",
    "lab_1d_args",
    "lab_1d_runs",
    "landscape_pair",
    "sweep_fits",
    "capacity_fits",
    "lab_2d_runs",
    "family_calls",
    "lab_2d_call",
    "kept_runs",
    "summaries_1d",
    "summaries_2d",
]

TeacherSpec = tuple[tuple[float, float, float], ...]  # (weight, mean, std) per mode
ObjectiveSpec = tuple[str, tuple[tuple[str, float], ...]]  # (kind, sorted params)

CAPACITY_TEACHER = "five_modes"


def teacher_spec(state: Mapping[str, Any]) -> TeacherSpec:
    """The teacher's modes from the editor's fields (the first ``modes`` of them)."""
    return tuple(
        (float(state[f"w{i}"]), float(state[f"m{i}"]), float(state[f"s{i}"])) for i in range(1, state["modes"] + 1)
    )


def teacher_fields(spec: TeacherSpec) -> dict[str, Any]:
    """The editor's fields for a teacher (``modes``, ``w1``, ``m1``, ``s1``, ...), clamped to the sliders' ranges."""
    out: dict[str, Any] = {"modes": len(spec)}
    for i, (w, m, s) in enumerate(spec, start=1):
        out[f"w{i}"] = min(max(w, 0.05), 1.0)
        out[f"m{i}"] = min(max(m, -10.0), 10.0)
        out[f"s{i}"] = min(max(s, 0.2), 4.0)
    return out


def start_state(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A session's first state from its URL's query (and the warnings about values that fell back).

    A named preset defines the teacher: the mode fields follow it.
    """
    state, warnings = schema.parse(params)
    if state["preset"] in PRESETS:
        state.update(teacher_fields(spec_from_teacher(PRESETS[state["preset"]].teacher)))
    return state, warnings


def teacher_from_spec(spec: TeacherSpec) -> kc.GaussianMixture:
    w, m, s = zip(*spec)
    return kc.GaussianMixture(list(w), list(m), list(s))


def spec_from_teacher(teacher: kc.GaussianMixture) -> TeacherSpec:
    return tuple(
        (round(float(w), 4), round(float(m), 4), round(float(s), 4))
        for w, m, s in zip(teacher.weights, teacher.means, teacher.stds)
    )


def objective_params(kind: str, state: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """The parameters the page's controls give to ``kind`` (β for jsd, α for alpha and skews)."""
    if kind == "jsd":
        return (("beta", float(state["beta"])),)
    if kind == "alpha":
        return (("alpha", float(state["alpha"])),)
    if kind in ("skew_forward_kl", "skew_reverse_kl"):
        return (("alpha", float(state["skew"])),)
    return ()


def objective_specs(kinds: Sequence[str], state: Mapping[str, Any]) -> tuple[ObjectiveSpec, ...]:
    return tuple((k, objective_params(k, state)) for k in kinds)


def fit_options(estimator: str, samples: int) -> dict[str, Any]:
    """``fit`` keywords for an estimator choice of the app."""
    return {**ESTIMATOR_OPTIONS[estimator], "n": int(samples)}


def lab_1d_args(
    state: Mapping[str, Any], kinds: Sequence[str], student: str | None = None, k: int | None = None
) -> tuple:
    """The plain, hashable arguments of :func:`lab_1d_runs` / :func:`lab_1d` for a page's state."""
    return (
        teacher_spec(state),
        state["preset"],
        state["student"] if student is None else student,
        state["k"] if k is None else k,
        objective_specs(kinds, state),
        state["estimator"],
        state["samples"],
        state["lr"],
        state["steps"],
        state["inits"],
        state["seed"],
    )


def lab_1d_runs(
    spec: TeacherSpec,
    preset: str,
    student: str,
    k: int,
    objectives: tuple[ObjectiveSpec, ...],
    estimator: str,
    samples: int,
    lr: float,
    steps: int,
    inits: int,
    seed: int,
) -> list[Run]:
    """One fit per objective, same teacher, start and seed: the page-1 experiment (kl_core.scenario.fit_1d)."""
    return fit_1d(spec, preset, student, k, objectives, estimator, samples, lr, steps, inits, seed)


def landscape_pair(
    spec: TeacherSpec, left: ObjectiveSpec, right: ObjectiveSpec, grid: int
) -> tuple[kc.Landscape, kc.Landscape]:
    teacher = teacher_from_spec(spec)
    return tuple(kc.landscape(teacher, kind, n=grid, **dict(params)) for kind, params in (left, right))


def sweep_fits(
    spec: TeacherSpec, preset: str, sweep: str, points: int, lr: float, steps: int, inits: int, seed: int
) -> tuple[list[tuple[float, kc.Trajectory]], list[str]]:
    """Fits along the α (alpha-divergence, from -0.5 to 1.5) or β (jsd, 0 to 1) family.

    Returns the fits and a note for every value that could not be fitted (an α outside [0, 1]
    can make the divergence infinite for a start: then that value is skipped, and said so).
    """
    teacher = teacher_from_spec(spec)
    start = _student(teacher, preset, "gaussian", 1)
    kind = "alpha" if sweep == "alpha" else "jsd"
    values = np.linspace(-0.5, 1.5, points) if sweep == "alpha" else np.linspace(0.0, 1.0, points)
    fits, notes = [], []
    for v in values:
        v = round(float(v), 4)
        try:
            traj = kc.fit(teacher, start, kind, steps=steps, lr=lr, inits=inits, seed=seed, **{sweep: v})
        except ValueError as err:
            notes.append(f"{sweep} = {v:g}: {err}")
            continue
        fits.append((v, traj))
    return fits, notes


def capacity_fits(
    kmax: int, lr: float, steps: int, inits: int, seed: int
) -> dict[str, list[tuple[int, kc.Trajectory]]]:
    """Mixture students with K = 1..kmax components against the five-mode teacher, both KLs."""
    teacher = kc.PRESETS[CAPACITY_TEACHER].teacher
    out: dict[str, list[tuple[int, kc.Trajectory]]] = {}
    for kind in ("forward_kl", "reverse_kl"):
        out[kind] = [
            (k, kc.fit(teacher, starting_student(teacher, k), kind, steps=steps, lr=lr, inits=inits, seed=seed))
            for k in range(1, kmax + 1)
        ]
    return out


def family_calls(state: Mapping[str, Any]) -> tuple[tuple, tuple, budget.Plan]:
    """The family page's work for a state: (:func:`sweep_fits` arguments, :func:`capacity_fits` arguments,
    the budget's plan of starts and steps)."""
    plan = budget.plan(budget.seconds_family(state["points"], state["kmax"]), state["inits"], state["steps"])
    sweep = (teacher_spec(state), state["preset"], state["sweep"], state["points"], state["lr"])
    sweep += (plan.steps, plan.inits, state["seed"])
    capacity = (state["kmax"], state["lr"], plan.steps, min(plan.inits, 4), state["seed"])
    return sweep, capacity, plan


def lab_2d_call(state: Mapping[str, Any]) -> tuple[tuple, budget.Plan]:
    """The 2-D lab's work for a state: (:func:`lab_2d_runs` arguments, the budget's plan of starts and steps)."""
    kinds = state["objectives2d"]
    plan = budget.plan(budget.seconds_2d(state["preset2d"], kinds), state["inits2d"], state["steps2d"])
    args = (state["preset2d"], objective_specs(kinds, state), plan.steps, plan.inits, state["lr2d"], state["seed"])
    return args, plan


def lab_2d_runs(
    preset: str, objectives: tuple[ObjectiveSpec, ...], steps: int, inits: int, lr: float, seed: int
) -> list[Run]:
    """One fit per objective of a 2-D preset (kl_core.scenario.fit_2d)."""
    return fit_2d(preset, objectives, steps, inits, lr, seed)


def kept_runs(runs: Sequence[Run]) -> list[Run]:
    """The runs without their dropped starts (``Trajectory.kept_only``), as the pages draw and summarise them."""
    return [replace(run, trajectory=run.trajectory.kept_only()) for run in runs]


Summaries = list[list[kc.StudentSummary | None]]


def summaries_1d(args: tuple, _runs: Sequence[Run]) -> Summaries:
    """Every final student's summary (the page's table and captions); ``_runs`` is ``lab_1d_runs(*args)``.

    Separate from :func:`lab_1d_runs`, so that a page can send its figure before computing them.
    Cached on ``args`` alone: the leading underscore tells ``st.cache_data`` not to hash ``_runs``.
    """
    teacher = teacher_from_spec(args[0])
    return [run_summaries(teacher, run) for run in _runs]


def summaries_2d(args: tuple, _runs: Sequence[Run]) -> Summaries:
    """:func:`summaries_1d` for the 2-D lab: ``_runs`` is ``lab_2d_runs(*args)``, cached on ``args``."""
    teacher = kc.PRESETS[args[0]].teacher
    return [run_summaries(teacher, run) for run in _runs]
