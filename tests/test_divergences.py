"""Divergences against independent oracles: closed forms, scipy.integrate, torch, direct sums."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

import kl_core as kc
from kl_core.divergences import KINDS, akl_weights, integrand

BIMODAL = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])


def as_mixture(g: kc.Gaussian) -> kc.GaussianMixture:
    """The same density as a one-component mixture: bypasses the closed forms, forces quadrature."""
    return kc.GaussianMixture([1.0], [g.mean], [g.std])


def quad_oracle(teacher, student, kind, **params) -> float:
    """scipy.integrate.quad of the textbook definition of each kind, written from the densities."""
    lp = lambda x: float(teacher.log_prob(np.array([x]))[0])  # noqa: E731
    lq = lambda x: float(student.log_prob(np.array([x]))[0])  # noqa: E731

    def kl_term(la, lb):  # a log(a / b) from log a, log b (densities underflow in the far tails)
        return 0.0 if la == -math.inf else math.exp(la) * (la - lb)

    def log_mix(c, la, lb):  # log(c a + (1 - c) b)
        return float(np.logaddexp(math.log(c) + la, math.log1p(-c) + lb))

    beta = params.get("beta", 0.5)
    alpha = params.get("alpha", 0.1 if kind.startswith("skew") else 0.5)
    f = {
        "forward_kl": lambda x: kl_term(lp(x), lq(x)),
        "reverse_kl": lambda x: kl_term(lq(x), lp(x)),
        "jsd": lambda x: (
            beta * kl_term(lp(x), log_mix(beta, lp(x), lq(x)))
            + (1 - beta) * kl_term(lq(x), log_mix(beta, lp(x), lq(x)))
        ),
        "alpha": lambda x: (
            (alpha * math.exp(lp(x)) + (1 - alpha) * math.exp(lq(x)) - math.exp(alpha * lp(x) + (1 - alpha) * lq(x)))
            / (alpha * (1 - alpha))
        ),
        "skew_forward_kl": lambda x: kl_term(lp(x), log_mix(alpha, lp(x), lq(x))),
        "skew_reverse_kl": lambda x: kl_term(lq(x), log_mix(alpha, lq(x), lp(x))),
        "tv": lambda x: 0.5 * abs(math.exp(lp(x)) - math.exp(lq(x))),
    }[kind]
    _, mt, ct = teacher.components()
    _, ms, cs = student.components()
    centres = np.concatenate([mt[:, 0], ms[:, 0]])
    spread = np.sqrt(np.concatenate([ct[:, 0, 0], cs[:, 0, 0]]))
    lo, hi = (centres - 14 * spread).min(), (centres + 14 * spread).max()
    # split at the centres and at every crossing of p and q (kinks of |p - q|) for quad's sake
    xs = np.linspace(lo, hi, 20001)
    d = teacher.log_prob(xs) - student.log_prob(xs)
    flips = np.nonzero(np.sign(d[1:]) != np.sign(d[:-1]))[0]
    diff = lambda x: lp(x) - lq(x)  # noqa: E731
    crossings = [optimize.brentq(diff, xs[i], xs[i + 1], xtol=1e-15) for i in flips]
    points = np.unique(np.concatenate([[lo, hi], centres, crossings]))
    total = 0.0
    for a, b in zip(points[:-1], points[1:]):
        total += integrate.quad(f, a, b, epsabs=0.0, epsrel=1e-13, limit=500)[0]
    return total


def test_gaussian_kl_closed_form_textbook_value():
    # KL(N(0,1) || N(1, 2^2)) = ln 2 + (1 + 1)/8 - 1/2 = ln 2 - 1/4
    assert kc.divergence(kc.Gaussian(0, 1), kc.Gaussian(1, 2), "forward_kl") == pytest.approx(
        math.log(2) - 0.25, rel=1e-14
    )


@pytest.mark.parametrize("p,q", [((0.0, 1.0), (1.0, 2.0)), ((-3.0, 0.5), (4.0, 3.0)), ((10.0, 0.1), (-10.0, 0.2))])
def test_gaussian_kl_closed_form_vs_quadrature_vs_torch(p, q):
    tp, tq = kc.Gaussian(*p), kc.Gaussian(*q)
    closed = kc.divergence(tp, tq, "forward_kl")
    quadrature = kc.divergence(as_mixture(tp), as_mixture(tq), "forward_kl")
    oracle = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(p[0], dtype=torch.float64), torch.tensor(p[1], dtype=torch.float64)),
        torch.distributions.Normal(torch.tensor(q[0], dtype=torch.float64), torch.tensor(q[1], dtype=torch.float64)),
    ).item()
    assert closed == pytest.approx(oracle, rel=1e-12)
    assert quadrature == pytest.approx(oracle, rel=1e-9)


def test_nd_gaussian_kl_vs_torch_and_2d_quadrature():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 2)), rng.normal(size=(2, 2))
    cov_p, cov_q = a @ a.T + 0.5 * np.eye(2), b @ b.T + 0.5 * np.eye(2)
    mp, mq = np.array([0.3, -1.0]), np.array([1.0, 0.5])
    p, q = kc.Gaussian(mean=mp, cov=cov_p), kc.Gaussian(mean=mq, cov=cov_q)
    oracle = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(torch.tensor(mp), torch.tensor(cov_p)),
        torch.distributions.MultivariateNormal(torch.tensor(mq), torch.tensor(cov_q)),
    ).item()
    assert kc.divergence(p, q, "forward_kl") == pytest.approx(oracle, rel=1e-12)
    mix_p = kc.GaussianMixture([1.0], [mp], covs=[cov_p])
    mix_q = kc.GaussianMixture([1.0], [mq], covs=[cov_q])
    assert kc.divergence(mix_p, mix_q, "forward_kl") == pytest.approx(oracle, rel=1e-8)
    assert kc.divergence(mix_p, mix_q, "reverse_kl") == pytest.approx(kc.divergence(q, p, "forward_kl"), rel=1e-8)


def test_5d_gaussian_closed_form_and_mixture_needs_mc():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    p = kc.Gaussian(mean=np.zeros(5), cov=a @ a.T + np.eye(5))
    q = kc.Gaussian(mean=np.ones(5), cov=2 * np.eye(5))
    oracle = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(torch.zeros(5, dtype=torch.float64), torch.tensor(a @ a.T + np.eye(5))),
        torch.distributions.MultivariateNormal(torch.ones(5, dtype=torch.float64), torch.tensor(2 * np.eye(5))),
    ).item()
    assert kc.divergence(p, q, "forward_kl") == pytest.approx(oracle, rel=1e-12)
    mix = kc.GaussianMixture([0.5, 0.5], np.stack([np.zeros(5), np.ones(5)]))
    with pytest.raises(ValueError, match="method='mc'"):
        kc.divergence(mix, q, "forward_kl")
    est = kc.divergence(p, q, "forward_kl", method="mc", n=20_000, seed=0)
    assert abs(est.value - oracle) < 4 * est.stderr


CASES = [
    # well separated, multi-scale, nearly disjoint
    (BIMODAL, kc.Gaussian(0.0, math.sqrt(10.0))),
    (BIMODAL, kc.Gaussian(2.984, 1.023)),
    (BIMODAL, kc.GaussianMixture([0.3, 0.7], [-20.0, 5.0], [0.2, 3.0])),
    (kc.GaussianMixture([0.2, 0.8], [0.0, 0.05], [0.01, 5.0]), kc.Gaussian(1.0, 2.0)),
    (kc.Gaussian(-8.0, 0.5), kc.GaussianMixture([1.0], [8.0], [0.5])),
]
KIND_PARAMS = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("jsd", {"beta": 0.5}),
    ("jsd", {"beta": 0.1}),
    ("alpha", {"alpha": 0.5}),
    ("alpha", {"alpha": 0.9}),
    ("skew_forward_kl", {"alpha": 0.1}),
    ("skew_reverse_kl", {"alpha": 0.3}),
    ("tv", {}),
]


@pytest.mark.parametrize("kind,params", KIND_PARAMS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_every_kind_matches_scipy_quad(kind, params, case):
    teacher, student = CASES[case]
    exact = kc.divergence(teacher, student, kind, **params)
    oracle = quad_oracle(teacher, student, kind, **params)
    assert exact == pytest.approx(oracle, rel=1e-6, abs=1e-12)


def test_a_corner_of_the_teachers_log_density_inside_a_wide_student_is_integrated():
    """Two narrow modes at +-1 under a wide student: log p turns a corner at 0 over a width of 0.001,
    far from either mode, inside one of the student's panels. Reverse KL weights that corner by log p;
    without a breakpoint on it the quadrature was 3599.78510 (quad: 3599.81869, 9e-6 relative)."""
    teacher, student = kc.GaussianMixture([0.5, 0.5], [-1.0, 1.0], [0.05, 0.05]), kc.Gaussian(0.0, 5.0)
    lp = lambda x: float(teacher.log_prob(np.array([x]))[0])  # noqa: E731
    lq = lambda x: float(student.log_prob(np.array([x]))[0])  # noqa: E731
    textbook = {
        "reverse_kl": lambda x: math.exp(lq(x)) * (lq(x) - lp(x)),
        "forward_kl": lambda x: math.exp(lp(x)) * (lp(x) - lq(x)) if lp(x) > -700 else 0.0,
        "tv": lambda x: 0.5 * abs(math.exp(lp(x)) - math.exp(lq(x))),
    }
    edges = [-80.0, -1.0, 0.0, 1.0, 80.0]  # split at the corner and the modes; each piece adaptive
    for kind, f in textbook.items():
        oracle = sum(
            integrate.quad(f, a, b, points=[0.5 * (a + b)], epsabs=0.0, epsrel=1e-13, limit=500)[0]
            for a, b in zip(edges[:-1], edges[1:])
        )
        assert kc.divergence(teacher, student, kind) == pytest.approx(oracle, rel=1e-9), kind


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mixture_pairs_match_scipy_quad(seed):
    """Seeded random mixtures (2-3 modes, stds 0.05-2 within +-3): every kind within 1e-6 of quad."""
    rng = np.random.default_rng(seed)

    def mixture(k):
        return kc.GaussianMixture(rng.dirichlet(np.ones(k)), rng.uniform(-3, 3, k), np.exp(rng.uniform(-3.0, 0.7, k)))

    teacher, student = mixture(int(rng.integers(2, 4))), mixture(int(rng.integers(1, 3)))
    for kind, params in (("forward_kl", {}), ("reverse_kl", {}), ("jsd", {"beta": 0.5}), ("alpha", {"alpha": 0.5})):
        oracle = quad_oracle(teacher, student, kind, **params)
        assert kc.divergence(teacher, student, kind, **params) == pytest.approx(oracle, rel=1e-6), kind


@pytest.mark.parametrize("alpha", [-0.5, 1.5, 2.0])
def test_alpha_outside_unit_interval_finite_and_infinite(alpha):
    p, q = kc.Gaussian(0.0, 1.0), kc.Gaussian(0.5, 1.2)
    closed = kc.divergence(p, q, "alpha", alpha=alpha)
    by_quadrature = kc.divergence(as_mixture(p), as_mixture(q), "alpha", alpha=alpha)
    assert closed == pytest.approx(quad_oracle(p, q, "alpha", alpha=alpha), rel=1e-8)
    assert by_quadrature == pytest.approx(closed, rel=1e-8)
    # q much narrower than p: p^a q^(1-a) with a > 1 is not integrable
    assert kc.divergence(kc.Gaussian(0, 3), kc.Gaussian(0, 0.5), "alpha", alpha=2.0) == math.inf
    assert (
        kc.divergence(kc.GaussianMixture([1, 1], [0, 1], [3, 1]), kc.Gaussian(0, 0.5), "alpha", alpha=2.0) == math.inf
    )


def test_bimodal_oracle_values():
    # Issue 2's published values for the teacher 1/2 N(-3,1) + 1/2 N(3,1)
    assert kc.divergence(BIMODAL, kc.Gaussian(0.0, math.sqrt(10)), "forward_kl") == pytest.approx(0.4620, abs=5e-5)


# -------------------------------------------------------------------------------------------
# Discrete
# -------------------------------------------------------------------------------------------

T3, S3 = kc.Categorical(probs=[0.7, 0.2, 0.1]), kc.Categorical(probs=[0.2, 0.5, 0.3])


@pytest.mark.parametrize(
    "kind,params,expected",
    [  # hand-computed to 6 decimals (issue 4)
        ("forward_kl", {}, 0.583815),
        ("reverse_kl", {}, 0.537176),
        ("jsd", {"beta": 0.5}, 0.132918),
    ],
)
def test_discrete_published_values(kind, params, expected):
    assert kc.divergence(T3, S3, kind, **params) == pytest.approx(expected, abs=5e-7)


def numpy_reference(p, q, kind, **par):
    """Direct numpy computation from the definitions in DESIGN.md (no log space)."""
    kl = lambda a, b: float(np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / b), 0.0)))  # noqa: E731
    if kind == "forward_kl":
        return kl(p, q)
    if kind == "reverse_kl":
        return kl(q, p)
    if kind == "jsd":
        b = par["beta"]
        m = b * p + (1 - b) * q
        return b * kl(p, m) + (1 - b) * kl(q, m)
    if kind == "alpha":
        a = par["alpha"]
        return float(np.sum(a * p + (1 - a) * q - p**a * q ** (1 - a)) / (a * (1 - a)))
    if kind == "skew_forward_kl":
        return kl(p, par["alpha"] * p + (1 - par["alpha"]) * q)
    if kind == "skew_reverse_kl":
        return kl(q, par["alpha"] * q + (1 - par["alpha"]) * p)
    if kind == "tv":
        return 0.5 * float(np.abs(p - q).sum())
    if kind == "akl":
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        head = np.zeros(p.size, bool)
        head[order[0]] = True
        head[order[cum <= par["mu"]]] = True
        gh, gt = np.abs(p - q)[head].sum(), np.abs(p - q)[~head].sum()
        return (gh * kl(p, q) + gt * kl(q, p)) / (gh + gt)
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind,params",
    KIND_PARAMS[:-1] + [("alpha", {"alpha": -0.7}), ("alpha", {"alpha": 1.8}), ("tv", {}), ("akl", {"mu": 0.5})],
)
@pytest.mark.parametrize("seed", range(5))
def test_discrete_every_kind_vs_numpy(kind, params, seed):
    rng = np.random.default_rng(seed)
    p, q = rng.dirichlet(np.ones(12)).reshape(3, 4), rng.dirichlet(np.ones(12)).reshape(3, 4)
    got = kc.divergence(kc.Categorical(probs=p), kc.Categorical(probs=q), kind, **params)
    assert got == pytest.approx(numpy_reference(p.ravel(), q.ravel(), kind, **params), rel=1e-10)


def test_factorized_student_uses_its_joint_table():
    s = kc.FactorizedCategorical(probs=[[0.2, 0.8], [0.5, 0.25, 0.25]])
    t = kc.Categorical(probs=np.arange(1, 7).reshape(2, 3))
    table = np.outer([0.2, 0.8], [0.5, 0.25, 0.25])
    assert kc.divergence(t, s, "reverse_kl") == pytest.approx(
        numpy_reference(t.probs.ravel(), table.ravel(), "reverse_kl"), rel=1e-12
    )


def test_disjoint_supports_are_infinite_never_nan():
    p = kc.Categorical(probs=[0.5, 0.5, 0.0])
    q = kc.Categorical(probs=[0.0, 0.5, 0.5])
    assert kc.divergence(p, q, "forward_kl") == math.inf
    assert kc.divergence(p, q, "reverse_kl") == math.inf
    assert kc.divergence(p, q, "alpha", alpha=-0.5) == math.inf
    assert kc.divergence(p, q, "alpha", alpha=1.5) == math.inf
    # bounded kinds stay finite: JS of disjoint halves, TV, skewed KLs
    assert kc.divergence(p, q, "jsd") == pytest.approx(numpy_reference(p.probs, q.probs, "jsd", beta=0.5))
    assert kc.divergence(p, q, "tv") == pytest.approx(0.5)
    assert math.isfinite(kc.divergence(p, q, "skew_forward_kl", alpha=0.1))
    assert kc.divergence(p, q, "forward_kl", method="mc", n=100, seed=0).value == math.inf


def test_akl_weights_match_reference_definition():
    p = np.array([0.5, 0.3, 0.1, 0.1])
    q = np.array([0.25, 0.25, 0.25, 0.25])
    head, tail = akl_weights(p, q, 0.5)
    # head = {0} (cumsum 0.5 <= mu), gaps: head 0.25; tail 0.05 + 0.15 + 0.15 = 0.35
    assert head == pytest.approx(0.25 / 0.6) and tail == pytest.approx(0.35 / 0.6)
    same = akl_weights(p, p, 0.5)
    assert same == (0.5, 0.5)


# -------------------------------------------------------------------------------------------
# Invariants (hypothesis)
# -------------------------------------------------------------------------------------------

finite_kinds = [k for k in KINDS if k != "akl"]


@st.composite
def mixtures(draw, max_k=3):
    k = draw(st.integers(1, max_k))
    w = draw(st.lists(st.floats(0.1, 1.0), min_size=k, max_size=k))
    m = draw(st.lists(st.floats(-6, 6), min_size=k, max_size=k))
    s = draw(st.lists(st.floats(0.3, 3.0), min_size=k, max_size=k))
    return kc.GaussianMixture(w, m, s)


@settings(max_examples=40, deadline=None)
@given(mixtures(), mixtures(), st.sampled_from(finite_kinds))
def test_every_kind_nonnegative_and_zero_on_itself(p, q, kind):
    assert kc.divergence(p, q, kind) >= -1e-12
    assert abs(kc.divergence(p, p, kind)) < 1e-9


@settings(max_examples=40, deadline=None)
@given(mixtures(), mixtures(), st.floats(0.01, 0.99))
def test_jsd_bounded_by_ln2_and_endpoints_are_kls(p, q, beta):
    assert kc.divergence(p, q, "jsd", beta=beta) <= math.log(2) + 1e-12
    assert kc.divergence(p, q, "jsd", beta=0.0) == pytest.approx(kc.divergence(p, q, "forward_kl"), rel=1e-12)
    assert kc.divergence(p, q, "jsd", beta=1.0) == pytest.approx(kc.divergence(p, q, "reverse_kl"), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(mixtures(2), mixtures(2))
def test_alpha_limits_are_the_two_kls(p, q):
    fwd, rev = kc.divergence(p, q, "forward_kl"), kc.divergence(p, q, "reverse_kl")
    # D_alpha - KL is first order in the distance to the endpoint: 100x closer, ~100x smaller error
    for limit, at in ((fwd, lambda e: 1 - e), (rev, lambda e: e)):
        far = abs(kc.divergence(p, q, "alpha", alpha=at(1e-4)) - limit)
        near = abs(kc.divergence(p, q, "alpha", alpha=at(1e-6)) - limit)
        assert near <= far / 50 + 1e-9 * max(1.0, limit)
    assert kc.divergence(p, q, "alpha", alpha=1.0) == fwd
    assert kc.divergence(p, q, "alpha", alpha=0.0) == rev


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(finite_kinds))
def test_monte_carlo_within_four_standard_errors(seed, kind):
    rng = np.random.default_rng(seed)
    p = kc.GaussianMixture(rng.uniform(0.2, 1, 2), rng.uniform(-4, 4, 2), rng.uniform(0.5, 2, 2))
    q = kc.Gaussian(rng.uniform(-2, 2), rng.uniform(1.0, 3.0))
    exact = kc.divergence(p, q, kind)
    est = kc.divergence(p, q, kind, method="mc", n=20_000, seed=seed)
    assert abs(est.value - exact) <= 4 * est.stderr + 1e-12


def test_mc_discrete_and_reproducible():
    rng = np.random.default_rng(1)
    p = kc.Categorical(probs=rng.dirichlet(np.ones(6)))
    q = kc.Categorical(probs=rng.dirichlet(np.ones(6)))
    for kind in finite_kinds:
        est = kc.divergence(p, q, kind, method="mc", n=50_000, seed=7)
        assert abs(est.value - kc.divergence(p, q, kind)) <= 4 * est.stderr + 1e-12
        assert est == kc.divergence(p, q, kind, method="mc", n=50_000, seed=7)


def test_integrand_is_one_homogeneous():
    # g(c p, c q) = c g(p, q) is what lets the exact and Monte-Carlo paths share one integrand
    rng = np.random.default_rng(0)
    lp, lq = rng.normal(size=50), rng.normal(size=50)
    for kind in finite_kinds:
        params = {"beta": 0.3} if kind == "jsd" else {"alpha": 0.7} if kind in ("alpha",) else {}
        a = integrand(kind, lp + 1.3, lq + 1.3, **params)
        b = math.exp(1.3) * integrand(kind, lp, lq, **params)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), "nope"), "valid kinds"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), "jsd", beta=1.5), r"beta must be in \[0.0, 1.0\]"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), "jsd", gamma=1), "unknown parameter"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), "skew_forward_kl", alpha=-0.1), "alpha must be in"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), "akl"), "discrete"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), method="quad"), "method must be"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian(0, 1), method="mc", n=1), "n must be"),
        (lambda: kc.divergence(BIMODAL, kc.Gaussian([0, 0], cov=np.eye(2))), "Dimension mismatch"),
        (lambda: kc.divergence(T3, kc.Categorical(probs=[1, 1])), "Shape mismatch"),
        (lambda: kc.divergence(T3, kc.Gaussian(0, 1)), "both be continuous or both be discrete"),
        (lambda: kc.divergence(T3, S3, "akl", method="mc"), "no Monte-Carlo"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_2d_mixture_quadrature_vs_dblquad():
    teacher = kc.GaussianMixture([0.4, 0.6], [[0, 0], [2, 1]], covs=[np.eye(2), [[1, 0.6], [0.6, 0.8]]])
    student = kc.Gaussian(mean=[1.0, 0.5], cov=[[2, 0.3], [0.3, 1.5]])

    def f(y, x):
        pt = np.array([[x, y]])
        lp, lq = teacher.log_prob(pt)[0], student.log_prob(pt)[0]
        m = np.logaddexp(math.log(0.5) + lp, math.log(0.5) + lq)
        return 0.5 * math.exp(lp) * (lp - m) + 0.5 * math.exp(lq) * (lq - m)

    oracle = integrate.dblquad(f, -12, 14, -12, 13, epsabs=1e-11, epsrel=1e-10)[0]
    assert kc.divergence(teacher, student, "jsd") == pytest.approx(oracle, rel=1e-8)
