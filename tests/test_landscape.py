"""Loss landscapes against the exact divergence, and their minima against published values."""

import math

import numpy as np
import pytest

import kl_core as kc

BIMODAL = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])
FIVE = kc.GaussianMixture([0.15, 0.2, 0.3, 0.2, 0.15], [-8.0, -4.0, 0.0, 4.0, 8.0], [0.6] * 5)


def test_reverse_kl_minima_published_values():
    # issue 2: global minima at mean +-2.984, std 1.023, value 0.6888; local minimum at 0, std 2.744, 0.8406
    land = kc.landscape(BIMODAL, "reverse_kl")
    assert len(land.minima) == 3
    glob = [m for m in land.minima if m.is_global]
    assert sorted(round(m.mean, 3) for m in glob) == [-2.984, 2.984]
    for m in glob:
        assert m.std == pytest.approx(1.023, abs=5e-4) and m.value == pytest.approx(0.6888, abs=5e-5)
    (local,) = [m for m in land.minima if not m.is_global]
    assert local.mean == pytest.approx(0.0, abs=1e-6)
    assert local.std == pytest.approx(2.744, abs=5e-4) and local.value == pytest.approx(0.8406, abs=5e-5)


def test_forward_kl_single_minimum_is_moment_matching():
    land = kc.landscape(BIMODAL, "forward_kl")
    (m,) = land.minima
    assert m.mean == pytest.approx(0.0, abs=1e-6) and m.std == pytest.approx(math.sqrt(10), rel=1e-6)
    assert m.value == pytest.approx(0.4620, abs=5e-5)


@pytest.mark.parametrize("teacher", [BIMODAL, FIVE])
@pytest.mark.parametrize(
    "objective,params",
    [("forward_kl", {}), ("reverse_kl", {}), ("jsd", {"beta": 0.5}), ("alpha", {"alpha": 0.0}), ("tv", {})],
)
def test_surface_values_equal_exact_divergence(teacher, objective, params):
    land = kc.landscape(teacher, objective, n=40, polish=False, **params)
    assert land.values.shape == (40, 40)
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 40, size=(12, 2)):
        s = kc.Gaussian(land.means[j], math.exp(land.log_stds[i]))
        # the fast forms are exact; the direct path integrates on a uniform grid: spectrally accurate
        # for smooth integrands, second order at the kinks of |p - q| (tv)
        rel = 1e-3 if objective == "tv" else 1e-6
        assert land.values[i, j] == pytest.approx(kc.divergence(teacher, s, objective, **params), rel=rel, abs=1e-9)


def test_uneven_axes_and_validation():
    means = np.array([-4.0, -1.0, 0.3, 2.0, 5.0])
    log_stds = np.log([0.5, 1.0, 3.0])
    land = kc.landscape(BIMODAL, "reverse_kl", means=means, log_stds=log_stds, polish=False)
    s = kc.Gaussian(0.3, 1.0)
    assert land.values[1, 2] == pytest.approx(kc.divergence(BIMODAL, s, "reverse_kl"), rel=1e-7)
    with pytest.raises(ValueError, match="increasing"):
        kc.landscape(BIMODAL, means=np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="1-D Gaussian"):
        kc.landscape(kc.Gaussian(mean=[0, 0], cov=np.eye(2)))
    with pytest.raises(ValueError, match="n must be"):
        kc.landscape(BIMODAL, n=2)
