"""kl_core.lm, the exact parts: languages, the synthetic teacher, the student, sampling, method losses, metrics.

Oracles: brute-force enumeration of every answer (itertools.product), the languages' mixture formula,
``kl_core.divergence`` on ``Categorical`` tables, hand-written loss formulas in float64.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import kl_core as kc
from kl_core import lm
from kl_core.lm.languages import Language, Mode, Prompt, fixed

pytestmark = pytest.mark.usefixtures("torch_one_thread")  # tests/conftest.py


def tiny_language() -> Language:
    """Two prompts, V = 4, L = 2: a deterministic two-mode prompt and a stochastic one."""
    return Language(
        "tiny",
        "tiny",
        ("q1", "q2", "x", "y"),
        (
            Prompt(("q1",), (fixed("xy", 0.7, "x", "y"), fixed("yx", 0.3, "y", "x"))),
            Prompt(("q2",), (Mode("any-x", 1.0, (((("x", 0.5), ("y", 0.5))), (("x", 1.0),))),), weight=3.0),
        ),
    )


def all_answers(lang: Language) -> torch.Tensor:
    return torch.tensor(list(itertools.product(range(lang.vocab_size), repeat=lang.answer_length)))


def brute_log_probs(lang: Language, prompt: int) -> torch.Tensor:
    """(V^L,) log p(y | prompt) of every answer from the mixture formula log sum_m w_m prod_t pi_m,t(y_t)."""
    answers = all_answers(lang)
    return torch.logsumexp(lang.mode_log_posterior(torch.full((len(answers),), prompt), answers), -1)


# ---------------------------------------------------------------------------------------------
# languages and the teacher
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cities", "arithmetic"])
def test_language_probabilities_sum_to_one_by_enumeration(name):
    lang = lm.get_language(name)
    answers = all_answers(lang)
    for i in range(lang.n_prompts):
        post = lang.mode_log_posterior(torch.full((len(answers),), i), answers)
        total = torch.logsumexp(post, -1).exp().sum()
        assert float(total) == pytest.approx(1.0, abs=1e-12)
        # the support is what support_sizes counts
        assert int((torch.logsumexp(post, -1) > -math.inf).sum()) == lang.support_sizes()[i]


def test_stories_probabilities_sum_to_one_over_support_and_it_is_too_big_to_enumerate():
    lang = lm.get_language("stories")
    assert lang.n_prompts * lang.vocab_size ** (lang.answer_length - 1) > lm.evaluation.MAX_ENUMERATION
    for i, pr in enumerate(lang.prompts):
        support = {tuple(a) for m in pr.modes for a in itertools.product(*[[t for t, _ in s] for s in m.slots])}
        total = sum(math.exp(lang.log_prob(i, list(a))) for a in support)
        assert total == pytest.approx(1.0, abs=1e-12)
        assert len(support) == lang.support_sizes()[i] == 9


@pytest.mark.parametrize("name", ["cities", "arithmetic"])
def test_smoothed_teacher_sequence_probabilities_sum_to_one(name):
    lang = lm.get_language(name)
    teacher = lm.SyntheticTeacher(lang)
    answers = all_answers(lang)
    for i in range(lang.n_prompts):
        seqs = torch.cat([lang.prompt_ids[i].expand(len(answers), -1), answers], 1)
        logp = lm.sequence_log_prob(teacher, seqs, lang.prompt_length).double()
        assert float(logp.exp().sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["cities", "arithmetic", "tiny"])
def test_teacher_logits_match_the_languages_exact_conditionals(name):
    # oracle: p(v | prefix) = p(prefix v) / p(prefix), both by summing the mixture formula over completions
    lang = tiny_language() if name == "tiny" else lm.get_language(name)
    eps = 0.01
    exact, smooth = lm.SyntheticTeacher(lang, epsilon=0.0), lm.SyntheticTeacher(lang, epsilon=eps)
    V, L, P = lang.vocab_size, lang.answer_length, lang.prompt_length
    answers = all_answers(lang)
    for i in (0, 2) if name == "cities" else range(lang.n_prompts):  # cities: a two- and the three-capital country
        joint = brute_log_probs(lang, i).exp().reshape([V] * L)  # p(y_1 .. y_L)
        seqs = torch.cat([lang.prompt_ids[i].expand(len(answers), -1), answers], 1)
        got_exact = exact(seqs[:, :-1])[:, P - 1 :].double().exp().reshape([V] * L + [L, V])
        got_smooth = smooth(seqs[:, :-1])[:, P - 1 :].double().exp().reshape([V] * L + [L, V])
        for t in range(L):
            upto = joint.sum(dim=tuple(range(t + 1, L))) if t + 1 < L else joint  # p(y_1 .. y_t+1), t+1 axes
            prefix = upto.sum(-1, keepdim=True)  # p(y_1 .. y_t)
            uniform = torch.full_like(upto, 1.0 / V)
            want = torch.where(prefix > 0, upto / prefix.clamp_min(1e-300), uniform)  # documented convention
            index = (slice(None),) * t + (0,) * (L - t) + (t, slice(None))  # y_t.. do not matter: take 0
            got_e, got_s = got_exact[index], got_smooth[index]
            torch.testing.assert_close(got_e, want, atol=1e-6, rtol=0)
            torch.testing.assert_close(got_s, (1 - eps) * want + eps / V, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["cities", "arithmetic", "stories"])
def test_sequence_log_prob_is_the_sum_of_token_log_probs(name):
    # oracle: the mixture formula log sum_m w_m prod_t pi_m,t(y_t), on every answer the language says
    lang = lm.get_language(name)
    teacher = lm.SyntheticTeacher(lang, epsilon=0.0)
    for i, pr in enumerate(lang.prompts):
        support = sorted({a for m in pr.modes for a in itertools.product(*[[t for t, _ in s] for s in m.slots])})
        seqs = torch.tensor([lang.encode(list(pr.tokens) + list(a)) for a in support])
        got = lm.sequence_log_prob(teacher, seqs, lang.prompt_length).double()
        want = torch.tensor([lang.log_prob(i, list(a)) for a in support], dtype=torch.float64)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_answer_modes_and_validity_threshold_on_hand_made_answers():
    lang = lm.get_language("cities")
    answers = torch.tensor(
        [lang.encode(a) for a in ("sucre bolivia? sucre", "la_paz bolivia? la_paz", "sucre bolivia? la_paz")]
    )
    modes = lang.answer_modes(torch.zeros(3, dtype=torch.long), answers)
    assert modes.tolist() == [0, 1, -1]
    teacher = lm.SyntheticTeacher(lang)
    seqs = torch.cat([lang.prompt_ids[:1].expand(3, -1), answers], 1)
    p = lm.sequence_log_prob(teacher, seqs, 1).double().exp()
    # T(city) = (1 - eps) w + eps / V, then the repeated question and city; a mixed answer's last token: eps / V
    eps, V = lm.EPSILON, lang.vocab_size
    keep = 1 - eps + eps / V  # a token the language says for sure
    want = [((1 - eps) * 0.6 + eps / V) * keep**2, ((1 - eps) * 0.4 + eps / V) * keep**2]
    want += [((1 - eps) * 0.6 + eps / V) * keep * eps / V]
    torch.testing.assert_close(p, torch.tensor(want, dtype=torch.float64), rtol=1e-5, atol=0)
    assert (p >= teacher.threshold).tolist() == [True, True, False]


@pytest.mark.parametrize("bad", [dict(epsilon=-0.1), dict(epsilon=1.0), dict(threshold=1e-6), dict(threshold=0.5)])
def test_teacher_rejects_bad_smoothing(bad):
    with pytest.raises(ValueError, match="epsilon|threshold"):
        lm.SyntheticTeacher(lm.get_language("cities"), **bad)


def test_bad_language_and_prompt_raise():
    with pytest.raises(ValueError, match="valid languages"):
        lm.get_language("klingon")
    with pytest.raises(ValueError, match="sum to 1"):
        Language("bad", "bad", ("a", "b"), (Prompt(("a",), (fixed("b", 0.5, "b"),)),))
    lang = lm.get_language("cities")
    with pytest.raises(ValueError, match="not a prompt"):
        lm.SyntheticTeacher(lang)(torch.tensor([[lang.encode("sucre")[0]]]))


# ---------------------------------------------------------------------------------------------
# the student and sampling
# ---------------------------------------------------------------------------------------------


def test_context_one_student_is_a_bigram_model_and_context_two_is_not():
    torch.manual_seed(123)  # the model must not depend on it
    a = lm.TinyLM(lm.LMConfig(vocab_size=7, context=1), seed=3)
    b = lm.TinyLM(lm.LMConfig(vocab_size=7, context=1), seed=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 4]])  # same last token, different history
    out = a(x)
    torch.testing.assert_close(out[0, -1], out[1, -1])
    torch.testing.assert_close(out[0, -1], a(torch.tensor([[4]]))[0, 0])  # no absolute position either
    c = lm.TinyLM(lm.LMConfig(vocab_size=7, context=2), seed=3)
    with torch.no_grad():
        c.blocks[0].attn.offset_bias.fill_(0.0)
        c.blocks[0].attn.qkv.bias.normal_(0, 1.0, generator=torch.Generator().manual_seed(0))
    out = c(x)
    assert not torch.allclose(out[0, -1], out[1, -1])  # sees the previous token
    x2 = torch.tensor([[0, 2, 3, 4], [5, 6, 3, 4]])  # same last two tokens
    out2 = c(x2)
    torch.testing.assert_close(out2[0, -1], out2[1, -1])


@pytest.mark.parametrize("bad", [dict(context=0), dict(n_embd=30, n_head=4), dict(vocab_size=1), dict(n_layer=1.5)])
def test_config_rejects_bad_fields(bad):
    with pytest.raises(ValueError, match="LMConfig"):
        lm.LMConfig(**{"vocab_size": 8, **bad})


def test_generate_samples_the_teacher_distribution():
    # oracle: the language's answer probabilities; 4000 samples, tolerance 4 standard errors
    lang = lm.get_language("cities")
    teacher = lm.SyntheticTeacher(lang, epsilon=0.0)
    n = 4000
    out = lm.generate(teacher, lang.prompt_ids[2:3].expand(n, -1), 3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (n, 4)
    modes = lang.answer_modes(torch.full((n,), 2), out[:, 1:])
    assert int((modes < 0).sum()) == 0
    for m, w in enumerate((0.5, 0.3, 0.2)):
        share = float((modes == m).double().mean())
        assert abs(share - w) < 4 * math.sqrt(w * (1 - w) / n)
    again = lm.generate(teacher, lang.prompt_ids[2:3].expand(n, -1), 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(teacher, lang.prompt_ids, 3, generator=torch.Generator(), temperature=0.0)
    with pytest.raises(ValueError, match="prompts"):
        lm.generate(teacher, lang.prompt_ids.float(), 3, generator=torch.Generator())


# ---------------------------------------------------------------------------------------------
# method losses against direct computations
# ---------------------------------------------------------------------------------------------


def _pair():
    lang = lm.get_language("cities")
    teacher = lm.SyntheticTeacher(lang)
    student = lm.TinyLM(lm.LMConfig(vocab_size=lang.vocab_size, context=2), seed=1)
    prompts = lang.prompt_ids[torch.tensor([0, 1, 2, 2, 5])]
    return lang, teacher, student, prompts


def _direct(kind: str, lp: torch.Tensor, lq: torch.Tensor, **par: float) -> torch.Tensor:
    """Per-position divergences (B, L) written out in float64 (DESIGN.md's table)."""
    p, q = lp.exp(), lq.exp()

    def kl(pa, la, lb):
        return (pa * (la - lb)).sum(-1)

    if kind == "forward_kl":
        return kl(p, lp, lq)
    if kind == "reverse_kl":
        return kl(q, lq, lp)
    if kind == "jsd":
        b = par["beta"]
        lm_ = torch.log(b * p + (1 - b) * q)
        return b * kl(p, lp, lm_) + (1 - b) * kl(q, lq, lm_)
    if kind == "skew_forward_kl":
        return kl(p, lp, torch.log(par["alpha"] * p + (1 - par["alpha"]) * q))
    if kind == "skew_reverse_kl":
        return kl(q, lq, torch.log(par["alpha"] * q + (1 - par["alpha"]) * p))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "method, kind, par, on_policy",
    [
        ("forward_kl", "forward_kl", {}, False),
        ("reverse_kl", "reverse_kl", {}, True),
        ("gkd", "jsd", {"beta": 0.3, "lam": 0.0}, False),
        ("gkd", "jsd", {"beta": 0.7, "lam": 1.0}, True),
        ("skew_forward_kl", "skew_forward_kl", {"alpha": 0.2}, False),
        ("skew_reverse_kl", "skew_reverse_kl", {"alpha": 0.2}, True),
    ],
)
def test_token_level_method_losses_equal_direct_computations(method, kind, par, on_policy):
    lang, teacher, student, prompts = _pair()
    loss = lm.method_loss(
        method, teacher, student, prompts, length=3, generator=torch.Generator().manual_seed(5), **par
    )
    x = lm.generate(student if on_policy else teacher, prompts, 3, generator=torch.Generator().manual_seed(5))
    lp = torch.log_softmax(lm.answer_logits(teacher, x, 1).double(), -1)
    lq = torch.log_softmax(lm.answer_logits(student, x, 1).double(), -1)
    dpar = {k: v for k, v in par.items() if k != "lam"}
    want = _direct(kind, lp, lq, **dpar).sum(1).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)


