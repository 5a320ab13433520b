"""kc.identify and `kl-lab identify` on peers' real distillation losses, written from their public definitions.

Oracle: each peer loss is the published code (source named on it); what it computes is known from its
definition, and kc.identify must name it, its parameter, reduction and temperature handling.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import kl_core as kc
from kl_core.cli import main
from kl_core.identification import (
    _REDUCTION_WORDS,
    Identification,
    _temperature_words,
    describe_kind,
    identify,
    lab_link,
)

ROOT = Path(__file__).resolve().parents[1]
GREEK = {"beta": "β", "alpha": "α", "mu": "μ"}


# ----------------------------------------------------------------------------------------------
# Peer losses
# ----------------------------------------------------------------------------------------------


def trl_generalized_jsd_loss(
    student_logits, teacher_logits, labels=None, beta=0.5, temperature=1.0, reduction="batchmean"
):
    """TRL 1.16, trl/experimental/gkd/gkd_trainer.py, GKDTrainer.generalized_jsd_loss (num_items_in_batch=None)."""
    student_logits = student_logits / temperature
    teacher_logits = teacher_logits / temperature
    student_log_probs = F.log_softmax(student_logits, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits, dim=-1)
    if beta == 0:
        jsd = F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(teacher_log_probs, student_log_probs, reduction="none", log_target=True)
    else:
        beta = torch.tensor(beta, dtype=student_log_probs.dtype, device=student_log_probs.device)
        mixture_log_probs = torch.logsumexp(
            torch.stack([student_log_probs + torch.log1p(-beta), teacher_log_probs + torch.log(beta)]), dim=0
        )
        kl_teacher = F.kl_div(mixture_log_probs, teacher_log_probs, reduction="none", log_target=True)
        kl_student = F.kl_div(mixture_log_probs, student_log_probs, reduction="none", log_target=True)
        jsd = beta * kl_teacher + (1 - beta) * kl_student
    if labels is not None:
        mask = labels != -100
        jsd = jsd[mask]
    if reduction == "batchmean":
        denom = mask.sum().clamp_min(1) if labels is not None else max(jsd.size(0), 1)
        return jsd.sum() / denom
    elif reduction == "sum":
        return jsd.sum()
    elif reduction == "mean":
        return jsd.mean()
    return jsd


def gkd_without_labels(beta: float, temperature: float = 1.0):
    """TRL's GKD loss called as the trainer does on a batch without labels: (student, teacher) only."""

    def loss(student_logits, teacher_logits):
        return trl_generalized_jsd_loss(student_logits, teacher_logits, beta=beta, temperature=temperature)

    return loss


def distillm_skewed_forward_kl(logits, teacher_logits, labels, lam=0.1):
    """DistiLLM (Ko et al. 2024), github.com/jongwooko/distillm, distillm/losses.py, skewed_forward_kl
    (``no_model_batch["label"]`` passed as ``labels``; float64 instead of float32)."""
    teacher_probs = F.softmax(teacher_logits, dim=-1, dtype=torch.float64)
    student_probs = F.softmax(logits, dim=-1, dtype=torch.float64)
    mixed_probs = lam * teacher_probs + (1 - lam) * student_probs
    mixed_logprobs = torch.log(mixed_probs)
    mask = (labels != -100).int()
    inf_mask = torch.isinf(logits) | torch.isinf(teacher_logits)
    prod_probs = torch.masked_fill(teacher_probs * mixed_logprobs, inf_mask, 0)
    x = torch.sum(prod_probs, dim=-1).view(-1)
    return -torch.sum(x * mask.view(-1), dim=0) / torch.sum(mask.view(-1), dim=0)


def _akl_get_kl(teacher_logits, logits, mask, ratio):
    teacher_probs = F.softmax(teacher_logits, dim=-1, dtype=torch.float64)
    teacher_logprobs = F.log_softmax(teacher_logits, dim=-1, dtype=torch.float64)
    teacher_x = torch.sum(teacher_probs * teacher_logprobs, dim=-1).view(-1)
    logprobs = F.log_softmax(logits, dim=-1, dtype=torch.float64)
    x = torch.sum(teacher_probs * logprobs, dim=-1).view(-1)
    return torch.sum((teacher_x - x) * ratio.view(-1) * mask.view(-1), dim=0) / torch.sum(mask.view(-1), dim=0)


