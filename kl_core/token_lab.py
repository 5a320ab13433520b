"""Correlated answers over token positions: a factorised student's joint, its invalid mass and its answer.

The token lab's teacher is a joint table over two or three token positions whose answers must
agree ("New York", "Los Angeles"; never "New Angeles"). The student is a
:class:`~kl_core.FactorizedCategorical`, a product of independent per-position categoricals, the
same limitation a student language model has when it cannot carry the teacher's correlations.

* Forward KL, ``KL(T || S)`` with ``S = prod_i S_i``, splits into one cross-entropy per position
  (``-sum_x T(x) sum_i log S_i(x_i) = -sum_i sum_v T_i(v) log S_i(v)``), so its minimiser is
  exactly the product of the teacher's marginals (:func:`product_of_marginals`), which puts mass
  on invalid combinations.
* Reverse KL, ``KL(S || T)``, is large wherever the student has mass on a cell the teacher
  almost rules out, so a factorised student commits to one valid answer; which one depends on
  where it starts.

A cell is *invalid* when the teacher's probability there is below ``INVALID_BELOW``. The
single-position part applies temperature, top-k and top-p (:mod:`kl_core.tokens`) to a
next-token distribution and measures how far the result is from the teacher
(:func:`decoding_sweep`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kl_core.distributions import Categorical, Distribution, FactorizedCategorical
from kl_core.divergences import divergence, resolve
from kl_core.fitting import Trajectory, fit
from kl_core.tokens import apply_temperature, top_k_filter, top_p_filter

__all__ = [
    "INVALID_BELOW",
    "EDIT_FLOOR",
    "COMMITTED",
    "joint_table",
    "product_of_marginals",
    "invalid_cells",
    "invalid_mass",
    "Answer",
    "answer",
    "fit_joint",
    "decode",
    "DecodingSweep",
    "decoding_sweep",
]

INVALID_BELOW = 0.01  # a cell whose teacher probability is below this is an invalid combination
EDIT_FLOOR = 1e-3  # an edited table's zero cells are raised to this, so reverse KL stays finite
COMMITTED = 0.9  # a student "commits" to an answer when that one cell holds more than this


def joint_table(values: Any, floor: float = EDIT_FLOOR) -> tuple[np.ndarray, list[str]]:
    """A user's table of joint probabilities, validated and normalised, and notes on what was changed.

    Args:
        values: a 2-D (or higher) table of non-negative numbers, at least one positive; any
            scale (it is normalised).
        floor: probability given to zero cells after normalising (then renormalised), so reverse
            KL stays finite; 0 keeps zeros.

    Returns:
        ``(table, notes)``: the normalised table (float64, sums to 1) and one sentence per change
        (normalisation, raised zeros) to show the user.

    Raises:
        ValueError: naming the first bad cell (empty, not a number, negative) or an all-zero table.

    Examples:
        >>> table, notes = joint_table([[2.0, 0.0], [0.0, 2.0]], floor=0.0)
        >>> table.tolist(), notes
        ([[0.5, 0.0], [0.0, 0.5]], ['The cells summed to 4, so each was divided by 4.'])
    """
    if not (isinstance(floor, (int, float)) and 0.0 <= floor < 0.1):
        raise ValueError(f"floor must be in [0, 0.1), got {floor!r}")
    try:
        raw = np.array(values, dtype=object)
    except Exception as err:  # ragged input
        raise ValueError(f"the table must be rectangular: {err}") from None
    if raw.ndim < 2 or raw.size == 0:
        raise ValueError(f"the table must have at least two axes (token positions), got shape {raw.shape}")
    table = np.empty(raw.shape)
    for idx, v in np.ndenumerate(raw):
        where = f"cell {tuple(int(i) + 1 for i in idx)}"
        if v is None or (isinstance(v, str) and not v.strip()):
            raise ValueError(f"{where} is empty; every probability must be a number >= 0")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{where} is {v!r}, not a number; every probability must be a number >= 0") from None
        if math.isnan(x):
            raise ValueError(f"{where} is empty; every probability must be a number >= 0")
        if not math.isfinite(x):
            raise ValueError(f"{where} is {x}; every probability must be a finite number >= 0")
        if x < 0:
            raise ValueError(f"{where} is {x:g}; probabilities must be >= 0")
        table[idx] = x
    total = float(table.sum())
    if total <= 0:
        raise ValueError("at least one cell must be positive (the table sums to 0)")
    notes = []
    if abs(total - 1.0) > 1e-9:
        notes.append(f"The cells summed to {total:.4g}, so each was divided by {total:.4g}.")
    table = table / total
    zeros = int(np.sum(table == 0))
    if floor > 0 and zeros:
        table = np.where(table == 0, floor, table)
        table = table / table.sum()
        notes.append(
            f"{zeros} cell{'s' if zeros > 1 else ''} at 0 {'were' if zeros > 1 else 'was'} raised to {floor:g} "
            "(then renormalised) so that reverse KL stays finite."
        )
    return table, notes


def product_of_marginals(table: Any) -> np.ndarray:
    """The product of a joint table's per-position marginals: the forward-KL optimum of a factorised student.

    Examples:
        >>> product_of_marginals([[0.5, 0.0], [0.0, 0.5]]).tolist()
        [[0.25, 0.25], [0.25, 0.25]]
    """
    p = np.asarray(table, dtype=float)
    out = np.ones(())
    for axis in range(p.ndim):
        marginal = p.sum(axis=tuple(a for a in range(p.ndim) if a != axis))
        out = np.multiply.outer(out, marginal)
    return out


def invalid_cells(teacher: Categorical | np.ndarray, below: float = INVALID_BELOW) -> np.ndarray:
    """Boolean table: True where the teacher's probability is below ``below`` (an invalid combination)."""
    if not (isinstance(below, (int, float)) and 0.0 < below < 1.0):
        raise ValueError(f"below must be in (0, 1), got {below!r}")
    p = teacher.probs if isinstance(teacher, Categorical) else np.asarray(teacher, dtype=float)
    return p < below


