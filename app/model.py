"""From plain app values to kl_core results: teachers, students, objectives and the fits of each page.

No streamlit here: every function takes plain, hashable values (so the pages can cache them with
``st.cache_data``) and returns immutable kl_core results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import kl_core as kc
from kl_core.presets import starting_student
from kl_core.scenario import ESTIMATOR_OPTIONS, fit_1d, fit_2d
from kl_core.scenario import start_student as _student
from kl_core.viz import Run, run_summaries

__all__ = [
    "TeacherSpec",
    "ObjectiveSpec",
    "teacher_spec",
    "teacher_from_spec",
    "objective_specs",
    "fit_options",
    "lab_1d_args",
    "lab_1d_runs",
    "landscape_pair",
    "sweep_fits",
    "capacity_fits",
    "lab_2d_runs",
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


def lab_2d_runs(
    preset: str, objectives: tuple[ObjectiveSpec, ...], steps: int, inits: int, lr: float, seed: int
) -> list[Run]:
    """One fit per objective of a 2-D preset (kl_core.scenario.fit_2d)."""
    return fit_2d(preset, objectives, steps, inits, lr, seed)


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
