"""Named, validated scenarios: a teacher, a starting student, suggested settings and one-line lesson."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kl_core.distributions import (
    Categorical,
    Distribution,
    FactorizedCategorical,
    Gaussian,
    GaussianMixture,
)

__all__ = ["Preset", "PRESETS", "get_preset", "preset_names", "random_teacher", "starting_student"]


@dataclass(frozen=True)
class Preset:
    """A scenario. ``settings`` are keyword arguments for :func:`kl_core.fit` (steps, lr, inits, learn)."""

    name: str
    title: str
    lesson: str
    teacher: Distribution
    student: Distribution
    settings: dict[str, Any] = field(default_factory=dict)
    labels: tuple[tuple[str, ...], ...] | None = None  # token names per axis (discrete presets)

    @property
    def space(self) -> str:
        """ "1d", "2d" or "discrete"."""
        if self.teacher.is_discrete:
            return "discrete"
        return "1d" if self.teacher.univariate else f"{self.teacher.dim}d"


def _ring(n: int, radius: float, std: float) -> GaussianMixture:
    ang = 2 * np.pi * np.arange(n) / n
    means = radius * np.stack([np.cos(ang), np.sin(ang)], -1)
    return GaussianMixture(np.ones(n), means, covs=np.broadcast_to(std**2 * np.eye(2), (n, 2, 2)))


def _city_table(floor: float = 1e-3) -> Categorical:
    """First and second token must agree: New York / Los Angeles / San Francisco.

    Invalid pairs ("New Angeles") get a small floor so reverse KL stays finite.
    """
    valid = np.diag([0.45, 0.35, 0.20])
    return Categorical(probs=np.where(valid > 0, valid, floor))


def _answers_table(shape: tuple[int, ...], valid: dict[tuple[int, ...], float], floor: float = 1e-3) -> Categorical:
    """A joint over token positions: the listed cells are the valid answers, every other cell
    gets ``floor`` (an invalid combination that reverse KL must still see as finite)."""
    table = np.full(shape, floor)
    for cell, weight in valid.items():
        table[cell] = weight
    return Categorical(probs=table)


# single-position next-token pairs: (token, teacher probability, student probability);
# the student is a smaller model that ranks the tokens differently
_BREAKFAST = (
    ("eggs", 0.20, 0.10),
    ("toast", 0.15, 0.13),
    ("cereal", 0.12, 0.16),
    ("pancakes", 0.10, 0.04),
    ("fruit", 0.08, 0.09),
    ("bacon", 0.07, 0.03),
    ("coffee", 0.06, 0.14),
    ("oatmeal", 0.06, 0.08),
    ("yogurt", 0.05, 0.07),
    ("waffles", 0.05, 0.02),
    ("nothing", 0.04, 0.06),
    ("pizza", 0.02, 0.08),
)
_CAPITAL = (
    ("Canberra", 0.58, 0.28),
    ("Sydney", 0.18, 0.34),
    ("Melbourne", 0.09, 0.14),
    ("a", 0.03, 0.04),
    ("the", 0.03, 0.05),
    ("Perth", 0.02, 0.03),
    ("Brisbane", 0.02, 0.03),
    ("located", 0.015, 0.02),
    ("Adelaide", 0.015, 0.02),
    ("Hobart", 0.01, 0.02),
    ("Darwin", 0.01, 0.015),
    ("not", 0.01, 0.015),
)


def _next_token(name: str, title: str, lesson: str, pairs: tuple[tuple[str, float, float], ...]) -> Preset:
    """A single-position preset: teacher and student next-token distributions over the same tokens."""
    tokens, teacher, student = zip(*pairs)
    return Preset(
        name,
        title,
        lesson,
        Categorical(probs=list(teacher)),
        FactorizedCategorical(probs=[np.array(student)]),
        dict(_TOKENS),
        labels=(tuple(tokens),),
    )


_DEFAULT = {"steps": 400, "lr": 0.05, "inits": 8}
_TOKENS = {"steps": 300, "lr": 0.1, "inits": 8}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "bimodal",
            "Symmetric bimodal (the textbook figure)",
            "Forward KL spreads one Gaussian over both modes; from most starts reverse KL locks onto one of them.",
            GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0]),
            Gaussian(2.0, 1.0),
            dict(_DEFAULT),
        ),
        Preset(
            "unequal",
            "Unequal weights",
            "Reverse KL usually finds the heavy mode, but a start near the light one stays there.",
            GaussianMixture([0.7, 0.3], [-2.0, 3.0], [1.0, 0.7]),
            Gaussian(2.0, 1.0),
            dict(_DEFAULT),
        ),
        Preset(
            "three_modes",
            "Three modes",
            "Forward KL covers all three modes; reverse KL picks one of them, or one wide compromise over all "
            "three, depending on where it starts.",
            GaussianMixture([1.0, 1.0, 1.0], [-5.0, 0.0, 5.0], [0.8, 0.8, 0.8]),
            Gaussian(-3.5, 1.0),
            dict(_DEFAULT),
        ),
        Preset(
            "close_modes",
            "Close modes",
            "When the modes overlap, even reverse KL stays in the middle: mode-seeking needs a gap.",
            GaussianMixture([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0]),
            Gaussian(0.5, 0.5),
            dict(_DEFAULT),
        ),
        Preset(
            "far_modes",
            "Far modes",
            "Far apart, forward KL puts most of its mass where the teacher has almost none.",
            GaussianMixture([0.5, 0.5], [-6.0, 6.0], [0.7, 0.7]),
            Gaussian(1.0, 1.0),
            dict(_DEFAULT),
        ),
        Preset(
            "five_modes",
            "Five modes",
            "A single Gaussian cannot hold five modes: forward KL blurs all five, reverse KL keeps fewer "
            "(one mode, or the middle three).",
            GaussianMixture([0.15, 0.2, 0.3, 0.2, 0.15], [-8.0, -4.0, 0.0, 4.0, 8.0], [0.6] * 5),
            Gaussian(3.0, 1.0),
            dict(_DEFAULT),
        ),
        Preset(
            "ring",
            "Ring of eight (2-D)",
            "Forward KL draws one wide disc over the whole ring; reverse KL sits on one bump, or on two "
            "neighbouring bumps, and leaves the rest of the ring empty.",
            _ring(8, 4.0, 0.5),
            Gaussian(mean=[1.0, 0.5], cov=np.eye(2)),
            {"steps": 400, "lr": 0.05, "inits": 6},
        ),
        Preset(
            "correlated",
            "Correlated Gaussian, factorised student (Bishop Fig. 10.2)",
            "An axis-aligned student is too broad under forward KL and too compact under reverse KL.",
            Gaussian(mean=[0.0, 0.0], cov=[[1.0, 0.9], [0.9, 1.0]]),
            Gaussian(mean=[0.5, -0.5], cov=np.eye(2)),
            {"steps": 400, "lr": 0.05, "inits": 1, "learn": ("mean", "std")},
        ),
        Preset(
            "three_clusters",
            "Three clusters (2-D)",
            "Reverse KL chooses a cluster by its start; forward KL stretches over all three.",
            GaussianMixture(
                [0.4, 0.35, 0.25],
                [[-3.0, -2.0], [3.0, -1.5], [0.0, 3.5]],
                covs=[[[1.0, 0.3], [0.3, 0.6]], [[0.5, -0.2], [-0.2, 0.8]], [[0.7, 0.0], [0.0, 0.4]]],
            ),
            Gaussian(mean=[0.5, 0.0], cov=np.eye(2)),
            {"steps": 400, "lr": 0.05, "inits": 6},
        ),
        Preset(
            "city_tokens",
            "Two tokens with correlated answers",
            "A factorised student under forward KL says 'New Angeles'; under reverse KL it picks one city.",
            _city_table(),
            FactorizedCategorical(shape=(3, 3)),
            {"steps": 300, "lr": 0.1, "inits": 8},
            labels=(("New", "Los", "San"), ("York", "Angeles", "Francisco")),
        ),
        Preset(
            "yes_no_tokens",
            "Yes/No with a reason",
            "Forward KL says 'Yes, sharks'; reverse KL picks Yes or No and keeps only the reasons that fit it.",
            _answers_table((2, 4), {(0, 0): 0.30, (0, 1): 0.25, (1, 2): 0.20, (1, 3): 0.25}),
            FactorizedCategorical(shape=(2, 4)),
            dict(_TOKENS),
            labels=(("Yes,", "No,"), ("lifeguards", "calm water", "sharks", "strong currents")),
        ),
        Preset(
            "three_tokens",
            "Three tokens: Ho Chi Minh / Rio de Janeiro / Salt Lake City",
            "Forward KL spreads over all 24 invalid triples, such as 'Rio Chi City'; reverse KL names one city.",
            _answers_table((3, 3, 3), {(0, 0, 0): 0.40, (1, 1, 1): 0.35, (2, 2, 2): 0.25}),
            FactorizedCategorical(shape=(3, 3, 3)),
            dict(_TOKENS),
            labels=(("Ho", "Rio", "Salt"), ("Chi", "de", "Lake"), ("Minh", "Janeiro", "City")),
        ),
        _next_token(
            "breakfast_next_token",
            "Next token: 'For breakfast I had …'",
            "Twelve plausible tokens: temperature and top-k/top-p reshape the student's distribution.",
            _BREAKFAST,
        ),
        _next_token(
            "capital_next_token",
            "Next token: 'The capital of Australia is …'",
            "The student ranks Sydney first: cooling it (temperature < 1) makes it confidently wrong.",
            _CAPITAL,
        ),
    ]
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; unknown names raise ValueError listing the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def random_teacher(n_modes: int, seed: int) -> GaussianMixture:
    """A reproducible random 1-D teacher: ``n_modes`` (1..6) modes with weights in [0.2, 1],
    means spread over [-8, 8] at least 1.5 apart, stds in [0.4, 1.5]."""
    if isinstance(n_modes, bool) or not isinstance(n_modes, (int, np.integer)) or not 1 <= n_modes <= 6:
        raise ValueError(f"n_modes must be an integer in [1, 6], got {n_modes!r}")
    rng = np.random.default_rng(seed)
    # gaps of at least 1.5 between sorted means: draw the slack, then lay the means out
    slack = 16.0 - 1.5 * (n_modes - 1)
    means = -8.0 + np.sort(rng.uniform(0.0, slack, n_modes)) + 1.5 * np.arange(n_modes)
    weights = rng.uniform(0.2, 1.0, n_modes)
    stds = rng.uniform(0.4, 1.5, n_modes)
    return GaussianMixture(np.round(weights, 2), np.round(means, 1), np.round(stds, 1))


def starting_student(teacher: GaussianMixture | Gaussian, n_components: int = 1) -> Gaussian | GaussianMixture:
    """A neutral 1-D start for start 0: off-centre (so symmetric teachers do not pin it to the
    middle) and narrower than the teacher; K components spread over the teacher's centre."""
    mean, std = float(teacher.mean), float(np.sqrt(teacher.variance))
    if n_components == 1:
        return Gaussian(round(mean + 0.6 * std, 3), round(max(0.3 * std, 0.2), 3))
    centres = mean + std * np.linspace(-0.8, 0.8, n_components)
    return GaussianMixture(np.ones(n_components), np.round(centres, 3), np.full(n_components, max(0.4 * std, 0.2)))