def invalid_mass(
    teacher: Categorical | np.ndarray, student: Distribution | np.ndarray, below: float = INVALID_BELOW
) -> float | np.ndarray:
    """The student's probability on invalid cells (see :func:`invalid_cells`).

    ``student`` is a distribution (-> float) or joint tables with the teacher's shape as their
    trailing axes, e.g. (frames, starts, *shape) (-> an array of the leading shape).
    """
    mask = invalid_cells(teacher, below)
    q = np.exp(student.log_probs) if isinstance(student, Distribution) else np.asarray(student, dtype=float)
    if q.shape[q.ndim - mask.ndim :] != mask.shape:
        raise ValueError(f"Shape mismatch: student tables {q.shape} do not end in the teacher's shape {mask.shape}")
    total = (q * mask).sum(axis=tuple(range(q.ndim - mask.ndim, q.ndim)))
    return float(total) if isinstance(student, Distribution) else total


@dataclass(frozen=True)
class Answer:
    """What a student says, read off its joint table."""

    cell: tuple[int, ...]  # the most likely cell (argmax of the joint): the answer it commits to
    mass: float  # the student's probability of that cell
    valid: bool  # is that cell a valid answer of the teacher?
    invalid_mass: float  # the student's total probability on invalid cells
    forward_kl: float  # KL(teacher || student)
    reverse_kl: float  # KL(student || teacher)
    entropy: float  # the student's entropy (nats)

    @property
    def committed(self) -> bool:
        """More than ``COMMITTED`` (90%) of the mass on one valid answer."""
        return self.valid and self.mass > COMMITTED


def answer(teacher: Categorical, student: Distribution, below: float = INVALID_BELOW) -> Answer:
    """The answer ``student`` commits to, with its invalid mass, both KLs and its entropy."""
    if not isinstance(teacher, Categorical):
        raise ValueError(f"teacher must be a Categorical, got {type(teacher).__name__}")
    q = np.exp(student.log_probs)
    cell = tuple(int(i) for i in np.unravel_index(int(np.argmax(q)), q.shape))
    return Answer(
        cell=cell,
        mass=float(q[cell]),
        valid=not bool(invalid_cells(teacher, below)[cell]),
        invalid_mass=invalid_mass(teacher, student, below),
        forward_kl=float(divergence(teacher, student, "forward_kl")),
        reverse_kl=float(divergence(teacher, student, "reverse_kl")),
        entropy=float(student.entropy()),
    )


def fit_joint(
    table: Any,
    objectives: Sequence[tuple[str, Any]],
    steps: int = 300,
    lr: float = 0.1,
    inits: int = 8,
    seed: int = 0,
) -> list[Trajectory]:
    """Fit a factorised student (uniform start 0, seeded random starts 1..) to a joint table, per objective.

    Args:
        table: the teacher's joint probabilities (normalised here), at least two positions.
        objectives: ``(kind, params)`` pairs, params a dict or a tuple of (name, value) pairs.
        steps, lr, inits, seed: as :func:`kl_core.fit` (every objective gets the same starts).

    Returns:
        One :class:`~kl_core.Trajectory` per objective, in order.
    """
    teacher = Categorical(probs=np.asarray(table, dtype=float))
    if teacher.probs.ndim < 2:
        raise ValueError(f"table must have at least two positions, got shape {teacher.shape}")
    student = FactorizedCategorical(shape=teacher.shape)
    return [
        fit(teacher, student, kind, steps=steps, lr=lr, inits=inits, seed=seed, **dict(params))
        for kind, params in objectives
    ]