def wu_akl(logits, teacher_logits, mask, mu=0.5):
    """AKL (Wu et al. 2024, "Rethinking KL Divergence in KD for LLMs", arXiv 2404.02657), reference code
    get_ratio / get_kl / AKL (inf masking dropped: finite logits; float64 instead of float32)."""
    teacher_probs = F.softmax(teacher_logits, dim=-1, dtype=torch.float64)
    student_probs = F.softmax(logits, dim=-1, dtype=torch.float64).detach()
    re_teacher_probs, idx = teacher_probs.sort(dim=-1, descending=True)
    re_student_probs = student_probs.gather(dim=-1, index=idx)
    errors = torch.abs(re_teacher_probs - re_student_probs)
    cum_sum = torch.cumsum(re_teacher_probs, dim=-1)
    tail = cum_sum > mu
    tail[..., 0] = False
    s1 = torch.masked_fill(errors, tail, 0.0).sum(dim=-1)
    s2 = torch.masked_fill(errors, ~tail, 0.0).sum(dim=-1)
    h_ratio, l_ratio = s1 / (s1 + s2), s2 / (s1 + s2)
    return _akl_get_kl(teacher_logits, logits, mask, h_ratio) + _akl_get_kl(logits, teacher_logits, mask, l_ratio)


def kl_div_batchmean(student_logits, teacher_logits):
    """The PyTorch idiom: F.kl_div(input = student log-probs, target = teacher probs)."""
    return F.kl_div(student_logits.log_softmax(-1), teacher_logits.softmax(-1), reduction="batchmean")


def kl_div_swapped(student_logits, teacher_logits):
    """The same call with the arguments swapped: the common mistake."""
    return F.kl_div(teacher_logits.log_softmax(-1), student_logits.softmax(-1), reduction="batchmean")


def mse_logits(student_logits, teacher_logits):
    """Logit matching (Ba & Caruana 2014): not a divergence of the distributions."""
    return ((student_logits - teacher_logits) ** 2).mean()


def _token_log_probs(student_logits, teacher_logits, tokens):
    log_s = student_logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    log_t = teacher_logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    return log_s, log_t


def on_policy_reward_loss(student_logits, teacher_logits, tokens):
    """On-policy distillation as RL (Thinking Machines 2025; Tinker cookbook): per-token reward log T − log S
    on tokens sampled from the student, in a policy-gradient loss −A·log S(x) with A detached."""
    log_s, log_t = _token_log_probs(student_logits, teacher_logits, tokens)
    advantage = (log_t - log_s).detach()
    return -(advantage * log_s).mean()


def k1_loss(student_logits, teacher_logits, tokens):
    """Schulman 2020's k1 = log S − log T on student samples, used directly as a loss."""
    log_s, log_t = _token_log_probs(student_logits, teacher_logits, tokens)
    return (log_s - log_t).mean()


def k3_loss(student_logits, teacher_logits, tokens):
    """k3 = (r − 1) − log r, r = T/S, used as a loss (GRPO's KL penalty, DeepSeekMath)."""
    log_s, log_t = _token_log_probs(student_logits, teacher_logits, tokens)
    log_r = log_t - log_s
    return (torch.expm1(log_r) - log_r).mean()


# ----------------------------------------------------------------------------------------------
# The verdict is generated from the fields
# ----------------------------------------------------------------------------------------------


def assert_verdict_follows_fields(r: Identification) -> None:
    text = r.verdict
    order = "fn(student_logits, teacher_logits" if r.args_order == "student,teacher" else "fn(teacher_logits, "
    assert order in text
    if r.matched and not r.sampled:
        what, means = describe_kind(r.kind, r.params)
        assert text.startswith(f"This is {what}.")
        assert _REDUCTION_WORDS[r.reduction].split("{")[0] in text
        assert _temperature_words(r.temperature, r.tau) in text
        assert f"What it means: {means}." in text
        assert f"See it in the lab: {r.link}" in text
        assert (r.value_form == "plus_teacher_term") == ("cross-entropy form" in text)
        for name, value in r.params.items():
            assert f"{GREEK[name]} = {value:.3f}" in text
    elif not r.sampled:
        assert text.startswith("No kind matches.")
        for c in r.candidates[:3]:
            assert f"{c.kind}" in text and f"({c.reduction}" in text


def assert_link_is_valid_app_state(link: str) -> None:
    """The link's page exists (app/main.py) and its query parses in app/state.py without warnings."""
    from urllib.parse import parse_qsl, urlsplit

    from app.state import FIELDS, parse

    page = urlsplit(link).path.strip("/")
    assert f'url_path="{page}"' in (ROOT / "app" / "main.py").read_text()
    query = dict(parse_qsl(urlsplit(link).query))
    state, warnings = parse(query)
    assert warnings == []
    for key, raw in query.items():
        field = FIELDS[key]
        assert state[key] == ((raw,) if field.kind == "multi" else pytest.approx(float(raw)))


