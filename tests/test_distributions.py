"""Distributions against scipy.stats / torch.distributions, sampling moments, validation."""

import math
import pickle

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import kl_core as kc


def test_gaussian_1d_log_prob_entropy_vs_scipy():
    g = kc.Gaussian(1.5, 0.7)
    x = np.linspace(-4, 6, 41)
    np.testing.assert_allclose(g.log_prob(x), stats.norm(1.5, 0.7).logpdf(x), rtol=1e-13)
    assert g.entropy() == pytest.approx(stats.norm(1.5, 0.7).entropy(), rel=1e-14)
    assert (g.mean, g.std, g.variance) == (1.5, 0.7, pytest.approx(0.49))
    np.testing.assert_allclose(g.grad_log_prob(x), -(x - 1.5) / 0.49, rtol=1e-12)


def test_gaussian_nd_vs_torch():
    cov = np.array([[2.0, 0.6, 0.1], [0.6, 1.0, -0.3], [0.1, -0.3, 0.5]])
    mean = np.array([0.5, -1.0, 2.0])
    g = kc.Gaussian(mean=mean, cov=cov)
    ref = torch.distributions.MultivariateNormal(torch.tensor(mean), torch.tensor(cov))
    x = np.random.default_rng(0).normal(size=(20, 3))
    np.testing.assert_allclose(g.log_prob(x), ref.log_prob(torch.tensor(x)).numpy(), rtol=1e-12)
    assert g.entropy() == pytest.approx(ref.entropy().item(), rel=1e-12)
    np.testing.assert_allclose(g.cov, cov, rtol=1e-12)
    np.testing.assert_allclose(g.grad_log_prob(x), -(x - mean) @ np.linalg.inv(cov), rtol=1e-10)


