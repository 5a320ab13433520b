"""Words and tables from live numbers: the results table of a run and a one-sentence caption.

Both read :func:`kl_core.summarize` of every start's final student. Starts are grouped by what
they did: settled on one teacher mode (grouped by which), or spread over several.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from kl_core.distributions import Distribution
from kl_core.metrics import StudentSummary, summarize, teacher_modes
from kl_core.viz.runs import Run

__all__ = ["results_rows", "caption", "run_summaries"]


def run_summaries(teacher: Distribution, run: Run) -> list[StudentSummary | None]:
    """:func:`kl_core.summarize` of every start's final student; None where it is not defined.

    ``summarize`` covers 1-D and 2-D continuous teachers and every table; for a higher-dimensional
    teacher it raises, and the start's entry is None.
    """
    out: list[StudentSummary | None] = []
    for student in run.trajectory.final:
        try:
            out.append(summarize(teacher, student))
        except ValueError:
            out.append(None)
    return out


def _round(value: float | tuple[float, ...] | None, digits: int) -> float | tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(round(float(v), digits) + 0.0 for v in value)
    return round(float(value), digits) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0


def results_rows(
    teacher: Distribution, run: Run, *, summaries: Sequence[StudentSummary | None] | None = None
) -> list[dict]:
    """The results table: one row per start of the final students.

    Args:
        teacher: the teacher the run was fitted to.
        run: the run.
        summaries: precomputed :func:`run_summaries` of the run (2-D summaries take seconds each);
            default: computed here.

    Returns:
        Dicts with keys ``start, mean, std, entropy, forward_kl, reverse_kl, modes_covered
        ("k/K"), low_density_mass, loss``; numbers are floats rounded to 3 decimals (both KLs
        and the loss to 4), tuples for 2-D ``mean``/``std``, None where a number is undefined
        (moments of a table, or every metric for a teacher beyond 2-D).

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "forward_kl", steps=600, lr=0.1)
        >>> row = results_rows(p.teacher, Run("forward_kl", {}, traj))[0]
        >>> row["mean"], row["std"], row["modes_covered"]
        (0.0, 3.162, '2/2')
    """
    found = run_summaries(teacher, run) if summaries is None else list(summaries)
    if len(found) != run.trajectory.inits:
        raise ValueError(f"Length mismatch: {len(found)} summaries, {run.trajectory.inits} starts")
    n_modes = len(teacher_modes(teacher)[1])
    rows = []
    for i, (s, student) in enumerate(zip(found, run.trajectory.final)):
        loss = round(float(run.trajectory.final_loss[i]), 4)
        if s is None:
            mean = std = None
            if hasattr(student, "cov"):  # moments exist even where the metrics do not
                mean = _round(tuple(np.atleast_1d(student.mean)), 3)
                std = _round(tuple(np.sqrt(np.diagonal(student.cov))), 3)
            rows.append(
                dict(
                    start=i,
                    mean=mean,
                    std=std,
                    entropy=None,
                    forward_kl=None,
                    reverse_kl=None,
                    modes_covered="?",
                    low_density_mass=None,
                    loss=loss,
                )
            )
            continue
        rows.append(
            dict(
                start=i,
                mean=_round(s.mean, 3),
                std=_round(s.std, 3),
                entropy=_round(s.entropy, 3),
                forward_kl=_round(s.forward_kl, 4),
                reverse_kl=_round(s.reverse_kl, 4),
                modes_covered=f"{s.n_modes_covered}/{n_modes}",
                low_density_mass=_round(s.low_density_mass, 3),
                loss=loss,
            )
        )
    return rows


# ----------------------------------------------------------------------------------------------
# The caption
# ----------------------------------------------------------------------------------------------


def _mode_name(teacher: Distribution, k: int) -> str:
    """How the caption names teacher mode k: its location in 1-D, index and location in 2-D, cell in a table."""
    locations, _ = teacher_modes(teacher)
    loc = np.asarray(locations[k])
    if teacher.is_discrete:
        return f"cell {tuple(int(v) for v in loc)}"
    if loc.ndim == 0:
        return f"the mode at {float(loc):+.1f}"
    return f"mode {k} at ({', '.join(f'{float(v):.1f}' for v in loc)})"


def _number(value: float | tuple[float, ...]) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(f"{v:.2f}" for v in value) + ")"
    return f"{value:.2f}"


def _percent(fraction: float) -> str:
    if not math.isfinite(fraction):
        return "an unknown share"
    if 0.0 < fraction < 0.005:
        return "under 1%"
    return f"{100.0 * fraction:.0f}%"


def _median(values: list[float | tuple[float, ...]]) -> float | tuple[float, ...]:
    """The median start's value (per coordinate for 2-D)."""
    a = np.median(np.array(values, float), axis=0)
    return float(a) if a.ndim == 0 else tuple(float(v) for v in a)