# ----------------------------------------------------------------------------------------------
# Deterministic losses
# ----------------------------------------------------------------------------------------------

GKD_CASES = [  # TRL's β convention (1.16): β = 0 is KL(teacher‖student), as kl_core's jsd; β = 1 the reverse
    (0.0, "forward_kl", {}),
    (0.3, "jsd", {"beta": 0.3}),
    (1.0, "reverse_kl", {}),
]


@pytest.mark.parametrize("beta, kind, params", GKD_CASES)
def test_trl_gkd_without_labels_is_batchmean(beta, kind, params):
    r = identify(gkd_without_labels(beta))
    assert r.matched and r.kind == kind
    for name, value in params.items():
        assert r.params[name] == pytest.approx(value, abs=1e-6)
    assert (r.reduction, r.temperature, r.value_form) == ("batchmean", "none", "exact")
    assert r.value_residual < 1e-10 and r.gradient_residual < 1e-10
    assert r.args_order == "student,teacher" and r.args_order_source == "parameter names"
    assert_verdict_follows_fields(r)
    assert_link_is_valid_app_state(r.link)


def test_trl_gkd_with_labels_is_a_token_mean():
    # with labels, TRL's "batchmean" divides by the number of unmasked tokens: a per-token mean
    r = identify(functools.partial(trl_generalized_jsd_loss, beta=0.3))
    assert (r.kind, r.reduction, r.mask_argument) == ("jsd", "mean", "labels")
    assert r.params["beta"] == pytest.approx(0.3, abs=1e-6)
    assert "Per token, averaged over unmasked tokens" in r.verdict
    # TRL's reduction="mean" averages over the vocabulary too
    r = identify(functools.partial(trl_generalized_jsd_loss, beta=0.0, reduction="mean"))
    assert (r.kind, r.reduction) == ("forward_kl", "elementwise_mean")


def test_real_trl_gkd_when_installed():
    gkd = pytest.importorskip("trl.experimental.gkd.gkd_trainer").GKDTrainer.generalized_jsd_loss
    gen = torch.Generator().manual_seed(1)
    s, t = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 3, 5, generator=gen)
    labels = torch.tensor([[1, 2, -100], [0, -100, 3]])
    for beta in (0.0, 0.3, 1.0):  # the copy above is the real code
        assert torch.allclose(gkd(s, t, labels, beta=beta), trl_generalized_jsd_loss(s, t, labels, beta=beta))
    r = identify(functools.partial(gkd, beta=0.3))
    assert (r.kind, r.reduction) == ("jsd", "mean") and r.params["beta"] == pytest.approx(0.3, abs=1e-6)


@pytest.mark.parametrize("beta, tau, kind", [(0.0, 2.0, "forward_kl"), (0.3, 1.5, "jsd")])
def test_gkd_temperature_is_divided_without_t2(beta, tau, kind):
    r = identify(gkd_without_labels(beta, temperature=tau))  # β and τ fitted together
    assert (r.kind, r.reduction, r.temperature) == (kind, "batchmean", "divided")
    assert r.tau == pytest.approx(tau, rel=1e-6)
    if kind == "jsd":
        assert r.params["beta"] == pytest.approx(beta, abs=1e-6)
    assert f"temperature τ = {tau:.3f} applied to both logits, no T² factor" in r.verdict
    assert_verdict_follows_fields(r)


def test_hinton_kd_has_the_t2_factor_and_the_readme_shows_real_output():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Which KL does my loss compute?")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]
    shown = section.split("```text\n")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the README's losses.py
    r = identify(namespace["kd_loss"])
    assert (r.kind, r.reduction, r.temperature) == ("forward_kl", "batchmean", "divided_t2")
    assert r.tau == pytest.approx(2.0, rel=1e-12)
    assert_verdict_follows_fields(r)
    swapped = identify(namespace["kd_loss_swapped"])
    assert swapped.kind == "reverse_kl"
    for name, res in (("kd_loss", r), ("kd_loss_swapped", swapped)):
        assert f"$ kl-lab identify losses.py:{name}\nlosses.py:{name}\n{res.verdict}\n" in shown


