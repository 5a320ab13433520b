"""Benchmark: kl_core.landscape on a 120 x 120 (mean, log std) grid, and its accuracy.

For each objective (forward_kl, reverse_kl, jsd with beta = 0.5, alpha with alpha = 0.5, tv) and
each teacher (the five-mode preset, the bimodal one the pages open with) it times the surface
alone and the surface with polished minima (best of ``--repeat``, default 5; tv, the slow one,
best of half as many). Two references are
timed in the same run: the direct path that every non-KL kind used before (the integrand on the
fitting grid for every cell: ``_direct_surface``, the jsd surface, best of 2) and a fixed numpy
workload (exp and sum of 2**22 floats), so that timings from a loaded machine can be read as
ratios. Run:

    python bench/bench_landscape.py

Before printing, it checks the surfaces at 30 grid cells (fixed seed, corners included) against
``kc.divergence`` (adaptive Gauss-Legendre panels, independent of the landscape code): relative
error at most 1e-6 (tv: 1e-3; it is still integrated on the fitting grid, second order at the
kinks of |p - q|), also for a teacher with 0.05-wide modes; and it reports how far the jsd and
alpha surfaces are from the direct path's.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import kl_core as kc
from kl_core.divergences import resolve
from kl_core.families import GaussianMixture1D
from kl_core.fitting import _fit_box, _fit_grid, _Problem
from kl_core.landscape import _direct_surface, default_ranges, landscape

TEACHERS = {
    "five_modes": kc.PRESETS["five_modes"].teacher,
    "bimodal": kc.PRESETS["bimodal"].teacher,
}
NARROW = kc.GaussianMixture([0.5, 0.3, 0.2], [-1.0, 0.0, 2.0], [0.05, 1.0, 0.05])  # accuracy only
OBJECTIVES = [
    ("forward_kl", {}, "moments, exact"),
    ("reverse_kl", {}, "FFT blur of log p"),
    ("jsd", {"beta": 0.5}, "lattice over the overlap"),
    ("alpha", {"alpha": 0.5}, "lattice over the overlap"),
    ("tv", {}, "fitting grid, every cell"),
]
N = 120


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def numpy_reference() -> float:
    x = np.linspace(-5.0, 0.0, 1 << 22)
    return float(np.exp(x).sum())


def direct_problem(teacher, objective: str, params: dict) -> tuple[_Problem, np.ndarray, np.ndarray]:
    """The fitting-grid problem landscape() builds, for the old direct path."""
    k, par = resolve(objective, params)
    means, log_stds = default_ranges(teacher, N)
    widest = math.exp(log_stds.max())
    corners = [kc.Gaussian(float(means.min()), widest), kc.Gaussian(float(means.max()), widest)]
    x, w = _fit_grid(teacher, _fit_box(teacher, corners), None)
    return _Problem(k, par, teacher, GaussianMixture1D(1), x, w, teacher.log_prob(x)), means, log_stds


def worst_against_divergence(teacher, objective: str, params: dict, values: np.ndarray, means, log_stds) -> float:
    rng = np.random.default_rng(0)
    cells = [tuple(c) for c in rng.integers(0, N, size=(26, 2))] + [(0, 0), (0, N - 1), (N - 1, 0), (N - 1, N - 1)]
    worst = 0.0
    for i, j in cells:
        ref = kc.divergence(teacher, kc.Gaussian(means[j], math.exp(log_stds[i])), objective, **params)
        worst = max(worst, abs(values[i, j] - ref) / max(abs(ref), 1e-12))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    # accuracy first: every kind on every teacher, and the narrow-mode teacher
    failures, accuracy = [], {}
    for name, teacher in {**TEACHERS, "narrow (0.05-wide modes)": NARROW}.items():
        for objective, params, _ in OBJECTIVES:
            land = landscape(teacher, objective, polish=False, **params)
            err = worst_against_divergence(teacher, objective, params, land.values, land.means, land.log_stds)
            accuracy[name, objective] = err
            if err > (1e-3 if objective == "tv" else 1e-6):
                failures.append(f"{name} {objective}: {err:.2e}")
    if failures:
        raise SystemExit("surfaces disagree with kc.divergence: " + "; ".join(failures))

    t_ref, _ = best_of(numpy_reference, args.repeat)
    rows, direct = [], {}
    for name, teacher in TEACHERS.items():
        prob, means, log_stds = direct_problem(teacher, "jsd", {"beta": 0.5})
        t_direct, old = best_of(lambda p=prob, m=means, s=log_stds: _direct_surface(p, m, s), 2)
        direct[name] = t_direct
        for objective, params, how in OBJECTIVES:
            repeat = args.repeat if objective != "tv" else max(1, args.repeat // 2)
            t_surf, land = best_of(lambda t=teacher, o=objective, p=params: landscape(t, o, polish=False, **p), repeat)
            t_pol, _ = best_of(lambda t=teacher, o=objective, p=params: landscape(t, o, **p), repeat)
            rows.append((name, objective, params, how, t_surf, t_pol, accuracy[name, objective]))
            if objective == "jsd":
                diff = np.max(np.abs(land.values - old) / np.abs(old))
                print(f"{name}: jsd surface vs the direct path on the fitting grid: max relative difference {diff:.1e}")
    print(f"\nnumpy reference (exp + sum of 2**22 floats): {t_ref * 1e3:.1f} ms (best of {args.repeat})")
    for name, t in direct.items():
        print(f"direct path, jsd surface on the fitting grid ({name}): {t * 1e3:.0f} ms (best of 2)")
    print(
        f"\n| teacher | landscape {N} x {N} | surface | with polished minima | (with minima) / numpy reference "
        "| worst rel. error vs kc.divergence (30 cells) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for name, objective, params, how, t_surf, t_pol, err in rows:
        label = objective + "".join(f" ({k}={v:g})" for k, v in params.items())
        print(
            f"| {name} | {label}: {how} | {t_surf * 1e3:.1f} ms | {t_pol * 1e3:.1f} ms | {t_pol / t_ref:.1f}x "
            f"| {err:.1e} |"
        )
    narrow = ", ".join(f"{o} {accuracy['narrow (0.05-wide modes)', o]:.1e}" for o, _, _ in OBJECTIVES)
    print(f"\nnarrow-mode teacher (stds 0.05, 1, 0.05), worst rel. error vs kc.divergence: {narrow}")


if __name__ == "__main__":
    main()
