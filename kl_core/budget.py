"""Work budgets: the server time a page's combination of controls asks for, and the largest part of it that fits.

Any link can set every control to its maximum at once (7 objectives x 16 starts x 1500 steps x 2048
Monte-Carlo samples ...), which alone is within every control's range but together is minutes of work.
Each page therefore estimates the seconds its fits will take from per-unit costs (``UNIT_MS``, measured on
a quiet 2-core machine, rounded up), and :func:`plan` cuts the combination down to :data:`BUDGET_S`:
first fewer starts, then fewer steps (in the control's own step of 50), never below one start and
the control's minimum steps. The plan says what it cut in one sentence (:meth:`Plan.note`) built from
its numbers. Estimates, not guarantees: a machine twice as busy takes twice as long.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "BUDGET_S",
    "UNIT_MS",
    "Plan",
    "plan",
    "seconds_1d",
    "seconds_landscape",
    "landscape_grid",
    "seconds_family",
    "seconds_2d",
    "seconds_tokens",
    "seconds_rl",
]

BUDGET_S = 5.0  # estimated seconds of fitting a page may do for one change of its controls

# milliseconds per unit of work (see each seconds_* function for what one unit is)
UNIT_MS: dict[str, float] = {
    "1d_exact": 0.1,  # one gradient step of one start on the 2048-point grid (a Gaussian student)
    "1d_exact_component": 0.16,  # the same per component of a mixture student
    "1d_mc": 0.1,  # the same with Monte-Carlo estimates: fixed part ...
    "1d_mc_per_1024": 0.35,  # ... plus this per 1024 samples (per component of a mixture student)
    "1d_pathwise_mixture": 2.5,  # times this for pathwise gradients through a mixture's samples
    "family_step": 0.05,  # the family page's sweep: one step of one Gaussian fit (its fixed part) ...
    "family_start": 0.04,  # ... plus this per start
    "capacity_component": 0.15,  # its capacity panel: one step of one mixture component (1 to 4 starts alike)
    "landscape_cell": 0.1,  # one grid cell of a landscape, per objective (forward and reverse KL: see below)
    "landscape_cell_kl": 0.01,
    "2d_ring": 3.0,  # one reverse-KL step of one start on a 2-D preset's grid
    "2d_correlated": 1.0,
    "2d_three_clusters": 0.6,
    "tokens": 0.04,  # one step of one start of a token-lab objective
    "rl_sample_step": 0.006,  # RL gradients part: one sample of one Adam step (summed over the estimators)
    "rl_ppo_sample": 0.0015,  # PPO: one sample of one epoch of one update
}
# 2-D cost of each objective relative to reverse KL (measured on the ring and three-cluster presets)
KIND_FACTOR_2D: dict[str, float] = {
    "forward_kl": 0.5,
    "reverse_kl": 1.0,
    "jsd": 2.6,
    "alpha": 1.9,
    "skew_forward_kl": 1.8,
    "skew_reverse_kl": 2.6,
    "tv": 1.0,
}
CHEAP_LANDSCAPES = ("forward_kl", "reverse_kl")  # closed form in the student's parameters: ~10x cheaper per cell


@dataclass(frozen=True)
class Plan:
    """The starts and steps a page runs, against those its controls asked for, with both estimates."""

    inits: int
    steps: int
    requested_inits: int
    requested_steps: int
    seconds: float  # estimated for (inits, steps)
    requested_seconds: float  # estimated for (requested_inits, requested_steps)
    budget_s: float = BUDGET_S
    scope: str = "one change"  # what the budget is for, in the note

    @property
    def clamped(self) -> bool:
        return (self.inits, self.steps) != (self.requested_inits, self.requested_steps)

    def note(self) -> str | None:
        """One sentence saying what was cut and why (None when nothing was)."""
        if not self.clamped:
            return None
        cuts = []
        if self.inits != self.requested_inits:
            cuts.append(f"{self.inits} of the {self.requested_inits} starts")
        if self.steps != self.requested_steps:
            cuts.append(f"{self.steps} of the {self.requested_steps} steps")
        return (
            f"Work budget: these settings would take about {self.requested_seconds:.1f} s of server time, more "
            f"than the {self.budget_s:.2g} s budget of {self.scope}, so this page runs {' and '.join(cuts)} "
            f"(about {self.seconds:.1f} s). Fewer objectives, starts, steps or samples lift the cut."
        )


def plan(
    seconds: Callable[[int, int], float],
    inits: int,
    steps: int,
    *,
    step: int = 50,
    min_steps: int = 50,
    budget_s: float = BUDGET_S,
    scope: str = "one change",
) -> Plan:
    """The most starts (then steps) with ``seconds(inits, steps) <= budget_s``; ``seconds`` must grow with both.

    Starts go first (each start is a full, faithful fit; fewer of them only thin the picture), then steps
    in multiples of ``step``. At one start and ``min_steps`` the plan runs even if over budget (every
    page's cheapest setting is far below it: tests/test_budget.py).
    """
    requested = seconds(inits, steps)
    new_inits, new_steps = inits, steps
    while new_inits > 1 and seconds(new_inits, new_steps) > budget_s:
        new_inits -= 1
    if seconds(new_inits, new_steps) > budget_s:
        fit_steps = math.floor(budget_s / seconds(1, 1) / step) * step if seconds(1, 1) > 0 else steps
        new_steps = max(min_steps, min(steps, fit_steps))
        while new_steps > min_steps and seconds(1, new_steps) > budget_s:
            new_steps -= step
    return Plan(new_inits, new_steps, inits, steps, seconds(new_inits, new_steps), requested, budget_s, scope)


def _unit_1d(estimator: str, samples: int, components: int) -> float:
    """Milliseconds per step and start of one 1-D objective (``components`` > 1: a mixture student)."""
    if estimator == "exact":
        return UNIT_MS["1d_exact"] if components == 1 else UNIT_MS["1d_exact_component"] * components
    unit = (UNIT_MS["1d_mc"] + UNIT_MS["1d_mc_per_1024"] * samples / 1024) * components
    if estimator == "on_policy_pathwise" and components > 1:
        unit *= UNIT_MS["1d_pathwise_mixture"]
    return unit


def seconds_1d(n_objectives: int, estimator: str, samples: int, components: int = 1) -> Callable[[int, int], float]:
    """The 1-D lab: estimated seconds of its fits as a function of (starts, steps)."""
    unit = _unit_1d(estimator, samples, components) * n_objectives / 1000
    return lambda inits, steps: unit * inits * steps


def seconds_landscape(kinds: Sequence[str], grid: int) -> float:
    """Estimated seconds of the landscape page's surfaces (``grid`` x ``grid`` cells per objective)."""
    cells = grid * grid
    return (
        sum(cells * UNIT_MS["landscape_cell_kl" if k in CHEAP_LANDSCAPES else "landscape_cell"] for k in kinds) / 1000
    )


def landscape_grid(kinds: Sequence[str], grid: int, *, low: int = 40, step: int = 10, budget_s: float) -> int:
    """The finest grid (a multiple of ``step``, at least ``low``) whose surfaces fit in ``budget_s``."""
    while grid > low and seconds_landscape(kinds, grid) > budget_s:
        grid -= step
    return grid


def seconds_family(points: int, kmax: int) -> Callable[[int, int], float]:
    """The family page: the α/β sweep (``points`` Gaussian fits) and the capacity panel (K = 1..kmax, both KLs,
    at most 4 starts)."""
    capacity = 2 * sum(range(1, kmax + 1)) * UNIT_MS["capacity_component"] / 1000

    def seconds(inits: int, steps: int) -> float:
        sweep = points * (UNIT_MS["family_step"] + UNIT_MS["family_start"] * inits) / 1000
        return steps * (sweep + capacity)

    return seconds


def seconds_2d(preset: str, kinds: Sequence[str]) -> Callable[[int, int], float]:
    """The 2-D lab: estimated seconds of its fits as a function of (starts, steps)."""
    unit = UNIT_MS.get(f"2d_{preset}", max(v for k, v in UNIT_MS.items() if k.startswith("2d_")))
    per = unit * sum(KIND_FACTOR_2D.get(k, max(KIND_FACTOR_2D.values())) for k in kinds) / 1000
    return lambda inits, steps: per * inits * steps


def seconds_tokens(n_objectives: int) -> Callable[[int, int], float]:
    """The token lab's joint fits as a function of (starts, steps)."""
    per = UNIT_MS["tokens"] * n_objectives / 1000
    return lambda inits, steps: per * inits * steps


def seconds_rl(
    part: str, *, samples: int = 0, steps: int = 0, updates: int = 0, batch: int = 0, epochs: int = 0
) -> float:
    """The RL page's trained parts: the estimator training curves, or PPO (the other parts have fixed sizes)."""
    if part == "gradients":
        return UNIT_MS["rl_sample_step"] * samples * steps / 1000
    if part == "ppo":
        return UNIT_MS["rl_ppo_sample"] * updates * batch * epochs / 1000
    return 0.0