def test_kl_div_idiom_and_its_swap():
    r = identify(kl_div_batchmean)
    assert (r.kind, r.reduction, r.temperature, r.value_form) == ("forward_kl", "batchmean", "none", "exact")
    assert r.verdict.startswith("This is forward KL, KL(teacher‖student): mode-covering.")
    swapped = identify(kl_div_swapped)
    assert (swapped.kind, swapped.reduction) == ("reverse_kl", "batchmean")
    assert swapped.verdict.startswith("This is reverse KL, KL(student‖teacher): mode-seeking.")
    assert "the student will pick one answer and drop the others" in swapped.verdict
    assert swapped.link == "/lab?objectives=reverse_kl"
    for res in (r, swapped):
        assert_verdict_follows_fields(res)
    # the same function read with its arguments the other way round is the other KL
    stated = identify(kl_div_batchmean, args_order="teacher,student")
    assert (stated.kind, stated.args_order_source) == ("reverse_kl", "stated")
    assert "fn(teacher_logits, student_logits) (as stated)" in stated.verdict


def test_distillm_skew_forward_kl_in_cross_entropy_form():
    r = identify(distillm_skewed_forward_kl)
    assert r.matched and r.kind == "skew_forward_kl" and r.params["alpha"] == pytest.approx(0.1, abs=1e-5)
    assert (r.reduction, r.mask_argument) == ("mean", "labels")
    # −Σ T log M, not Σ T log(T/M): the value is off by the teacher's entropy, the gradient is the same
    assert r.value_form == "plus_teacher_term"
    best = r.candidates[0]
    assert best.kind == "skew_forward_kl" and best.value_residual > 0.1 and best.offset_residual < 1e-8
    assert_verdict_follows_fields(r)
    assert_link_is_valid_app_state(r.link)


def test_akl_and_its_mu_interval():
    r = identify(functools.partial(wu_akl, mu=0.5))
    assert (r.kind, r.reduction, r.mask_argument, r.value_form) == ("akl", "mean", "mask", "exact")
    lo, hi = r.params_range["mu"]
    assert lo <= 0.5 < hi and hi - lo < 0.05  # a step function of μ: identified up to an interval
    assert f"`akl` with μ in\n  [{lo:.3f}, {hi:.3f})" in (ROOT / "README.md").read_text()
    assert lo <= r.params["mu"] < hi
    assert r.link.startswith("/tokens?tok_objectives=akl&tok_mu=")
    assert_verdict_follows_fields(r)
    assert_link_is_valid_app_state(r.link)


def test_mse_on_logits_matches_no_kind():
    r = identify(mse_logits)
    assert r.candidates[0].tau == pytest.approx(10.0) and r.candidates[0].temperature == "divided_t2"
    readme = (ROOT / "README.md").read_text()  # the number the README quotes
    assert f"the nearest is off by {r.candidates[0].gradient_residual:.3g} in gradient, at the largest τ" in readme
    assert not r.matched and r.kind is None and r.link is None
    assert all(not c.matched for c in r.candidates)
    nearest = r.candidates[0]
    assert nearest.score == min(c.score for c in r.candidates) and nearest.score > 0.1
    assert f"off by {nearest.gradient_residual:.3g} in gradient" in r.verdict
    assert_verdict_follows_fields(r)


def test_a_detached_student_has_zero_gradient():
    r = identify(lambda s, t: kl_div_batchmean(s.detach(), t))  # the value is forward KL; nothing trains
    assert not r.matched and r.zero_gradient
    assert r.verdict.startswith("No kind matches. Its gradient w.r.t. the student logits is zero.")
    assert all(c.gradient_residual == pytest.approx(1.0) for c in r.candidates)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize(
    "reduction, expected",
    [("sum", "sum"), ("batchmean", "batchmean"), ("mean", "elementwise_mean"), ("none", "none")],
)
def test_reductions_of_f_kl_div(reduction, expected):
    def loss(student_logits, teacher_logits):
        out = F.kl_div(student_logits.log_softmax(-1), teacher_logits.softmax(-1), reduction=reduction)
        return out.sum(-1) if reduction == "none" else out

    r = identify(loss)
    assert (r.kind, r.reduction) == ("forward_kl", expected)


