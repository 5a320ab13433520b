"""KL Lab's library: distributions, divergences, fitting and loss landscapes for forward vs reverse KL."""

from kl_core.distributions import Categorical, FactorizedCategorical, Gaussian, GaussianMixture
from kl_core.divergences import KINDS, MCEstimate, divergence
from kl_core.fitting import Optimizer, Trajectory, adam, fit, sgd
from kl_core.landscape import Landscape, Minimum, landscape
from kl_core.metrics import StudentSummary, low_density_mass, mode_coverage, mode_shares, summarize
from kl_core.presets import PRESETS, Preset, get_preset
from kl_core.tokens import kl_estimate, token_divergence

__all__ = [
    "Gaussian",
    "GaussianMixture",
    "Categorical",
    "FactorizedCategorical",
    "KINDS",
    "MCEstimate",
    "divergence",
    "fit",
    "Trajectory",
    "Optimizer",
    "adam",
    "sgd",
    "landscape",
    "Landscape",
    "Minimum",
    "summarize",
    "StudentSummary",
    "mode_shares",
    "mode_coverage",
    "low_density_mass",
    "PRESETS",
    "Preset",
    "get_preset",
    "token_divergence",
    "kl_estimate",
]
