"""Metrics against independent integrals (scipy) and hand-computed tables."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

import kl_core as kc

BIMODAL = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])


def test_summary_of_the_two_classic_students():
    wide = kc.summarize(BIMODAL, kc.Gaussian(0.0, math.sqrt(10)))
    assert wide.modes_covered == (0, 1) and wide.n_modes_covered == 2
    assert wide.mode_shares == pytest.approx((0.5, 0.5), abs=1e-12)
    assert wide.forward_kl == pytest.approx(0.4620, abs=5e-5)
    assert wide.entropy == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 10))
    sharp = kc.summarize(BIMODAL, kc.Gaussian(2.984, 1.023))
    assert sharp.modes_covered == (1,) and sharp.dominant_mode == 1
    assert sharp.reverse_kl == pytest.approx(0.6888, abs=5e-5)
    assert sharp.low_density_mass < 0.05 < wide.low_density_mass


def test_mode_share_matches_scipy_integral_of_responsibility():
    student = kc.Gaussian(1.0, 2.0)
    r1 = lambda x: 1.0 / (1.0 + math.exp(-6.0 * x))  # teacher responsibility of the +3 mode  # noqa: E731
    oracle = integrate.quad(lambda x: stats.norm.pdf(x, 1.0, 2.0) * r1(x), -30, 30, limit=200)[0]
    assert kc.mode_shares(BIMODAL, student)[1] == pytest.approx(oracle, rel=1e-9)


def test_low_density_mass_matches_scipy():
    student = kc.Gaussian(0.0, math.sqrt(10))
    peak = BIMODAL.log_prob(np.array([3.0]))[0]  # symmetric modes far apart: peaks at +-3 (to 1e-7)
    level = peak + math.log(0.05)
    f = lambda x: BIMODAL.log_prob(np.array([x]))[0] - level  # noqa: E731
    from scipy.optimize import brentq

    inner = brentq(f, 0.0, 3.0)
    outer = brentq(f, 3.0, 10.0)
    sd = math.sqrt(10)
    # low-density region: |x| < inner or |x| > outer
    oracle = (stats.norm.cdf(inner, 0, sd) - stats.norm.cdf(-inner, 0, sd)) + 2 * stats.norm.sf(outer, 0, sd)
    assert kc.low_density_mass(BIMODAL, student) == pytest.approx(oracle, rel=1e-6)


def test_discrete_metrics_on_the_city_table():
    preset = kc.get_preset("city_tokens")
    teacher = preset.teacher
    fwd = kc.FactorizedCategorical(probs=teacher.marginals())  # the forward-KL optimum
    s = kc.summarize(teacher, fwd)
    table = fwd.table()
    invalid = ~np.eye(3, dtype=bool)
    assert s.low_density_mass == pytest.approx(table[invalid].sum(), rel=1e-12)
    # each valid pair gets the product of its marginals, ~p_i^2: "San Francisco" holds 0.04 of the
    # student's mass against the teacher's 0.2, under the 1/4 coverage line
    np.testing.assert_allclose(s.mode_shares, np.diag(table), rtol=1e-12)
    assert s.modes_covered == tuple(i for i in range(3) if table[i, i] >= 0.25 * teacher.probs[i, i])
    committed = kc.FactorizedCategorical(probs=[[0.98, 0.01, 0.01], [0.98, 0.01, 0.01]])
    c = kc.summarize(teacher, committed)
    assert c.modes_covered == (0,) and c.dominant_mode == 0
    assert c.low_density_mass == pytest.approx(1 - (0.98**2 + 2 * 0.01**2), rel=1e-12)
    assert s.mean is None


def test_2d_summary_and_validation():
    preset = kc.get_preset("ring")
    s = kc.summarize(preset.teacher, kc.Gaussian(mean=[0.0, 0.0], cov=17.0 * np.eye(2)))
    assert s.n_modes_covered == 8 and sum(s.mode_shares) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="coverage"):
        kc.mode_coverage(BIMODAL, kc.Gaussian(0, 1), coverage=1.5)
    with pytest.raises(ValueError, match="low_density"):
        kc.low_density_mass(BIMODAL, kc.Gaussian(0, 1), low_density=0.0)