def test_gkd_coin_picks_student_data_with_probability_lam():
    lang, teacher, student, prompts = _pair()
    g = torch.Generator().manual_seed(11)
    loss = lm.method_loss("gkd", teacher, student, prompts, length=3, generator=g, beta=0.5, lam=0.5)
    g2 = torch.Generator().manual_seed(11)
    coin = bool(torch.rand((), generator=g2) < 0.5)
    x = lm.generate(student if coin else teacher, prompts, 3, generator=g2)
    lp = torch.log_softmax(lm.answer_logits(teacher, x, 1).double(), -1)
    lq = torch.log_softmax(lm.answer_logits(student, x, 1).double(), -1)
    assert loss.item() == pytest.approx(_direct("jsd", lp, lq, beta=0.5).sum(1).mean().item(), rel=1e-5)


def test_sft_loss_is_the_negative_log_likelihood_of_teacher_samples():
    lang, teacher, student, prompts = _pair()
    loss = lm.method_loss("sft", teacher, student, prompts, length=3, generator=torch.Generator().manual_seed(2))
    x = lm.generate(teacher, prompts, 3, generator=torch.Generator().manual_seed(2))
    want = -lm.sequence_log_prob(student, x, 1).double().mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)


@pytest.mark.parametrize("reward_to_go", [False, True])
def test_on_policy_sampled_value_and_gradient_equal_the_reinforce_formulas(reward_to_go):
    lang, teacher, student, prompts = _pair()
    loss = lm.method_loss(
        "on_policy_sampled", teacher, student, prompts, length=3, generator=torch.Generator().manual_seed(4),
        reward_to_go=reward_to_go,
    )  # fmt: skip
    loss.backward()
    got = [p.grad.clone() for p in student.parameters()]
    student.zero_grad()
    x = lm.generate(student, prompts, 3, generator=torch.Generator().manual_seed(4))
    y = x[:, 1:, None]
    ls = torch.log_softmax(lm.answer_logits(student, x, 1), -1).gather(-1, y).squeeze(-1)  # (B, L)
    lt = torch.log_softmax(lm.answer_logits(teacher, x, 1), -1).gather(-1, y).squeeze(-1)
    r = (lt - ls).detach().double().numpy()
    B, L = r.shape
    adv = np.zeros_like(r)
    for b in range(B):
        for t in range(L):
            g = r[b, t:].sum() if reward_to_go else r[b, t]
            others = [r[c, t:].sum() if reward_to_go else r[c, t] for c in range(B) if c != b]
            adv[b, t] = g - np.mean(others)
    assert loss.item() == pytest.approx(float(-r.sum(1).mean()), rel=1e-5)  # k1 estimate of KL(S || T)
    surrogate = -(torch.tensor(adv, dtype=torch.float32) * ls).sum(1).mean()
    surrogate.backward()
    for a, b in zip(got, student.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-4, atol=1e-6)


