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
    # student's mass against the teacher's 0.2: a ratio of 0.205, just over the 1/5 coverage line
    np.testing.assert_allclose(s.mode_shares, np.diag(table), rtol=1e-12)
    np.testing.assert_allclose(s.core_ratios, np.diag(table) / np.diag(teacher.probs), rtol=1e-12)
    assert s.modes_covered == tuple(i for i in range(3) if table[i, i] >= 0.2 * teacher.probs[i, i])
    committed = kc.FactorizedCategorical(probs=[[0.98, 0.01, 0.01], [0.98, 0.01, 0.01]])
    c = kc.summarize(teacher, committed)
    assert c.modes_covered == (0,) and c.dominant_mode == 0
    assert c.low_density_mass == pytest.approx(1 - (0.98**2 + 2 * 0.01**2), rel=1e-12)
    assert s.mean is None


def test_2d_summary_and_validation():
    preset = kc.get_preset("ring")
    s = kc.summarize(preset.teacher, kc.Gaussian(mean=[0.0, 0.0], cov=17.0 * np.eye(2)))
    # a disc of std 4.1 over a ring of radius 4 holds 12% of the teacher's mass in each bump's core:
    # under the 1/5 line, so it covers none of them (issue 10: coverage is where the mass actually is)
    assert s.n_modes_covered == 0 and sum(s.mode_shares) == pytest.approx(1.0, abs=1e-6)
    assert s.core_ratios == pytest.approx([0.123] * 8, abs=1e-3)
    with pytest.raises(ValueError, match="coverage"):
        kc.mode_coverage(BIMODAL, kc.Gaussian(0, 1), coverage=1.5)
    with pytest.raises(ValueError, match="low_density"):
        kc.low_density_mass(BIMODAL, kc.Gaussian(0, 1), low_density=0.0)


# -- mode coverage by where the student's mass is (issue 10) ------------------------------------------


def _core_ratio_1d(student_cdf, mu, sd, weight):
    """Oracle: student mass in [mu - sd, mu + sd] over the teacher's (0.6827 x weight for a separated mode)."""
    core = stats.norm.cdf(1.0) - stats.norm.cdf(-1.0)
    return (student_cdf(mu + sd) - student_cdf(mu - sd)) / (weight * core)


@pytest.mark.parametrize(
    "student, covered",
    [
        (kc.Gaussian(0.0, 0.3), ()),  # 93% of its mass in the gap
        (kc.Gaussian(0.0, 1.0), ()),  # 6.7% of each mode's core mass: in the gap too
        (kc.Gaussian(3.0, 1.0), (1,)),  # exactly the +3 mode
        (kc.Gaussian(0.0, math.sqrt(10.0)), (0, 1)),  # the forward-KL optimum: both
        (BIMODAL, (0, 1)),  # the teacher covers all its modes
        (kc.GaussianMixture([0.5, 0.5], [-3.0, 3.1], [1.0, 1.0]), (0, 1)),  # a mixture: counted as a whole
    ],
)
def test_coverage_on_hand_made_students(student, covered):
    s = kc.summarize(BIMODAL, student)
    assert s.modes_covered == covered
    assert tuple(np.nonzero(kc.mode_coverage(BIMODAL, student))[0]) == covered
    # far-apart modes: each core is [mu - 1, mu + 1] (the other component is 1e-8 times smaller there)
    for k, mu in enumerate((-3.0, 3.0)):
        oracle = _core_ratio_1d(lambda x: float(student.cdf(np.array([x]))[0]), mu, 1.0, 0.5)
        assert s.core_ratios[k] == pytest.approx(oracle, rel=1e-6)


def test_reverse_kl_wide_optimum_on_five_modes_covers_the_middle_three():
    teacher = kc.get_preset("five_modes").teacher
    s = kc.summarize(teacher, kc.Gaussian(0.0, 3.63))
    # N(0, 3.63) holds 1.2% of its mass within +-0.6 of +-8, against the teacher's 0.15 x 0.683 = 10%
    assert s.modes_covered == (1, 2, 3)
    oracle = (stats.norm.cdf(8.6, 0, 3.63) - stats.norm.cdf(7.4, 0, 3.63)) / (0.15 * 0.6826894921)
    assert s.core_ratios[4] == pytest.approx(oracle, rel=1e-6)


def test_overlapping_modes_split_their_cores_where_the_components_cross():
    teacher = kc.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])  # cores [-2, 0] and [0, 2]
    assert kc.summarize(teacher, teacher).core_ratios == pytest.approx((1.0, 1.0), abs=1e-12)
    one_side = kc.Gaussian(1.0, 0.5)
    oracle = (stats.norm.cdf(2.0, 1, 0.5) - stats.norm.cdf(0.0, 1, 0.5)) / (
        teacher.cdf(np.array([2.0]))[0] - teacher.cdf(np.array([0.0]))[0]
    )
    assert kc.summarize(teacher, one_side).core_ratios[1] == pytest.approx(oracle, rel=1e-9)


def test_2d_coverage_against_monte_carlo():
    ring = kc.get_preset("ring").teacher
    assert kc.summarize(ring, ring).core_ratios == pytest.approx([1.0] * 8, abs=1e-6)
    student = kc.Gaussian(mean=[4.2, 0.1], cov=0.4 * np.eye(2))
    s = kc.summarize(ring, student)
    assert s.modes_covered == (0,)
    # oracle: Monte Carlo of the student's mass within Mahalanobis 1.515 (0.5 x 1.515 here) of the bump at
    # (4, 0), 200k draws, over the teacher's 1/8 x 0.6827 there (its neighbours add under 1e-4 of that)
    x = student.sample(200_000, seed=0)
    inside = np.mean(np.sum((x - [4.0, 0.0]) ** 2, 1) <= (0.5 * 1.5151729) ** 2)
    se = math.sqrt(inside * (1 - inside) / 200_000)
    assert s.core_ratios[0] == pytest.approx(inside / (0.6826895 / 8), abs=5 * se / (0.6826895 / 8))


def test_kl_pair_equals_two_divergence_calls_to_the_last_bit():
    # summarize takes both KLs from one quadrature (kl_core.divergences._kl_pair): the same sums, bit for bit
    from kl_core.divergences import _kl_pair

    ring = kc.PRESETS["ring"].teacher
    bimodal = kc.PRESETS["bimodal"].teacher
    pairs = [
        (bimodal, kc.Gaussian(0.5, 2.0)),
        (bimodal, kc.GaussianMixture([0.3, 0.7], [-2.0, 2.5], [0.5, 1.5])),
        (kc.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [0.05, 0.05]), kc.Gaussian(0.0, 5.0)),  # the kink case
        (kc.Gaussian(1.0, 2.0), kc.Gaussian(0.0, 1.0)),  # closed form
        (ring, kc.Gaussian([0.5, -0.3], cov=[[2.0, 0.4], [0.4, 1.5]])),
    ]
    for teacher, student in pairs:
        expected = (kc.divergence(teacher, student, "forward_kl"), kc.divergence(teacher, student, "reverse_kl"))
        assert _kl_pair(teacher, student) == expected