def test_mixture_1d_vs_torch_and_moments():
    m = kc.GaussianMixture([1.0, 3.0], [-2.0, 1.0], [0.5, 1.5])
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=torch.tensor([0.25, 0.75], dtype=torch.float64)),
        torch.distributions.Normal(
            torch.tensor([-2.0, 1.0], dtype=torch.float64), torch.tensor([0.5, 1.5], dtype=torch.float64)
        ),
    )
    x = np.linspace(-6, 6, 50)
    np.testing.assert_allclose(m.log_prob(x), ref.log_prob(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.weights, [0.25, 0.75])
    # moments: mean = sum w mu; var = sum w (s^2 + mu^2) - mean^2
    assert m.mean == pytest.approx(0.25 * -2 + 0.75 * 1)
    assert m.variance == pytest.approx(0.25 * (0.25 + 4) + 0.75 * (2.25 + 1) - 0.25**2)
    # entropy by quadrature vs scipy.integrate.quad
    h = integrate.quad(
        lambda t: -math.exp(m.log_prob(np.array([t]))[0]) * m.log_prob(np.array([t]))[0],
        -20,
        20,
        points=[-2, 1],
        limit=200,
        epsabs=0,
        epsrel=1e-12,
    )[0]
    assert m.entropy() == pytest.approx(h, rel=1e-9)
    # cdf vs numerical integral of the density
    assert m.cdf(0.3) == pytest.approx(0.25 * stats.norm.cdf(0.3, -2, 0.5) + 0.75 * stats.norm.cdf(0.3, 1, 1.5))
    # grad_log_prob vs central differences
    eps = 1e-6
    fd = (m.log_prob(x + eps) - m.log_prob(x - eps)) / (2 * eps)
    np.testing.assert_allclose(m.grad_log_prob(x), fd, rtol=1e-6, atol=1e-8)


def test_mixture_2d_entropy_and_gradient():
    m = kc.GaussianMixture([0.4, 0.6], [[0.0, 0.0], [2.0, 1.0]], covs=[np.eye(2), [[1.0, 0.4], [0.4, 0.5]]])
    x = np.random.default_rng(1).normal(size=(10, 2))
    eps = 1e-6
    for j in range(2):
        e = np.zeros(2)
        e[j] = eps
        fd = (m.log_prob(x + e) - m.log_prob(x - e)) / (2 * eps)
        np.testing.assert_allclose(m.grad_log_prob(x)[:, j], fd, rtol=1e-6, atol=1e-8)
    # entropy: quadrature vs Monte Carlo (fixed seed, 4 standard errors)
    s = m.sample(200_000, seed=0)
    terms = -m.log_prob(s)
    assert abs(m.entropy() - terms.mean()) < 4 * terms.std() / math.sqrt(len(terms))


def test_max_over_components_is_numpys_max():
    """log_prob's column-by-column max over components: the very numbers of ``max(-1)``, NaN and -inf included."""
    from kl_core.distributions import _max_last

    c = np.random.default_rng(2).normal(size=(50, 20))
    c[3, 5], c[7] = np.nan, -np.inf
    for k in (1, 2, 3, 8, 20):
        np.testing.assert_array_equal(_max_last(c[:, :k]), c[:, :k].max(-1))
    assert np.isnan(_max_last(c)[3]) and _max_last(c)[7] == -np.inf


@pytest.mark.parametrize(
    "dist",
    [
        kc.Gaussian(1.0, 2.0),
        kc.GaussianMixture([0.3, 0.7], [-3.0, 2.0], [0.5, 1.0]),
        kc.Gaussian(mean=[1.0, -1.0], cov=[[1.0, 0.8], [0.8, 2.0]]),
        kc.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [3.0, 3.0]]),
    ],
)
def test_sample_moments_within_standard_errors(dist):
    n = 100_000
    x = dist.sample(n, seed=42)
    assert x.shape == ((n,) if dist.univariate else (n, dist.dim))
    mean, var = np.atleast_1d(dist.mean), np.atleast_1d(dist.variance)
    se = np.sqrt(var / n)
    assert np.all(np.abs(np.atleast_2d(x.T).mean(-1) - mean) < 4 * se)
    np.testing.assert_array_equal(dist.sample(10, seed=3), dist.sample(10, seed=3))


def test_rsample_is_the_reparameterisation():
    g = kc.Gaussian(2.0, 0.5)
    np.testing.assert_allclose(g.rsample(np.array([-1.0, 0.0, 2.0])), [1.5, 2.0, 3.0])
    g2 = kc.Gaussian(mean=[0.0, 1.0], cov=[[4.0, 2.0], [2.0, 2.0]])
    eps = np.random.default_rng(0).normal(size=(50_000, 2))
    np.testing.assert_allclose(np.cov(g2.rsample(eps).T), g2.cov, atol=0.1)