def test_skew_with_alpha_zero_is_its_parent_and_registry_is_complete():
    lang, teacher, student, prompts = _pair()
    for skew, parent in (("skew_forward_kl", "forward_kl"), ("skew_reverse_kl", "reverse_kl")):
        a = lm.method_loss(
            skew, teacher, student, prompts, length=3, generator=torch.Generator().manual_seed(0), alpha=0.0
        )
        b = lm.method_loss(parent, teacher, student, prompts, length=3, generator=torch.Generator().manual_seed(0))
        assert a.item() == pytest.approx(b.item(), rel=1e-5)
    assert set(lm.METHODS) == {"sft", "forward_kl", "reverse_kl", "on_policy_sampled", "gkd", "skew_forward_kl",
                               "skew_reverse_kl"}  # fmt: skip
    fn, defaults, description = lm.METHODS["gkd"]
    assert fn is lm.methods.gkd and defaults == {"beta": 0.5, "lam": 0.5} and description
    with pytest.raises(ValueError, match="valid methods"):
        lm.resolve_method("ppo")
    with pytest.raises(ValueError, match="allowed: beta, lam"):
        lm.resolve_method("gkd", {"alpha": 0.1})
    with pytest.raises(ValueError, match="beta"):
        lm.resolve_method("gkd", {"beta": 1.5})
    with pytest.raises(ValueError, match="lam"):
        lm.resolve_method("skew_forward_kl", {"lam": -0.1})


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def _brute_metrics(teacher, student, lang):
    """Sequence-level KLs, entropy per token and a GKD objective by scoring every full sequence."""
    answers = all_answers(lang)
    w = lang.prompt_weights.numpy()
    fkl = rkl = ent = obj = 0.0
    V, L = lang.vocab_size, lang.answer_length
    for i in range(lang.n_prompts):
        seqs = torch.cat([lang.prompt_ids[i].expand(len(answers), -1), answers], 1)
        lt = lm.sequence_log_prob(teacher, seqs, 1).double()
        ls = lm.sequence_log_prob(student, seqs, 1).double()
        fkl += w[i] * float((lt.exp() * (lt - ls)).sum())
        rkl += w[i] * float((ls.exp() * (ls - lt)).sum())
        ent += w[i] * float(-(ls.exp() * ls).sum()) / L
        # gkd objective (beta 0.4, lam 0.25): sum over prefixes of their probability times the token JSD
        for t in range(L):
            for prefix in itertools.product(range(V), repeat=t):
                x = torch.tensor([[int(lang.prompt_ids[i, 0]), *prefix]])
                p = torch.softmax(teacher(x)[0, -1].double(), -1).numpy()
                q = torch.softmax(student(x)[0, -1].double(), -1).numpy()
                pt = math.exp(float(lm.sequence_log_prob(teacher, x, 1))) if t else 1.0
                ps = math.exp(float(lm.sequence_log_prob(student, x, 1))) if t else 1.0
                d = kc.divergence(kc.Categorical(p), kc.Categorical(q), "jsd", beta=0.4)
                obj += w[i] * (0.25 * ps + 0.75 * pt) * d
    return fkl, rkl, ent, obj