@pytest.mark.parametrize(
    "kind, params, reduction",
    [
        ("jsd", {"beta": 0.8}, "sum"),
        ("skew_forward_kl", {"alpha": 0.5}, "batchmean"),
        ("alpha", {"alpha": -1.0}, "mean"),
        ("alpha", {"alpha": 2.0}, "sum"),
        ("akl", {"mu": 0.2}, "batchmean"),
        ("tv", {}, "mean"),
    ],
)
def test_round_trip_through_token_divergence(kind, params, reduction):
    def loss(student_logits, teacher_logits):  # oracle: kl_core's own token loss
        return kc.token_divergence(teacher_logits, student_logits, kind, reduction=reduction, **params)

    r = identify(loss, seed=3)
    assert (r.kind, r.reduction, r.temperature) == (kind, reduction, "none")
    for name, value in params.items():
        lo, hi = r.params_range[name]
        assert lo <= value < hi if kind == "akl" else r.params[name] == pytest.approx(value, abs=1e-6)


def test_masked_mean_over_counted_tokens():
    def loss(student_logits, teacher_logits, mask):  # kl_core's own token loss as a user would call it
        return kc.token_divergence(teacher_logits, student_logits, "skew_reverse_kl", alpha=0.2, mask=mask,
                                   reduction="mean")  # fmt: skip

    r = identify(loss)
    assert (r.kind, r.reduction, r.mask_argument) == ("skew_reverse_kl", "mean", "mask")
    assert r.params["alpha"] == pytest.approx(0.2, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# Sampled estimates (tolerances from the Monte-Carlo standard errors, fixed seed)
# ----------------------------------------------------------------------------------------------


def k2_loss(student_logits, teacher_logits, tokens):
    """k2 = (log r)² / 2 on student samples as a loss (biased for KL, but its gradient is reverse KL's)."""
    log_s, log_t = _token_log_probs(student_logits, teacher_logits, tokens)
    return (0.5 * (log_t - log_s) ** 2).mean()


@pytest.mark.parametrize("loss", [on_policy_reward_loss, k2_loss])
def test_on_policy_reward_loss_is_reverse_kl_in_expected_gradient(loss):
    r = identify(loss, sampled=True)
    assert r.sampled and r.matched and (r.kind, r.reduction) == ("reverse_kl", "mean")
    assert r.value_kind is None  # a surrogate: its value means nothing
    g = {c.kind: c for c in r.candidates}
    assert g["reverse_kl"].gradient_matches and not g["forward_kl"].gradient_matches
    # the residual is Monte-Carlo noise: within 2 standard errors (on the same relative scale)
    assert g["reverse_kl"].gradient_residual < 2 * g["reverse_kl"].gradient_noise
    assert g["forward_kl"].gradient_residual > 4 * g["forward_kl"].gradient_noise
    assert "Its expected gradient is that of reverse KL, KL(student‖teacher): mode-seeking" in r.verdict
    assert "fn(student_logits, teacher_logits, tokens)" in r.verdict


def test_k1_as_a_loss_has_zero_expected_gradient():
    r = identify(k1_loss, sampled=True)
    assert r.zero_gradient and not r.matched and r.kind is None
    assert r.value_kind == "reverse_kl"  # unbiased for KL(S‖T)
    assert "as a loss it trains nothing" in r.verdict and "Its expected value is reverse KL" in r.verdict


def test_k3_as_a_loss_has_forward_kl_gradient_and_reverse_kl_value():
    r = identify(k3_loss, sampled=True)
    assert (r.kind, r.value_kind) == ("forward_kl", "reverse_kl")
    assert "Its expected gradient is that of forward KL" in r.verdict
    assert "Its expected value is reverse KL" in r.verdict
    assert "so it minimises forward KL while reporting reverse KL" in r.verdict
    assert f"Monte-Carlo standard error {r.gradient_noise:.3g}" in r.verdict


# ----------------------------------------------------------------------------------------------
# Input checks, argument order, the package and the command
# ----------------------------------------------------------------------------------------------


def test_identify_is_lazy_and_exported():
    code = "import sys, kl_core; assert 'torch' not in sys.modules and 'identify' in dir(kl_core)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    # the function, not its module, even after the module was imported (tests and the CLI import it)
    assert kc.identify is identify and "identify" in kc.__all__


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab": 2}, "vocab must be an integer in [3, 4096]"),
        ({"shape": (0, 3)}, "shape must be"),
        ({"args_order": "s,t"}, "args_order must be one of student,teacher, teacher,student"),
        ({"sampled": True, "draws": 3}, "draws must be an integer in [50, 100000]"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        identify(kl_div_batchmean, **kwargs)


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda s, t: float(s.sum()), "returned float, not a torch tensor"),
        (lambda s, t: s.sum(-1).sum(-1), "returned a tensor of shape"),
        (lambda s, t: F.kl_div(s, t, reduction="none", log_target=True), "one value per vocabulary entry"),
        (lambda s, t: s.sum() * math.nan, "non-finite value"),
        (lambda s, t: 1 / 0, "raised ZeroDivisionError: division by zero"),
        (lambda s, t, tokens: s.sum(), "use sampled=True"),
        (lambda s, t: s.exp().mul_(2).sum(), "the gradient of <lambda>'s result failed"),  # exp saved its output
    ],
)
def test_broken_losses_are_one_line_errors(fn, message):
    with pytest.raises(ValueError, match=message) as err:
        identify(fn)
    assert "\n" not in str(err.value)