def test_categorical_and_factorized():
    c = kc.Categorical(probs=[[2.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(c.probs, [[0.5, 0.0], [0.25, 0.25]])
    assert c.entropy() == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    assert c.log_prob(np.array([[0, 1]]))[0] == -math.inf
    np.testing.assert_allclose(c.marginals()[0], [0.5, 0.5])
    s = c.sample(20_000, seed=0)
    assert s.shape == (20_000, 2) and not np.any((s[:, 0] == 0) & (s[:, 1] == 1))
    assert np.mean(s[:, 0] == 0) == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / 20_000))
    logits = kc.Categorical(logits=np.log([[2.0, 1.0], [1.0, 0.0 + 1e-300]]))
    assert logits.probs.sum() == pytest.approx(1.0)

    f = kc.FactorizedCategorical(probs=[[0.2, 0.8], [0.5, 0.3, 0.2]])
    table = np.outer([0.2, 0.8], [0.5, 0.3, 0.2])
    np.testing.assert_allclose(f.table(), table)
    assert f.entropy() == pytest.approx(-np.sum(table * np.log(table)))
    np.testing.assert_allclose(f.log_prob(np.array([[1, 2], [0, 0]])), np.log([0.8 * 0.2, 0.2 * 0.5]))
    np.testing.assert_allclose(kc.FactorizedCategorical(shape=(2, 4)).table(), np.full((2, 4), 1 / 8))
    torch_ref = torch.distributions.Categorical(probs=torch.tensor(table.ravel()))
    assert f.entropy() == pytest.approx(torch_ref.entropy().item(), rel=1e-12)


@pytest.mark.parametrize(
    "dist",
    [
        kc.Gaussian(0.5, 2.0),
        kc.Gaussian(mean=[0.0, 1.0], cov=[[1.0, 0.2], [0.2, 1.0]]),
        kc.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [1.0, 2.0]),
        kc.Categorical(probs=[0.1, 0.9]),
        kc.FactorizedCategorical(probs=[[0.1, 0.9], [0.3, 0.7]]),
    ],
)
def test_value_semantics_immutable_and_picklable(dist):
    again = pickle.loads(pickle.dumps(dist))
    assert again == dist and hash(again) == hash(dist)
    with pytest.raises(AttributeError):
        dist.foo = 1
    assert repr(dist).startswith(type(dist).__name__)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: kc.Gaussian(0.0, 0.0), r"std must be > 0"),
        (lambda: kc.Gaussian(0.0, -1.0), r"std must be > 0"),
        (lambda: kc.Gaussian(float("nan"), 1.0), "mean must be finite"),
        (lambda: kc.Gaussian(0.0, float("inf")), "std must be finite"),
        (lambda: kc.Gaussian(mean=[0, 0], cov=[[1, 2], [2, 1]]), "cov must be positive definite"),
        (lambda: kc.Gaussian(mean=[0, 0], cov=[[1, 0.5], [0.2, 1]]), "cov must be symmetric"),
        (lambda: kc.Gaussian(mean=[0, 0], cov=np.eye(3)), "Shape mismatch"),
        (lambda: kc.GaussianMixture([-0.5, 1.5], [0, 1], [1, 1]), r"weights must be >= 0"),
        (lambda: kc.GaussianMixture([0.0, 0.0], [0, 1], [1, 1]), "sum to a positive number"),
        (lambda: kc.GaussianMixture([0.5, 0.5], [0, 1, 2], [1, 1, 1]), "Length mismatch"),
        (lambda: kc.GaussianMixture([0.5, 0.5], [0, 1], [1]), "Length mismatch"),
        (lambda: kc.GaussianMixture([0.5, 0.5], [0, 1], [1, 0]), r"stds must be > 0"),
        (lambda: kc.GaussianMixture([1.0] * 21, np.arange(21.0), [1.0] * 21), "at most 20 components"),
        (lambda: kc.GaussianMixture([1, 1], [[0, 0], [1, 1]], covs=[np.eye(2), -np.eye(2)]), "positive definite"),
        (lambda: kc.GaussianMixture([1, float("nan")], [0, 1], [1, 1]), "weights must be finite"),
        (lambda: kc.Categorical(probs=[0.5, -0.1]), r"probs must be >= 0"),
        (lambda: kc.Categorical(probs=[0.0, 0.0]), "sum to a positive number"),
        (lambda: kc.Categorical(probs=[0.5, float("nan")]), "probs must be finite"),
        (lambda: kc.Categorical(logits=[float("nan"), 0.0]), "logits must not contain NaN"),
        (lambda: kc.Categorical(), "exactly one of probs or logits"),
        (lambda: kc.FactorizedCategorical(shape=(2, 0)), "positive integers"),
        (lambda: kc.FactorizedCategorical(), "exactly one of"),
        (lambda: kc.Gaussian(0, 1).sample(0), "n must be a positive integer"),
        (lambda: kc.Gaussian(0, 1).sample(5, seed=-1), "seed must be"),
    ],
)
def test_validation_errors_name_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()