def test_exact_metrics_equal_brute_force_and_agree_with_monte_carlo():
    lang = tiny_language()
    teacher = lm.SyntheticTeacher(lang, epsilon=0.05, threshold=0.05)
    student = lm.TinyLM(lm.LMConfig(vocab_size=4, context=2, n_embd=8), seed=7)
    with torch.no_grad():
        for p in student.parameters():
            if p.ndim == 2:
                p.mul_(40.0)  # a far-from-uniform student
    objective = lm.METHODS["gkd"].objective({"beta": 0.4, "lam": 0.25})
    ev = lm.evaluate(teacher, student, objective=objective, n_samples=16, seed=0)
    assert ev.exact
    fkl, rkl, ent, obj = _brute_metrics(teacher, student, lang)
    assert ev.forward_kl == pytest.approx(fkl, rel=1e-4)
    assert ev.reverse_kl == pytest.approx(rkl, rel=1e-4)
    assert ev.entropy == pytest.approx(ent, rel=1e-4)
    assert ev.objective == pytest.approx(obj, rel=1e-4)
    assert ev.forward_kl > 0.1 and ev.reverse_kl > 0.1
    mc = lm.evaluate(teacher, student, objective=objective, n_samples=3000, seed=1, exact=False)
    assert not mc.exact and math.isnan(mc.valid_mass)
    for name in ("forward_kl", "reverse_kl", "objective"):
        se = getattr(mc, name + "_se")
        assert 0 < se < 0.05 * getattr(ev, name) + 0.01
        assert abs(getattr(mc, name) - getattr(ev, name)) < 4 * se, name
    assert abs(mc.validity - ev.valid_mass) < 4 * math.sqrt(ev.valid_mass * (1 - ev.valid_mass) / 6000)


