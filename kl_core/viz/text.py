"""Words and tables from live numbers: the results table of a run and a one-sentence caption.

Both read :func:`kl_core.summarize` of every start's final student. The caption is rendered from
structured :class:`Claim` s (which starts, which numbers), grouped by what the starts did: still
moving at the last step, settled on one teacher mode (grouped by which), spread over several, or
covering none (kind ``"between"``); a test checks every claim against the table's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kl_core.distributions import Distribution
from kl_core.metrics import StudentSummary, summarize, teacher_modes
from kl_core.viz.runs import Run

__all__ = ["results_rows", "caption", "claims", "Claim", "render_claim", "moving_starts", "run_summaries"]


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
# The caption: structured claims, then one sentence rendered from them
# ----------------------------------------------------------------------------------------------

DIGITS = 2  # the caption prints moments to 2 decimals and low-density mass to whole percent
MOVING = 0.01  # "still moving": a printed moment (or a table cell) drifted by one printed unit or more
MOVING_WINDOW = 0.1  # over the last 10% of steps (a fitted trend: Monte-Carlo noise averages out)

_WINDOW_POINTS = 12  # students read over the window (evenly spaced steps): a trend line, cheaply
_DRIFT_SE = 4.0  # a drift counts when it exceeds this many standard errors of the fitted slope
SETTLED = 0.5  # "settled on" a mode: covers it alone and at least half its mass belongs to it (mode_shares)

Span = tuple[float, float]  # (lowest, highest) of a printed number over a claim's starts


@dataclass(frozen=True)
class Claim:
    """One clause of a caption: which starts did what, with the numbers it prints.

    ``kind`` is one of
      * ``"settled"``: covers teacher mode ``mode`` and no other, with most of its mass (a share of
        at least :data:`SETTLED`) belonging to it;
      * ``"spread"``: covers two or more modes, or one without most of its mass there (a wide
        student whose core ratio clears the line on one mode only);
      * ``"between"``: covers no mode (its mass sits where no mode's core is);
      * ``"reached"``: the teacher has a single mode, so where the start went says less than its moments;
      * ``"moving"``: still moving at the last step (see :func:`moving_starts`); no coverage is claimed.

    Numbers are spans over the claim's starts of the values as printed (rounded to :data:`DIGITS`
    decimals, percent for ``low_density_mass``); a span with equal ends prints one number, so a
    claim is true of every start it names within the precision it prints.
    """

    kind: str
    starts: tuple[int, ...]
    n_starts: int  # starts in the run (for "k of n")
    n_modes: int  # teacher modes
    mode: int | None = None  # the mode of a "settled" claim
    covered: tuple[int, int] | None = None  # span of the number of covered modes
    mean: tuple[Span, ...] | None = None  # one span per coordinate (1 in 1-D); None for a table
    std: tuple[Span, ...] | None = None
    low_density_percent: Span | None = None  # whole percent
    step: int | None = None  # the last step (for "moving")


def moving_starts(run: Run) -> tuple[int, ...]:
    """Starts still moving at the run's last step.

    Each printed moment (each table cell for a discrete student) is read at :data:`_WINDOW_POINTS`
    evenly spaced steps of the last :data:`MOVING_WINDOW` of the run. An exact fit (no noise) moves
    when some moment spans :data:`MOVING` (one printed unit) or more over the window. A Monte-Carlo
    fit jitters around where it settled, so there a least-squares line through the readings gives
    the drift over the window, and a start moves when some drift is at least :data:`MOVING` and more
    than :data:`_DRIFT_SE` standard errors of the line's slope.
    """
    traj = run.trajectory
    if traj.steps < 2:
        return ()
    k = min(traj.steps, max(2, int(round(MOVING_WINDOW * traj.steps))))
    steps = np.unique(np.linspace(traj.steps - k, traj.steps, _WINDOW_POINTS).round().astype(int))
    t = (steps - steps.mean()) / k  # (n,) window time in units of the window
    out = []
    for i in range(traj.inits):
        values = np.array([_moment_vector(traj.student(int(step), i)) for step in steps])  # (n, m)
        if not np.all(np.isfinite(values)):
            out.append(i)
            continue
        if traj.estimator == "exact":
            if np.any(values.max(0) - values.min(0) >= MOVING):
                out.append(i)
            continue
        centred = values - values.mean(0)
        drift = (t @ centred) / (t @ t)  # (m,) change over the whole window
        resid = centred - np.outer(t, drift)
        dof = max(len(steps) - 2, 1)
        se = np.sqrt((resid * resid).sum(0) / dof / (t @ t))
        if np.any((np.abs(drift) >= MOVING) & (np.abs(drift) > _DRIFT_SE * se)):
            out.append(i)
    return tuple(out)


def _moment_vector(student: Distribution) -> np.ndarray:
    """What the caption prints of a student, as one vector: mean and std per coordinate, or the table."""
    if student.is_discrete:
        return np.asarray(student.table() if hasattr(student, "table") else student.probs, float).ravel()
    return np.concatenate([np.atleast_1d(student.mean), np.sqrt(np.atleast_1d(np.diagonal(student.cov)))])


def _span(values: Sequence[float], digits: int = DIGITS) -> Span:
    r = [round(float(v), digits) + 0.0 for v in values]
    return (min(r), max(r))


def _spans(values: Sequence[float | tuple[float, ...]]) -> tuple[Span, ...]:
    rows = np.atleast_2d(np.array(values, float).T).reshape(len(np.atleast_1d(values[0])), -1)
    return tuple(_span(row) for row in rows)


def _behaviour(s: StudentSummary, n_modes: int) -> tuple[str, int | None]:
    if n_modes == 1 and s.mean is not None:
        return "reached", None
    if s.n_modes_covered == 1 and s.mode_shares[s.modes_covered[0]] >= SETTLED:
        return "settled", s.modes_covered[0]
    return ("spread" if s.n_modes_covered >= 1 else "between"), None


def claims(teacher: Distribution, run: Run, *, summaries: Sequence[StudentSummary | None] | None = None) -> list[Claim]:
    """The claims of :func:`caption`: every start in exactly one claim, largest groups first.

    Raises:
        ValueError: if a summary is None (metrics undefined: :func:`caption` then quotes losses).
    """
    found = run_summaries(teacher, run) if summaries is None else list(summaries)
    if len(found) != run.trajectory.inits:
        raise ValueError(f"Length mismatch: {len(found)} summaries, {run.trajectory.inits} starts")
    if any(s is None for s in found):
        raise ValueError("claims need every start's summary; a summary is None")
    n, n_modes = len(found), len(teacher_modes(teacher)[1])
    moving = set(moving_starts(run))
    groups: dict[tuple[str, int | None], list[int]] = {}
    for i, s in enumerate(found):
        groups.setdefault(("moving", None) if i in moving else _behaviour(s, n_modes), []).append(i)

    def claim(key: tuple[str, int | None], starts: list[int]) -> Claim:
        group = [found[i] for i in starts]
        has_moments = group[0].mean is not None
        return Claim(
            kind=key[0],
            starts=tuple(starts),
            n_starts=n,
            n_modes=n_modes,
            mode=key[1],
            covered=None if key[0] == "moving" else _span([s.n_modes_covered for s in group], 0),
            mean=_spans([s.mean for s in group]) if has_moments else None,
            std=_spans([s.std for s in group]) if has_moments else None,
            low_density_percent=_span([100.0 * s.low_density_mass for s in group], 0),
            step=run.trajectory.steps if key[0] == "moving" else None,
        )

    order = sorted(groups.items(), key=lambda kv: (kv[0][0] == "moving", -len(kv[1]), kv[1][0]))
    return [claim(key, starts) for key, starts in order]


# -- rendering -------------------------------------------------------------------------------------


def _mode_name(teacher: Distribution, k: int) -> str:
    """How the caption names teacher mode k: its location in 1-D, index and location in 2-D, cell in a table."""
    locations, _ = teacher_modes(teacher)
    loc = np.asarray(locations[k])
    if teacher.is_discrete:
        return f"cell {tuple(int(v) for v in loc)}"
    if loc.ndim == 0:
        return f"the mode at {float(loc):+.1f}"
    return f"mode {k} at ({', '.join(f'{float(v):.1f}' for v in loc)})"


def _fmt_span(span: Span, digits: int = DIGITS) -> str:
    lo, hi = span
    return f"{lo:.{digits}f}" if lo == hi else f"{lo:.{digits}f} to {hi:.{digits}f}"


def _fmt_moment(spans: tuple[Span, ...]) -> str:
    if len(spans) == 1:
        return _fmt_span(spans[0])
    return "(" + ", ".join(_fmt_span(sp) for sp in spans) + ")"


def _fmt_count(span: Span) -> str:
    lo, hi = int(span[0]), int(span[1])
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _fmt_percent(span: Span) -> str:
    lo, hi = int(span[0]), int(span[1])
    return f"{lo}%" if lo == hi else f"{lo}–{hi}%"


def _who(c: Claim, first: bool) -> str:
    """The subject: "all 8 starts", "7 of 8 starts", "start 5", "both starts", "the student"."""
    k, n = len(c.starts), c.n_starts
    if k == n:
        return "the student" if n == 1 else ("both starts" if n == 2 else f"all {n} starts")
    if k == 1:
        return f"start {c.starts[0]}"
    if k <= 3 and c.kind == "moving":
        return "starts " + ", ".join(str(i) for i in c.starts[:-1]) + f" and {c.starts[-1]}"
    return f"{k} of {n} starts" if first else f"{k}"


def _verb(c: Claim, singular: bool) -> str:
    return {"moving": "is" if singular else "are"}.get(c.kind, "")


def render_claim(teacher: Distribution, c: Claim, first: bool = True) -> str:
    """One clause of the caption, from its claim alone (no other numbers)."""
    who = _who(c, first)
    singular = len(c.starts) == 1 or c.n_starts == 1
    moments = ""
    if c.mean is not None:
        moments = f"mean {_fmt_moment(c.mean)}, std {_fmt_moment(c.std)}"
    modes = f"{_fmt_count(c.covered)} of {c.n_modes} mode{'' if c.n_modes == 1 else 's'}" if c.covered else ""
    mass = "its" if singular else "their"
    where = f"{_fmt_percent(c.low_density_percent)} of {mass} mass where the teacher has almost none"
    if c.kind == "moving":
        numbers = f" ({moments})" if moments else ""
        return f"{who} {_verb(c, singular)} still moving at step {c.step}{numbers}"
    if c.kind == "reached":
        return f"{who} reached {moments}, covering {modes}, with {where}"
    if c.kind == "settled":
        detail = f" (mean {_fmt_moment(c.mean)}, std {_fmt_moment(c.std)})" if moments else ""
        return f"{who} covered only {_mode_name(teacher, c.mode)}{detail}"
    if c.kind == "spread":
        detail = f" ({moments})" if moments else ""
        return f"{who} covered {modes}{detail}, with {where}"
    # "between": covers no mode. Not worded "stayed between modes": a wide disc over a whole ring covers
    # none of its modes (too little of its mass in any mode's core) without sitting between them
    detail = f" ({moments})" if moments else ""
    return f"{who} covered none of the {c.n_modes} modes{detail}, with {where}"


def caption(teacher: Distribution, run: Run, *, summaries: Sequence[StudentSummary | None] | None = None) -> str:
    """One sentence on where the run's starts ended up, rendered from :func:`claims`.

    "all" appears only when one claim holds for every start within the precision it prints;
    otherwise each group is counted, and starts still moving at the last step are named.

    Args:
        teacher: the teacher the run was fitted to.
        run: the run.
        summaries: precomputed :func:`run_summaries` of the run; default: computed here.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "forward_kl", steps=600, lr=0.1)
        >>> print(caption(p.teacher, Run("forward_kl", {}, traj)))  # doctest: +NORMALIZE_WHITESPACE
        forward KL: the student covered 2 of 2 modes (mean 0.00, std 3.16), with 22% of its mass
        where the teacher has almost none.
    """
    found = run_summaries(teacher, run) if summaries is None else list(summaries)
    if len(found) != run.trajectory.inits:
        raise ValueError(f"Length mismatch: {len(found)} summaries, {run.trajectory.inits} starts")
    if any(s is None for s in found):
        return _fallback(run.display_label, run)
    parts = [render_claim(teacher, c, first=i == 0) for i, c in enumerate(claims(teacher, run, summaries=found))]
    return f"{run.display_label}: {'; '.join(parts)}."


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