def test_errors_name_a_partial_by_its_function():  # reduction="none" with labels: (unmasked tokens, V)
    with pytest.raises(ValueError, match="^trl_generalized_jsd_loss returned a tensor of shape \\(6, 8\\)"):
        identify(functools.partial(trl_generalized_jsd_loss, reduction=None), shape=(2, 3))


def test_argument_order_from_names():
    def teacher_first(teacher_logits, student_logits):
        return kl_div_batchmean(student_logits, teacher_logits)

    r = identify(teacher_first)
    assert (r.kind, r.args_order, r.args_order_source) == ("forward_kl", "teacher,student", "parameter names")
    r = identify(lambda y_t, y_s: kl_div_batchmean(y_s, y_t))  # RepDistiller-style names, teacher first
    assert (r.kind, r.args_order, r.args_order_source) == ("forward_kl", "teacher,student", "parameter names")
    r = identify(lambda a, b: kl_div_batchmean(a, b))
    assert (r.kind, r.args_order, r.args_order_source) == ("forward_kl", "student,teacher", "assumed")
    assert "(assumed)" in r.verdict


LOSS_FILE = textwrap.dedent(
    """
    import torch.nn.functional as F

    def swapped(student_logits, teacher_logits):
        return F.kl_div(teacher_logits.log_softmax(-1), student_logits.softmax(-1), reduction="batchmean")

    def broken(student_logits, teacher_logits):
        raise RuntimeError("shape mismatch, 3 != 4")

    NOT_CALLABLE = 3
    """
)


def test_cli_from_a_file_path_with_json(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(LOSS_FILE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "kl_core.cli", "identify", f"{path}:swapped", "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert (data["kind"], data["reduction"], data["temperature"], data["matched"]) == (
        "reverse_kl", "batchmean", "none", True,
    )  # fmt: skip
    assert data["verdict"].startswith("This is reverse KL") and data["link"] == "/lab?objectives=reverse_kl"
    assert {c["kind"] for c in data["candidates"]} == set(kc.KINDS)


def test_cli_text_and_errors_in_process(tmp_path, capsys):
    path = tmp_path / "my_losses.py"
    path.write_text(LOSS_FILE)
    assert main(["identify", f"{path}:swapped", "--args-order", "teacher,student"]) == 0
    text = capsys.readouterr().out
    assert "This is forward KL" in text and "(as stated)" in text
    (tmp_path / "uses_neighbour.py").write_text("from my_losses import swapped as loss\n")  # imports its neighbour
    assert main(["identify", f"{tmp_path / 'uses_neighbour.py'}:loss"]) == 0
    assert "This is reverse KL" in capsys.readouterr().out
    for spec, message in [
        ("no_such_module_xyz:f", "no module named 'no_such_module_xyz'"),
        (f"{tmp_path}/missing.py:f", "no such file"),
        (f"{path}:nothing", "has no attribute 'nothing'"),
        (f"{path}:NOT_CALLABLE", "is not callable"),
        ("justtext", "expected MODULE:FUNCTION"),
        (f"{path}:broken", "broken raised RuntimeError: shape mismatch, 3 != 4"),
    ]:
        assert main(["identify", spec]) == 2
        err = capsys.readouterr().err
        assert err.startswith("kl-lab: error: ") and message in err and err.count("\n") == 1, err


def test_cli_module_path():
    assert main(["identify", "tests.test_identify:kl_div_swapped", "--json"]) == 0


def test_lab_links_parse():
    for kind, params in [("jsd", {"beta": 0.3}), ("alpha", {"alpha": 5.0}), ("skew_reverse_kl", {"alpha": 0.99}),
                         ("tv", {}), ("akl", {"mu": 0.01}), ("jsd", {"beta": 1.0})]:  # fmt: skip
        assert_link_is_valid_app_state(lab_link(kind, params))
