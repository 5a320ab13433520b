"""kl_core.tokens: token-level divergences on logits, the k1/k2/k3 estimators, sampling filters."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import log_softmax, rel_entr
from spec_tools import TOKEN_KIND_PARAMS

import kl_core as kc
from kl_core.divergences import KINDS, akl_weights
from kl_core.tokens import (
    apply_temperature,
    kl_estimate,
    token_divergence,
    top_k_filter,
    top_p_filter,
)

T = np.array([0.7, 0.2, 0.1])
S = np.array([0.2, 0.5, 0.3])
PARAMS = TOKEN_KIND_PARAMS


def test_every_kind_has_a_case():
    assert set(PARAMS) == set(KINDS)


@pytest.mark.parametrize(
    "kind, params, expected",
    [  # the oracle values for T = [0.7, 0.2, 0.1], S = [0.2, 0.5, 0.3]
        ("forward_kl", {}, 0.583815),
        ("reverse_kl", {}, 0.537176),
        ("jsd", {"beta": 0.5}, 0.132918),
        ("jsd", {"beta": 0.0}, 0.583815),  # special-cased: exactly forward KL (as TRL)
        ("jsd", {"beta": 1.0}, 0.537176),  # exactly reverse KL
    ],
)
def test_published_discrete_values(kind, params, expected):
    v = token_divergence(torch.tensor(np.log(T)), torch.tensor(np.log(S)), kind, **params)
    assert v.item() == pytest.approx(expected, abs=5e-7)


def numpy_oracle(kind: str, lp: np.ndarray, lq: np.ndarray, **par) -> np.ndarray:
    """Direct numpy/scipy computation per position (last axis summed), written independently."""
    p, q = np.exp(lp), np.exp(lq)
    if kind == "forward_kl":
        return rel_entr(p, q).sum(-1)
    if kind == "reverse_kl":
        return rel_entr(q, p).sum(-1)
    if kind == "jsd":
        b = par["beta"]
        m = b * p + (1 - b) * q
        return b * rel_entr(p, m).sum(-1) + (1 - b) * rel_entr(q, m).sum(-1)
    if kind == "jsd_scaled":
        return numpy_oracle("jsd", lp, lq, **par) / (par["beta"] * (1 - par["beta"]))
    if kind == "alpha":
        a = par["alpha"]
        return ((a * p + (1 - a) * q - p**a * q ** (1 - a)) / (a * (1 - a))).sum(-1)
    if kind == "skew_forward_kl":
        a = par["alpha"]
        return rel_entr(p, a * p + (1 - a) * q).sum(-1)
    if kind == "skew_reverse_kl":
        a = par["alpha"]
        return rel_entr(q, a * q + (1 - a) * p).sum(-1)
    if kind == "tv":
        return 0.5 * np.abs(p - q).sum(-1)
    if kind == "akl":
        wh, wt = akl_weights(p, q, par["mu"])
        return wh * rel_entr(p, q).sum(-1) + wt * rel_entr(q, p).sum(-1)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", list(PARAMS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_kind_matches_numpy_on_random_tables(kind, seed):
    rng = np.random.default_rng(seed)
    shape = (3, 4, 11)
    t = rng.normal(scale=2.0, size=shape)
    s = rng.normal(scale=2.0, size=shape)
    temperature = [1.0, 0.7, 2.5][seed]
    got = token_divergence(
        torch.tensor(t), torch.tensor(s), kind, temperature=temperature, reduction="none", **PARAMS[kind]
    )
    expected = numpy_oracle(kind, log_softmax(t / temperature, -1), log_softmax(s / temperature, -1), **PARAMS[kind])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", list(PARAMS))
def test_agrees_with_the_exact_categorical_divergence(kind):
    rng = np.random.default_rng(3)
    p, q = rng.dirichlet(np.ones(9)), rng.dirichlet(np.ones(9))
    exact = kc.divergence(kc.Categorical(probs=p), kc.Categorical(probs=q), kind, **PARAMS[kind])
    got = token_divergence(torch.tensor(np.log(p)), torch.tensor(np.log(q)), kind, **PARAMS[kind])
    assert got.item() == pytest.approx(exact, rel=1e-10)


def naive_torch(kind: str, t: torch.Tensor, s: torch.Tensor, temperature: float, **par) -> torch.Tensor:
    """The textbook autograd implementation (what TRL-style code does), per position."""
    lp, lq = F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1)
    p, q = lp.exp(), lq.exp()
    if kind == "akl":
        with torch.no_grad():
            wh, wt = (torch.from_numpy(w) for w in akl_weights(p.numpy(), q.numpy(), par["mu"]))
        return wh * F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1) + wt * (q * (lq - lp)).sum(-1)
    if kind == "forward_kl":
        return F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)
    if kind == "reverse_kl":
        return F.kl_div(lp, lq, log_target=True, reduction="none").sum(-1)
    if kind == "jsd":
        b = par["beta"]
        lm = torch.log(b * p + (1 - b) * q)
        return b * (p * (lp - lm)).sum(-1) + (1 - b) * (q * (lq - lm)).sum(-1)
    if kind == "jsd_scaled":
        return naive_torch("jsd", t, s, temperature, **par) / (par["beta"] * (1 - par["beta"]))
    if kind == "alpha":
        a = par["alpha"]
        return ((a * p + (1 - a) * q - p**a * q ** (1 - a)) / (a * (1 - a))).sum(-1)
    if kind == "skew_forward_kl":
        a = par["alpha"]
        return (p * (lp - torch.log(a * p + (1 - a) * q))).sum(-1)
    if kind == "skew_reverse_kl":
        a = par["alpha"]
        return (q * (lq - torch.log(a * q + (1 - a) * p))).sum(-1)
    if kind == "tv":
        return 0.5 * (p - q).abs().sum(-1)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", list(PARAMS))
def test_gradients_match_autograd_through_the_textbook_formula(kind):
    gen = torch.Generator().manual_seed(0)
    t = torch.randn(2, 5, 13, generator=gen, dtype=torch.float64) * 2
    s0 = torch.randn(2, 5, 13, generator=gen, dtype=torch.float64) * 2
    weights = torch.rand(2, 5, generator=gen, dtype=torch.float64)  # a non-uniform upstream gradient
    s1, s2 = s0.clone().requires_grad_(True), s0.clone().requires_grad_(True)
    ours = token_divergence(t, s1, kind, temperature=1.3, reduction="none", chunk_size=3, **PARAMS[kind])
    ref = naive_torch(kind, t, s2, 1.3, **PARAMS[kind])
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-8, atol=1e-12)


def test_teacher_gradient_when_the_teacher_is_trained_too():
    gen = torch.Generator().manual_seed(1)
    t0 = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    s0 = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    t1, s1 = t0.clone().requires_grad_(True), s0.clone().requires_grad_(True)
    t2, s2 = t0.clone().requires_grad_(True), s0.clone().requires_grad_(True)
    token_divergence(t1, s1, "jsd", beta=0.3, reduction="sum").backward()
    naive_torch("jsd", t2, s2, 1.0, beta=0.3).sum().backward()
    torch.testing.assert_close(t1.grad, t2.grad)
    torch.testing.assert_close(s1.grad, s2.grad)


def test_reductions_and_mask():
    gen = torch.Generator().manual_seed(2)
    t = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    s = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    per = naive_torch("reverse_kl", t, s, 1.0)  # (3, 4)
    kept = per * mask
    none = token_divergence(t, s, "reverse_kl", mask=mask, reduction="none")
    torch.testing.assert_close(none, kept)
    assert token_divergence(t, s, "reverse_kl", mask=mask, reduction="sum").item() == pytest.approx(kept.sum().item())
    assert token_divergence(t, s, "reverse_kl", mask=mask, reduction="mean").item() == pytest.approx(
        kept.sum().item() / 7
    )
    assert token_divergence(t, s, "reverse_kl", mask=mask, reduction="batchmean").item() == pytest.approx(
        kept.sum().item() / 3
    )
    # torch's own batchmean convention: KLDivLoss(reduction="batchmean") on (N, V) = sum / N
    lp, lq = F.log_softmax(t[0], -1), F.log_softmax(s[0], -1)
    torch_value = F.kl_div(lq, lp, log_target=True, reduction="batchmean")
    assert token_divergence(t[0], s[0], "forward_kl").item() == pytest.approx(torch_value.item())


def test_masked_positions_may_hold_garbage():
    t = torch.zeros(2, 3)
    s = torch.zeros(2, 3)
    t[1] = float("nan")  # padding that never counts must not be read into the result
    s[1] = float("nan")
    mask = torch.tensor([True, False])
    with pytest.raises(ValueError, match="NaN"):
        token_divergence(t, s, mask=mask)  # NaN is rejected even if masked: never silently propagated


def test_all_masked_mean_is_zero_and_grad_zero():
    s = torch.randn(2, 3, requires_grad=True)
    v = token_divergence(torch.randn(2, 3), s, "reverse_kl", mask=torch.zeros(2, dtype=torch.bool), reduction="mean")
    v.backward()
    assert v.item() == 0.0 and torch.all(s.grad == 0)


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 64])
def test_chunking_does_not_change_values_or_gradients(chunk_size):
    gen = torch.Generator().manual_seed(4)
    t = torch.randn(5, 7, 17, generator=gen)
    s0 = torch.randn(5, 7, 17, generator=gen)
    s1, s2 = s0.clone().requires_grad_(True), s0.clone().requires_grad_(True)
    a = token_divergence(t, s1, "jsd", beta=0.5, chunk_size=chunk_size)
    b = token_divergence(t, s2, "jsd", beta=0.5, chunk_size=1000)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    torch.testing.assert_close(s1.grad, s2.grad)


def test_low_precision_inputs_are_computed_in_float32():
    gen = torch.Generator().manual_seed(5)
    t = torch.randn(4, 8, 100, generator=gen)
    s = torch.randn(4, 8, 100, generator=gen)
    ref = token_divergence(t.double(), s.double(), "reverse_kl").item()
    got = token_divergence(t.bfloat16(), s.bfloat16(), "reverse_kl")
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref, rel=2e-2)  # bf16 rounding of the logits, not of the maths


def test_filtered_teacher_vocabulary():
    # -inf teacher logits (a top-k teacher): forward KL ignores those tokens, as the exact value does
    t = torch.tensor([[0.0, 1.0, -math.inf, 2.0]], dtype=torch.float64)
    s = torch.tensor([[0.5, 0.1, 0.3, -0.2]], dtype=torch.float64, requires_grad=True)
    p = torch.softmax(t, -1)
    lq = torch.log_softmax(s, -1)
    expected = (p[:, [0, 1, 3]] * (p[:, [0, 1, 3]].log() - lq[:, [0, 1, 3]])).sum()
    v = token_divergence(t, s, "forward_kl")
    assert v.item() == pytest.approx(expected.item())
    v.backward()
    torch.testing.assert_close(s.grad, (torch.softmax(s, -1) - p).detach())
    # reverse KL is infinite there: a large finite penalty (log floor 1e4) that pushes the mass away
    r = token_divergence(t, s.detach().requires_grad_(True), "reverse_kl")
    assert r.item() > 1e3 and math.isfinite(r.item())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "nope"}, "unknown divergence kind"),
        ({"kind": "jsd", "beta": 1.5}, r"beta must be in \[0.0, 1.0\]"),
        ({"temperature": 0.0}, "temperature must be"),
        ({"reduction": "avg"}, "reduction must be one of"),
        ({"mask": torch.ones(3, dtype=torch.bool)}, r"mask must have shape \(2,\)"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        token_divergence(torch.zeros(2, 4), torch.zeros(2, 4), **kwargs)


def test_shape_mismatch_and_types():
    with pytest.raises(ValueError, match=r"same shape, got \(2, 4\) != \(2, 5\)"):
        token_divergence(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="floating-point"):
        token_divergence(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\+inf"):
        token_divergence(torch.tensor([0.0, math.inf]), torch.zeros(2))


def test_exported_at_top_level():
    assert kc.token_divergence is token_divergence


# ----------------------------------------------------------------------------------------------
# k1 / k2 / k3 (Schulman 2020). Student q = N(0, 1), teacher p = N(mu, 1), x ~ q:
# log r = log p(x) - log q(x) = mu x - mu^2 / 2, and KL(q || p) = mu^2 / 2.
# ----------------------------------------------------------------------------------------------

N = 400_000


def estimates(mu: float, kind: str, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(N)
    return kl_estimate(mu * x - mu**2 / 2, kind)


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_k1_is_unbiased_with_std_over_mean_2_over_mu(mu):
    k = estimates(mu, "k1")
    true = mu**2 / 2
    assert abs(k.mean() - true) < 4 * k.std() / math.sqrt(N)
    # std(k1) = mu exactly, so std/mean = 2/mu; the sample std's standard error is about std/sqrt(2N)
    assert k.std() / true == pytest.approx(2 / mu, rel=4 / math.sqrt(2 * N) + 1e-3)


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0])
def test_k2_relative_bias_is_mu_squared_over_4(mu):
    k = estimates(mu, "k2", seed=1)
    true = mu**2 / 2
    # E[k2] = (mu^2 + mu^4/4) / 2, so (E[k2] - KL) / KL = mu^2 / 4
    rel_bias = (k.mean() - true) / true
    assert abs(rel_bias - mu**2 / 4) < 4 * k.std() / math.sqrt(N) / true


@pytest.mark.parametrize("mu", [0.5, 1.0, 1.5])
def test_k3_is_unbiased_with_variance_e_mu2_minus_1_minus_mu2(mu):
    k = estimates(mu, "k3", seed=2)
    true = mu**2 / 2
    assert abs(k.mean() - true) < 4 * k.std() / math.sqrt(N)
    var = math.exp(mu**2) - 1 - mu**2
    # standard error of a sample variance: sqrt((m4 - var^2) / N), m4 estimated from the sample
    m4 = np.mean((k - k.mean()) ** 4)
    assert abs(k.var() - var) < 4 * math.sqrt((m4 - k.var() ** 2) / N)
    assert np.all(k >= -1e-12)


def test_kl_estimate_on_tensors_and_bad_kind():
    lr = torch.tensor([0.0, -1.0, 2.0])
    np.testing.assert_allclose(kl_estimate(lr, "k3").numpy(), kl_estimate(lr.numpy(), "k3"))
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_estimate(lr, "k4")


# ----------------------------------------------------------------------------------------------
# temperature, top-k, top-p
# ----------------------------------------------------------------------------------------------


def test_temperature_scales_logits():
    x = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(apply_temperature(x, 2.0), [0.5, 1.0, 2.0])
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(x, -1.0)


def test_top_k_keeps_the_k_largest():
    x = np.array([[0.1, 3.0, 2.0, -1.0, 2.5]])
    out = top_k_filter(x, 2)
    assert np.isfinite(out).tolist() == [[False, True, False, False, True]]
    assert np.array_equal(top_k_filter(x, 10), x)
    with pytest.raises(ValueError, match="k must be"):
        top_k_filter(x, 0)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.69, 0.7, 0.71, 0.9, 1.0])
def test_top_p_matches_brute_force(p):
    probs = np.array([0.1, 0.5, 0.05, 0.2, 0.15])
    out = top_p_filter(np.log(probs), p)
    # brute force: sort descending, keep tokens until the kept mass reaches p
    order = np.argsort(-probs)
    keep, mass = set(), 0.0
    for i in order:
        if mass >= p:
            break
        keep.add(int(i))
        mass += probs[i]
    assert {i for i in range(5) if np.isfinite(out[i])} == keep
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\]"):
        top_p_filter(np.log(probs), 0.0)


def test_filters_work_on_torch_tensors_per_row():
    x = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    out = top_k_filter(x, 1)
    assert torch.isfinite(out).tolist() == [[False, False, True], [True, False, False]]


@pytest.mark.parametrize("kind, params", [("forward_kl", {}), ("reverse_kl", {}), ("jsd", {"beta": 0.5})])
def test_float32_accuracy_on_a_large_vocabulary(kind, params):
    # the float64 computation is the oracle; a float32 dot product accumulated carelessly (einsum/bmm on CPU)
    # was off by 2.6e-5 here, against 1.4e-6 for an elementwise product and sum
    gen = torch.Generator().manual_seed(6)
    t = torch.randn(2, 64, 8192, generator=gen) * 3
    s = torch.randn(2, 64, 8192, generator=gen) * 3
    exact = token_divergence(t.double(), s.double(), kind, **params).item()
    assert token_divergence(t, s, kind, **params).item() == pytest.approx(exact, rel=5e-6)


# ----------------------------------------------------------------------------------------------
# Normalisation under gradient accumulation and TRL's conventions (issue 13)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["forward_kl", "jsd", "alpha", "akl"])
def test_num_items_in_batch_makes_micro_batches_add_up_to_the_full_batch(kind):
    gen = torch.Generator().manual_seed(13)
    teacher = torch.randn(8, 7, 11, generator=gen, dtype=torch.float64)
    student = torch.randn(8, 7, 11, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(8, 7, generator=gen) < 0.6
    mask[2:4] = False  # a micro-batch with no counted position at all
    mask[6:8, :6] = False  # and one with a single counted position per row
    par = PARAMS[kind]
    full = token_divergence(teacher, student, kind, mask=mask, reduction="mean", **par)
    (g_full,) = torch.autograd.grad(full, student)
    n = int(mask.sum())
    total, g_acc = 0.0, torch.zeros_like(student)
    for lo in range(0, 8, 2):  # 4 micro-batches, uneven counts: the per-micro-batch mean would be wrong
        s_mb = student[lo : lo + 2]
        part = token_divergence(
            teacher[lo : lo + 2], s_mb, kind, mask=mask[lo : lo + 2], reduction="sum", num_items_in_batch=n, **par
        )
        (g,) = torch.autograd.grad(part, student)
        total, g_acc = total + part.item(), g_acc + g
    assert total == pytest.approx(full.item(), rel=1e-6)
    assert torch.allclose(g_acc, g_full, rtol=1e-6, atol=1e-12)
    # the naive accumulation (mean per micro-batch, averaged) is not the full batch: the test can fail
    naive = sum(
        token_divergence(teacher[lo : lo + 2], student[lo : lo + 2], kind, mask=mask[lo : lo + 2], reduction="mean",
                         **par).item() for lo in range(0, 8, 2)
    ) / 4  # fmt: skip
    assert abs(naive - full.item()) > 1e-3 * abs(full.item())
    # a tensor count (as TRL passes it) gives the same
    as_tensor = token_divergence(teacher, student, kind, mask=mask, reduction="sum", num_items_in_batch=torch.tensor(n),
                                 **par)  # fmt: skip
    assert as_tensor.item() == pytest.approx(full.item(), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_items_in_batch": 4}, 'needs reduction="sum"'),
        ({"num_items_in_batch": 0, "reduction": "sum"}, "num_items_in_batch must be a finite number > 0"),
        ({"num_items_in_batch": -3.0, "reduction": "sum"}, "num_items_in_batch must be a finite number > 0"),
        ({"num_items_in_batch": float("nan"), "reduction": "sum"}, "num_items_in_batch must be a finite number > 0"),
        ({"num_items_in_batch": True, "reduction": "sum"}, "num_items_in_batch must be a number > 0"),
        ({"num_items_in_batch": "8", "reduction": "sum"}, "num_items_in_batch must be a number > 0"),
        ({"num_items_in_batch": torch.ones(2), "reduction": "sum"}, "num_items_in_batch must be a single number"),
    ],
)
def test_bad_num_items_in_batch_names_the_parameter(kwargs, match):
    t = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=match):
        token_divergence(t, t, "forward_kl", **kwargs)


README_DROP_IN = (
    'kc.token_divergence(teacher_logits, student_logits, "jsd", beta=0.5, temperature=1.0, '
    'mask=labels != -100, reduction="mean")'
)


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_readme_drop_in_snippet_reproduces_trls_masked_loss(beta):
    """The README's call (read from README.md itself) equals TRL's generalized_jsd_loss with labels."""
    import os
    import re

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.gkd import GKDTrainer

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    section = readme.split("## Token-level losses for distillation", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    call = re.search(r"loss = (kc\.token_divergence\(.*?\))\n", code, re.S).group(1)
    call = re.sub(r"#[^\n]*", "", call)
    call = re.sub(r"beta=[0-9.]+", f"beta={beta}", call)
    gen = torch.Generator().manual_seed(7)
    teacher_logits = torch.randn(3, 9, 50, generator=gen)
    student_logits = torch.randn(3, 9, 50, generator=gen, requires_grad=True)
    labels = torch.randint(0, 50, (3, 9), generator=gen)
    labels[0, :5] = -100
    labels[2, :] = -100  # an all-prompt row: TRL's sum / tokens, not sum / B
    labels[1, 3] = -100
    ours = eval(call, {"kc": kc, "teacher_logits": teacher_logits, "student_logits": student_logits, "labels": labels})
    trl = GKDTrainer.generalized_jsd_loss(student_logits, teacher_logits, labels=labels, beta=beta)
    assert ours.item() == pytest.approx(trl.item(), rel=1e-5)
    g_ours = torch.autograd.grad(ours, student_logits)[0]
    g_trl = torch.autograd.grad(trl, student_logits)[0]
    assert torch.allclose(g_ours, g_trl, rtol=1e-4, atol=1e-7)
    batchmean = kc.token_divergence(teacher_logits, student_logits, "jsd", beta=beta, mask=labels != -100)
    assert abs(batchmean.item() - trl.item()) > 1e-3 * trl.item()  # the old snippet's reduction differs


# ----------------------------------------------------------------------------------------------
# beta at the endpoints: jsd jumps, jsd_scaled is continuous (issue 13)
# ----------------------------------------------------------------------------------------------


def _value_and_grad(kind, teacher, student, **par):
    s = student.clone().requires_grad_(True)
    v = token_divergence(teacher, s, kind, reduction="sum", **par)
    (g,) = torch.autograd.grad(v, s)
    return v.item(), g


@pytest.mark.parametrize("beta, limit", [(1e-6, "forward_kl"), (1 - 1e-6, "reverse_kl")])
def test_jsd_scaled_tends_to_the_kls_and_jsd_to_zero(beta, limit):
    gen = torch.Generator().manual_seed(3)
    teacher = torch.randn(6, 40, generator=gen, dtype=torch.float64) * 2
    student = torch.randn(6, 40, generator=gen, dtype=torch.float64) * 2
    v_lim, g_lim = _value_and_grad(limit, teacher, student)
    v_sc, g_sc = _value_and_grad("jsd_scaled", teacher, student, beta=beta)
    v_j, g_j = _value_and_grad("jsd", teacher, student, beta=beta)
    # the limit is approached linearly in beta (or 1 - beta): 10x closer at a 10x smaller distance
    closer = 1 - (1 - beta) / 10 if beta > 0.5 else beta / 10
    v_10, g_10 = _value_and_grad("jsd_scaled", teacher, student, beta=closer)
    err, err_10 = abs(v_sc - v_lim) / v_lim, abs(v_10 - v_lim) / v_lim
    assert err < 1e-3 and 7 < err / err_10 < 13, (err, err_10)
    g_err, g_err_10 = float((g_sc - g_lim).norm() / g_lim.norm()), float((g_10 - g_lim).norm() / g_lim.norm())
    assert g_err < 1e-3 and 7 < g_err / g_err_10 < 13, (g_err, g_err_10)
    # the TRL-compatible jsd vanishes there: its scale is beta (1 - beta) of the limit's
    assert v_j == pytest.approx(v_sc * beta * (1 - beta), rel=1e-9)
    assert float(g_j.norm() / g_lim.norm()) < 2e-6
    # and the endpoint itself is exactly the KL for both
    endpoint = 0.0 if limit == "forward_kl" else 1.0
    assert _value_and_grad("jsd_scaled", teacher, student, beta=endpoint)[0] == pytest.approx(v_lim, rel=1e-12)
    assert _value_and_grad("jsd", teacher, student, beta=endpoint)[0] == pytest.approx(v_lim, rel=1e-12)


def test_jsd_scaled_matches_the_registry_and_the_categorical_divergence():
    gen = torch.Generator().manual_seed(4)
    teacher = torch.randn(12, generator=gen, dtype=torch.float64)
    student = torch.randn(12, generator=gen, dtype=torch.float64)
    for beta in (1e-6, 1e-3, 0.3, 0.9, 1 - 1e-6):
        cat_t = kc.Categorical(logits=teacher.numpy())
        cat_s = kc.Categorical(logits=student.numpy())
        exact = kc.divergence(cat_t, cat_s, "jsd_scaled", beta=beta)
        ours = token_divergence(teacher, student, "jsd_scaled", beta=beta).item()
        assert ours == pytest.approx(exact, rel=1e-10)
        assert ours == pytest.approx(kc.divergence(cat_t, cat_s, "jsd", beta=beta) / (beta * (1 - beta)), rel=1e-6)


def _student_grad_error(fn, teacher, student, reference):
    s = student.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(teacher, s), s)
    return float((g.double() - reference).norm() / reference.norm())


def test_float32_student_gradient_at_small_beta_is_as_accurate_as_trls():
    """beta = 1e-3, T = 2: log m - log q by log1p/expm1, so float32 is within 1x-2x of TRL's own error."""
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.gkd import GKDTrainer

    gen = torch.Generator().manual_seed(11)
    teacher = torch.randn(4, 32, 4096, generator=gen) * 3
    student = teacher + torch.randn(4, 32, 4096, generator=gen) * 0.5  # a student near its teacher
    beta, temp = 1e-3, 2.0

    def trl(t, s):
        return GKDTrainer.generalized_jsd_loss(s, t, beta=beta, temperature=temp, reduction="sum")

    def ours(t, s):
        return token_divergence(t, s, "jsd", beta=beta, temperature=temp, reduction="sum")

    s64 = student.double().requires_grad_(True)
    (reference,) = torch.autograd.grad(ours(teacher.double(), s64), s64)
    s64b = student.double().requires_grad_(True)
    (reference_trl,) = torch.autograd.grad(trl(teacher.double(), s64b), s64b)
    assert float((reference - reference_trl).norm() / reference.norm()) < 1e-9  # same function
    err_trl = _student_grad_error(trl, teacher, student, reference)
    err_ours = _student_grad_error(ours, teacher, student, reference)
    assert err_ours <= 2.0 * err_trl, (err_ours, err_trl)
    # the scaled variant is as accurate relative to its own (1 / (beta (1 - beta)) larger) gradient
    (ref_sc,) = torch.autograd.grad(
        token_divergence(teacher.double(), s64, "jsd_scaled", beta=beta, temperature=temp, reduction="sum"), s64
    )
    sc = lambda t, s: token_divergence(t, s, "jsd_scaled", beta=beta, temperature=temp, reduction="sum")  # noqa: E731
    assert _student_grad_error(sc, teacher, student, ref_sc) <= 2.0 * err_trl


@pytest.mark.parametrize("beta", [1e-3, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("case", [0, 2, 4])
def test_registry_jsd_scaled_matches_scipy_quad(beta, case):
    """The registry kind (continuous distributions): scipy quad of the JSD integrand / (beta (1 - beta))."""
    from test_divergences import CASES, quad_oracle

    teacher, student = CASES[case]
    exact = kc.divergence(teacher, student, "jsd_scaled", beta=beta)
    oracle = quad_oracle(teacher, student, "jsd", beta=beta) / (beta * (1 - beta))
    assert exact == pytest.approx(oracle, rel=1e-6, abs=1e-12)
    if case == 0:  # and fit accepts it: a few steps lower it
        traj = kc.fit(teacher, kc.Gaussian(1.0, 1.0), "jsd_scaled", steps=20, beta=beta)
        assert float(np.min(traj.loss[-1])) < float(np.min(traj.loss[0]))
