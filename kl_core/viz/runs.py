"""Run: one fitted objective as the figures see it (objective, parameters, trajectory, label), and frame steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kl_core.distributions import Distribution
from kl_core.fitting import Trajectory
from kl_core.viz.colors import color_for, label_for

__all__ = [
    "Run",
    "frame_steps",
    "motion_steps",
    "MOTION_SHARE",
    "log_densities",
    "check_runs",
    "students_at",
    "component_moments",
]

MOTION_SHARE = 0.85  # motion_steps: this share of the frames follows the movement, the rest the clock


@dataclass(frozen=True)
class Run:
    """One fit to draw: which objective, with which parameters, and its trajectory.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "jsd", steps=5, beta=0.5)
        >>> Run("jsd", {"beta": 0.5}, traj).display_label
        'JSD (β=0.5)'
    """

    objective: str  # a divergence kind (see kl_core.KINDS); picks the colour
    params: dict  # the kind's parameters, e.g. {"beta": 0.5}; {} for the defaults
    trajectory: Trajectory = field(repr=False)  # the fit: parameters and loss per step per start
    label: str = ""  # legend / column title; empty: label_for(objective, params)

    def __post_init__(self) -> None:
        if not isinstance(self.trajectory, Trajectory):
            raise ValueError(f"trajectory must be a kl_core Trajectory, got {type(self.trajectory).__name__}")
        color_for(self.objective)  # fail here, not deep inside a figure, on an unknown kind
        label_for(self.objective, self.params)

    @property
    def color(self) -> str:
        """The role colour of the objective."""
        return color_for(self.objective)

    @property
    def display_label(self) -> str:
        """``label`` if given, else the objective's human label."""
        return self.label or label_for(self.objective, self.params)


def frame_steps(steps: int, n_frames: int) -> np.ndarray:
    """At most ``n_frames`` evenly spaced steps of 0..``steps``, always including both ends.

    Examples:
        >>> frame_steps(400, 5).tolist()
        [0, 100, 200, 300, 400]
        >>> frame_steps(3, 60).tolist()
        [0, 1, 2, 3]
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 2:
        raise ValueError(f"n_frames must be an integer >= 2 (the first and the last step), got {n_frames!r}")
    # spacing is >= 1 when there are at most steps + 1 points, so rounding keeps them distinct
    return np.unique(np.rint(np.linspace(0, steps, min(int(n_frames), int(steps) + 1))).astype(int))


def motion_steps(runs: Sequence[Run], n_frames: int) -> np.ndarray:
    """At most ``n_frames`` steps (both ends included) spaced so the students' movement is spread over them.

    Gradient descent moves most in its first steps, so frames evenly spaced in steps show all the
    motion in the first few frames and a still picture after. Here the frames sit at equal shares
    of the distance travelled by the parameters (the arc length of each start's path, averaged
    over starts, each run counted equally), blended with the clock (``1 - MOTION_SHARE`` of the
    spacing is even in steps, so a late slow drift still gets frames). Each frame is then named
    by its real step.

    Examples:
        >>> import kl_core as kc
        >>> p = kc.get_preset("bimodal")
        >>> traj = kc.fit(p.teacher, p.student, "reverse_kl", steps=400, inits=2)
        >>> steps = motion_steps([Run("reverse_kl", {}, traj)], 10)
        >>> int(steps[0]), int(steps[-1]), bool(steps[1] < 40)  # the early, fast part gets frames
        (0, 400, True)
    """
    runs = check_runs(runs)
    total = max(run.trajectory.steps for run in runs)
    even = frame_steps(total, n_frames)
    if total == 0 or len(even) == total + 1:
        return even  # one frame per step already
    # movement per step (total,), each run's path normalised to 1 so no run dominates
    moved = np.zeros(total)
    for run in runs:
        theta = run.trajectory.params  # (T + 1, S, P)
        step_length = np.sqrt(((theta[1:] - theta[:-1]) ** 2).sum(axis=-1)).mean(axis=-1)  # (T,)
        step_length = np.where(np.isfinite(step_length), step_length, 0.0)
        if step_length.sum() > 0:
            moved[: step_length.size] += step_length / step_length.sum()
    clock = np.full(total, 1.0 / total)
    share = MOTION_SHARE if moved.sum() > 0 else 0.0
    weight = share * moved / max(moved.sum(), 1e-300) + (1.0 - share) * clock
    progress = np.concatenate([[0.0], np.cumsum(weight)])  # (total + 1,): 0 .. 1 at each step
    progress /= progress[-1]
    targets = np.linspace(0.0, 1.0, len(even))
    picked = np.searchsorted(progress, targets, side="left").clip(0, total)
    picked[0], picked[-1] = 0, total
    picked = np.unique(picked)
    if len(picked) < len(even):  # several targets fell in one big step: fill with the widest gaps' middles
        chosen = set(picked.tolist())
        while len(chosen) < len(even):
            ordered = sorted(chosen)
            gaps = np.diff(ordered)
            widest = int(np.argmax(gaps))
            chosen.add(ordered[widest] + int(gaps[widest]) // 2)
        picked = np.array(sorted(chosen))
    return picked.astype(int)


def check_runs(runs: Sequence[Run]) -> list[Run]:
    """``runs`` as a list, after checking it is a non-empty sequence of :class:`Run`."""
    runs = list(runs)
    if not runs:
        raise ValueError("need at least one run")
    for k, run in enumerate(runs):
        if not isinstance(run, Run):
            raise ValueError(f"runs[{k}] must be a Run, got {type(run).__name__}")
    return runs


def students_at(run: Run, steps: np.ndarray) -> list[list[Distribution]]:
    """``out[f][i]``: the student of start i at ``steps[f]`` (past the run's end: its last step).

    Runs of different lengths share one set of frames; a shorter run holds its final students.
    """
    traj = run.trajectory
    return [[traj.student(min(int(t), traj.steps), i) for i in range(traj.inits)] for t in steps]


def log_densities(run: Run, steps: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``out[f, i]``: log-density of start i's student at ``steps[f]`` on the points ``x`` (1-D).

    One vectorised call of the student family for every frame and start at once (unpacking each
    student into a distribution object would cost ~100x more).
    """
    traj = run.trajectory
    theta = traj.params[np.minimum(np.asarray(steps, int), traj.steps)]  # (F, S, P)
    F, S, P = theta.shape
    log_q, _ = traj.family.log_prob(theta.reshape(F * S, P), np.asarray(x, float))
    return log_q.reshape(F, S, -1)


def component_moments(run: Run, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(means, stds)``, each (F, S, K): the components of start i's 1-D student at ``steps[f]``.

    Vectorised over frames and starts for the 1-D Gaussian(-mixture) family; any other 1-D family
    unpacks each student (slower, same result).
    """
    traj = run.trajectory
    at = np.minimum(np.asarray(steps, int), traj.steps)
    if traj.family.kind == "gaussian_1d":
        _, mu, log_std = traj.family.split(traj.params[at])
        return mu, np.exp(log_std)
    comps = [[traj.student(int(t), i).components() for i in range(traj.inits)] for t in at]
    mu = np.array([[c[1][:, 0] for c in per_frame] for per_frame in comps])
    sd = np.array([[np.sqrt(c[2][:, 0, 0]) for c in per_frame] for per_frame in comps])
    return mu, sd