# ----------------------------------------------------------------------------------------------
# One position: temperature, top-k and top-p
# ----------------------------------------------------------------------------------------------


def decode(logits: Any, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """Normalised log-probabilities after temperature, then top-k, then top-p (the order of Hugging
    Face's ``generate``); ``top_k=0`` and ``top_p=1`` switch a filter off; removed tokens are -inf."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {top_k!r}")
    x = apply_temperature(np.asarray(logits, dtype=float), temperature)
    if top_k:
        x = top_k_filter(x, int(top_k))
    x = top_p_filter(x, top_p)
    return x - np.logaddexp.reduce(x, axis=-1, keepdims=True)


@dataclass(frozen=True, eq=False)
class DecodingSweep:
    """Divergences from the teacher to a decoded next-token distribution, over temperatures.

    ``values[k, j]`` is ``D_k(teacher, decoded at temperatures[j])``; ``inf`` where the divergence
    is infinite (a filter removed a token the teacher uses, under a forward-type kind).
    """

    temperatures: np.ndarray  # (T,)
    objectives: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]  # (kind, params) per row
    values: np.ndarray  # (K, T)
    teacher: np.ndarray  # (V,) teacher probabilities
    original: np.ndarray  # (V,) the distribution before decoding (student or teacher)
    decoded: np.ndarray  # (T, V) probabilities after temperature and the filters
    transform: str  # "student" or "teacher": which distribution was decoded
    top_k: int
    top_p: float

    def __post_init__(self) -> None:
        for name in ("temperatures", "values", "teacher", "original", "decoded"):
            a = np.array(getattr(self, name), dtype=float)
            a.setflags(write=False)
            object.__setattr__(self, name, a)


def decoding_sweep(
    teacher: Any,
    student: Any,
    objectives: Sequence[tuple[str, Any]],
    temperatures: Any,
    top_k: int = 0,
    top_p: float = 1.0,
    transform: str = "student",
) -> DecodingSweep:
    """Decode ``student`` (or ``teacher``) at each temperature and measure every divergence to the teacher.

    Args:
        teacher, student: next-token probabilities (V,) (normalised here); the teacher is never
            changed: it is the reference p.
        objectives: ``(kind, params)`` pairs (params a dict or (name, value) pairs).
        temperatures: the temperatures of the sweep (each > 0).
        top_k, top_p: filters applied after the temperature (0 / 1 = off).
        transform: ``"student"`` (the sampling distribution of the student, the usual case) or
            ``"teacher"`` (how far decoding moves the teacher from itself).

    Returns:
        A :class:`DecodingSweep`.
    """
    if transform not in ("student", "teacher"):
        raise ValueError(f"transform must be 'student' or 'teacher', got {transform!r}")
    t_dist = Categorical(probs=np.asarray(teacher, dtype=float))
    s_dist = Categorical(probs=np.asarray(student, dtype=float))
    if t_dist.probs.ndim != 1 or t_dist.shape != s_dist.shape:
        raise ValueError(f"teacher and student must be vectors of one length, got {t_dist.shape} and {s_dist.shape}")
    temps = np.asarray(temperatures, dtype=float).reshape(-1)
    if temps.size == 0:
        raise ValueError("temperatures must not be empty")
    specs = tuple((kind, tuple(sorted(resolve(kind, dict(params))[1].items()))) for kind, params in objectives)
    source = (s_dist if transform == "student" else t_dist).log_probs
    decoded = np.stack([decode(source, float(t), top_k, top_p) for t in temps])  # (T, V)
    values = np.empty((len(specs), temps.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j, logq in enumerate(decoded):
            q = Categorical(logits=logq)
            for k, (kind, params) in enumerate(specs):
                values[k, j] = divergence(t_dist, q, kind, **dict(params))
    return DecodingSweep(
        temperatures=temps,
        objectives=specs,
        values=values,
        teacher=t_dist.probs,
        original=np.exp(source),
        decoded=np.exp(decoded),
        transform=transform,
        top_k=int(top_k),
        top_p=float(top_p),
    )