def _all(n: int) -> str:
    return "the student" if n == 1 else ("both starts" if n == 2 else f"all {n} starts")


def caption(teacher: Distribution, run: Run, *, summaries: Sequence[StudentSummary | None] | None = None) -> str:
    """One sentence on where the run's starts ended up, from the live numbers.

    Starts that cover exactly one teacher mode are grouped by that mode; starts covering several
    form one group ("stayed between modes"). When every start did the same thing the sentence
    gives their (median) mean, std and low-density mass instead.

    Args:
        teacher: the teacher the run was fitted to.
        run: the run.
        summaries: precomputed :func:`run_summaries` of the run; default: computed here.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "forward_kl", steps=600, lr=0.1)
        >>> print(caption(p.teacher, Run("forward_kl", {}, traj)))  # doctest: +NORMALIZE_WHITESPACE
        forward KL: the student reached mean 0.00, std 3.16, covering 2 of 2 modes,
        with 22% of its mass where the teacher has almost none.
    """
    found = run_summaries(teacher, run) if summaries is None else list(summaries)
    if len(found) != run.trajectory.inits:
        raise ValueError(f"Length mismatch: {len(found)} summaries, {run.trajectory.inits} starts")
    label = run.display_label
    n = len(found)
    n_modes = len(teacher_modes(teacher)[1])
    if any(s is None for s in found):
        return _fallback(label, run)

    single: dict[int, list[StudentSummary]] = {}
    several: list[StudentSummary] = []
    for s in found:
        if s.n_modes_covered == 1:
            single.setdefault(s.modes_covered[0], []).append(s)
        else:
            several.append(s)
    mass = "its" if n == 1 else "their"

    if len(single) + bool(several) == 1:  # every start did the same thing: describe it in numbers
        group = several or next(iter(single.values()))
        ldm = _percent(_median([s.low_density_mass for s in group]))
        where = f"with {ldm} of {mass} mass where the teacher has almost none"
        covered = int(np.median([s.n_modes_covered for s in group]))
        modes = f"{covered} of {n_modes} mode{'' if n_modes == 1 else 's'}"
        if group[0].mean is None:  # a table: no moments to quote
            if several:
                return f"{label}: {_all(n)} spread over {modes}, {where}."
            return f"{label}: {_all(n)} settled on {_mode_name(teacher, group[0].modes_covered[0])}, {where}."
        moments = f"mean {_number(_median([s.mean for s in group]))}, std {_number(_median([s.std for s in group]))}"
        if several or n_modes == 1:  # with a single teacher mode, where it sits says less than the moments
            return f"{label}: {_all(n)} reached {moments}, covering {modes}, {where}."
        mode = _mode_name(teacher, group[0].modes_covered[0])
        return f"{label}: {_all(n)} settled on {mode}, std {_number(_median([s.std for s in group]))}, {where}."

    parts = []
    for k, group in sorted(single.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if not parts:
            start_word = "start" if n == 1 else "starts"
            parts.append(f"{len(group)} of {n} {start_word} settled on {_mode_name(teacher, k)}")
        else:
            parts.append(f"{len(group)} on {_mode_name(teacher, k)}")
    sentence = ", ".join(parts)
    if several:
        covered = sorted({s.n_modes_covered for s in several})
        range_text = str(covered[0]) if len(covered) == 1 else f"{covered[0]}–{covered[-1]}"
        if teacher.is_discrete:
            spread = f"spread over several modes (covering {range_text} of {n_modes})"
        else:
            spread = f"stayed between modes (covering {range_text} of {n_modes})"
        sentence = f"{sentence}; {len(several)} {spread}"  # single is not empty: else every start did the same
    return f"{label}: {sentence}."


def _fallback(label: str, run: Run) -> str:
    """The caption when mode metrics are undefined (e.g. a teacher beyond 2-D): the final losses."""
    loss = run.trajectory.final_loss
    finite = loss[np.isfinite(loss)]
    n = run.trajectory.inits
    if finite.size == 0:
        return f"{label}: no start reached a finite loss."
    if n == 1:
        return f"{label}: the student reached a loss of {float(finite[0]):.3f} nats."
    return f"{label}: {n} starts reached losses from {float(finite.min()):.3f} to {float(finite.max()):.3f} nats."