def test_validity_coverage_and_mode_share_on_hand_made_students():
    # a "student" that always gives one chosen answer per prompt: validity, coverage and shares are known
    lang = lm.get_language("cities")
    chosen = ["sucre bolivia? sucre", "amsterdam netherlands? the_hague", "cape_town south_africa? cape_town",
              "putrajaya malaysia? putrajaya", "colombo sri_lanka? kotte", "cotonou benin? cotonou"]  # fmt: skip
    prompts = tuple(Prompt(pr.tokens, (fixed("only", 1.0, *a.split()),)) for pr, a in zip(lang.prompts, chosen))
    student_lang = Language("hand", "hand", lang.vocab, prompts)
    student = lm.SyntheticTeacher(student_lang, epsilon=1e-9, threshold=0.5)
    ev = lm.evaluate(lm.SyntheticTeacher(lang), student, n_samples=8, seed=0)
    valid = np.array([1, 0, 1, 1, 0, 1])
    n_modes = np.array([2, 2, 3, 2, 2, 2])
    assert ev.validity == pytest.approx(valid.mean())
    assert ev.valid_mass == pytest.approx(valid.mean(), abs=1e-6)
    assert ev.mode_coverage == pytest.approx(np.mean(valid / n_modes))
    assert ev.answer_coverage == pytest.approx(np.mean(valid / n_modes))  # one answer per mode here
    want_share = np.zeros((6, 3))
    want_share[0, 0] = want_share[2, 1] = want_share[3, 1] = want_share[5, 1] = 1.0
    np.testing.assert_allclose(ev.mode_share, want_share, atol=1e-6)
    assert ev.sample_mode.reshape(6, 8)[:, 0].tolist() == [0, -1, 1, 1, -1, 1]
    # the student says one answer with certainty: its reverse KL is -log T(answer), i.e. -log w for a valid one
    eps, V = lm.EPSILON, lang.vocab_size
    assert ev.entropy == pytest.approx(0.0, abs=1e-6)
    keep = 1 - eps + eps / V  # teacher probability of a token the language says for sure
    log_t = [math.log(((1 - eps) * w + eps / V) * keep**2) for w in (0.6, 0.3, 0.35, 0.5)]  # the valid answers
    log_t += [math.log(((1 - eps) * w + eps / V) * keep * eps / V) for w in (0.7, 0.55)]  # right city, wrong repeat
    assert ev.reverse_kl == pytest.approx(-sum(log_t) / 6, abs=1e-4)
