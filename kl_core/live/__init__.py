"""The live lab's Python side: problem() writes one 1-D fit as a JSON-able dict for the browser engine.

The in-browser engine (``engine.js`` beside this file: plain ES module, no DOM, no dependency) runs
what ``kc.fit`` runs, from what this dict holds: the teacher, the student family and which of its
parameters learn, the objective and its parameters, the estimator, the optimiser and its
settings, the starts exactly as ``kc.fit`` draws them for the seed, and the integration grid
(nodes and trapezoid weights) exactly as ``kc.fit`` builds it. ``kl_core`` is the engine's oracle:
``tests/test_live_engine.py`` runs both and compares every parameter of every start at every step.

Examples:
    >>> import kl_core as kc
    >>> from kl_core.live import problem
    >>> t = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])
    >>> p = problem(t, kc.Gaussian(1.8, 1.0), "reverse_kl", steps=400, lr=0.05, inits=8, seed=0)
    >>> len(p["starts"]), len(p["starts"][0]), p["grid"]["n"]
    (8, 2, 2048)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kl_core.distributions import Distribution, GaussianMixture, _GaussianComponents
from kl_core.divergences import kl_direction, resolve
from kl_core.families import GaussianMixture1D, family_for
from kl_core.fitting import _check_int, _fit_box, _fit_grid, fit

__all__ = ["FORMAT", "VERSION", "problem", "teacher_dict"]

FORMAT = "kl-lab-live-problem"
VERSION = 1
MAX_TEACHER_MODES = 6  # the widget's teacher editor; the engine itself takes any count
MAX_STUDENT_COMPONENTS = 4
_ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}  # kl_core.fitting.adam's defaults


def teacher_dict(teacher: Distribution) -> dict[str, list[float]]:
    """A 1-D Gaussian (mixture) teacher as ``{"weights", "means", "stds"}`` (weights normalised)."""
    if not (isinstance(teacher, _GaussianComponents) and teacher.univariate):
        raise ValueError(f"teacher must be a 1-D Gaussian or GaussianMixture, got {type(teacher).__name__}")
    w, mu, cov = teacher.components()
    stds = teacher.stds if isinstance(teacher, GaussianMixture) else np.array([teacher.std])
    return {"weights": w.tolist(), "means": mu[:, 0].tolist(), "stds": [float(s) for s in np.atleast_1d(stds)]}


def problem(
    teacher: Distribution,
    student: Distribution,
    objective: str = "reverse_kl",
    *,
    steps: int = 400,
    lr: float = 0.05,
    inits: int = 8,
    seed: int = 0,
    learn: tuple[str, ...] | str | None = None,
    optimizer: str = "adam",
    estimator: str = "exact",
    gradient: str = "pathwise",
    sampler: str | None = None,
    n: int = 256,
    grid: int | None = None,
    **objective_params: Any,
) -> dict[str, Any]:
    """Everything the browser engine needs to run ``kc.fit`` with these arguments, as plain JSON values.

    Args:
        teacher: a 1-D Gaussian or GaussianMixture.
        student: start 0: a 1-D Gaussian, or a 1-D GaussianMixture of 1 to 4 components.
        objective: a continuous divergence kind; its parameters as keywords (``beta``, ``alpha``).
        steps, lr, inits, seed, learn, n, grid: as :func:`kl_core.fit` (``learn=("mean",)`` is the
            fixed-std student).
        optimizer: ``"adam"`` or ``"sgd"`` (``kc.fit``'s defaults for each).
        estimator, gradient, sampler: as :func:`kl_core.fit`; the engine's Monte Carlo uses its
            own seeded generator (it cannot reproduce numpy's stream).

    Returns:
        A dict with ``teacher``, ``family``, ``objective``, ``estimator``, ``optimizer``, ``steps``,
        ``inits``, ``seed``, ``starts`` ((inits, P) as ``Trajectory.params[0]``), ``grid``
        (``box``, ``n``, ``x``, ``w``) and ``scale`` (the teacher's std, which bounds the stds).
    """
    t = teacher_dict(teacher)
    k, par = resolve(objective, objective_params)
    if k.discrete_only:
        raise ValueError(f"{objective} is defined for discrete distributions only")
    if not (isinstance(student, _GaussianComponents) and student.univariate):
        raise ValueError(f"student must be a 1-D Gaussian or GaussianMixture, got {type(student).__name__}")
    if not 1 <= student.n_components <= MAX_STUDENT_COMPONENTS:
        raise ValueError(f"student must have 1 to {MAX_STUDENT_COMPONENTS} components, got {student.n_components}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if estimator == "mc" and k.integrand is None:
        raise ValueError(f"{objective} has no Monte-Carlo estimator; use estimator='exact'")
    _check_int("steps", steps, 0, 100_000)
    # kc.fit itself validates everything else and draws the starts: row 0 of a 0-step fit
    start = fit(
        teacher,
        student,
        objective,
        steps=0,
        lr=lr,
        inits=inits,
        seed=seed,
        learn=learn,
        estimator=estimator,
        gradient=gradient,
        sampler=sampler,
        n=n,
        optimizer=optimizer,
        grid=grid,
        **par,
    )
    family = family_for(student)
    assert isinstance(family, GaussianMixture1D)
    starts = np.array(start.params[0])
    box = _fit_box(teacher, [family.unpack(s) for s in starts])
    x, w = _fit_grid(teacher, box, grid)
    use_sampler = sampler or ("teacher" if k.sampler == "teacher" else "student")
    est: dict[str, Any] = {"name": estimator}
    if estimator == "mc":
        est.update(sampler=use_sampler, gradient=gradient if use_sampler == "student" else None, samples=int(n))
    opt = (
        {"name": "adam", "lr": float(lr), **_ADAM}
        if optimizer == "adam"
        else {"name": "sgd", "lr": float(lr), "momentum": 0.0}
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "teacher": t,
        "family": {
            "kind": family.kind,
            "components": family.K,
            "param_names": list(family.param_names),
            "mask": family.mask(learn).tolist(),
        },
        "objective": {"kind": k.name, "params": par, "direction": kl_direction(k.name, par)},
        "estimator": est,
        "optimizer": opt,
        "steps": int(steps),
        "inits": int(inits),
        "seed": int(seed),
        "starts": starts.tolist(),
        "grid": {"box": box[0].tolist(), "n": int(x.size), "x": x.tolist(), "w": w.tolist()},
        "scale": math.sqrt(float(teacher.variance)),
    }
