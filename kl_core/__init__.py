"""KL Lab's library: distributions, divergences, fitting and loss landscapes for forward vs reverse KL."""

from kl_core.distributions import Categorical, FactorizedCategorical, Gaussian, GaussianMixture
from kl_core.divergences import KINDS, MCEstimate, divergence
from kl_core.fitting import Optimizer, Trajectory, adam, fit, sgd
from kl_core.landscape import Landscape, Minimum, landscape
from kl_core.metrics import StudentSummary, low_density_mass, mode_coverage, mode_shares, summarize
from kl_core.presets import PRESETS, Preset, get_preset

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
    "fused_token_divergence",
    "kl_estimate",
    "identify",
]

# these import torch (~2 s)
_LAZY = {
    "token_divergence": "kl_core.tokens",
    "fused_token_divergence": "kl_core.fused_tokens",
    "kl_estimate": "kl_core.tokens",
    "identify": "kl_core.identification",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kl_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
