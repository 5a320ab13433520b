"""β at the endpoints (kl_core.beta_profile, kl_core.viz.beta_scale, the family page's last section).

Oracles: ``kl_core.token_divergence`` in float64 with torch autograd (the trainer's loss, an implementation
independent of the registry's numpy derivatives the profile uses), and the limits of the generalized JSD:
JSD_β / (β(1−β)) → KL(p‖q) as β → 0 and → KL(q‖p) as β → 1 (first-order expansion of KL(p‖m) and KL(q‖m)
in β), so JSD_β itself → 0 at both ends, like β·KL(p‖q) and (1−β)·KL(q‖p).
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from spec_tools import assert_clean, decode, figures, traces
from streamlit.testing.v1 import AppTest

import kl_core as kc
from kl_core.beta_profile import (
    CAPTION_BETAS,
    EXAMPLE,
    beta_caption,
    beta_profile,
    default_betas,
    example_logits,
    example_note,
)
from kl_core.viz import beta_scale_figure

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the page imports `app.*`, as app/main.py arranges in a real run


def torch_loss_and_grad(kind: str, **par: float) -> tuple[float, torch.Tensor]:
    """The oracle: token_divergence (mean over positions) and its gradient w.r.t. the student's logits."""
    teacher, student = (torch.from_numpy(x) for x in example_logits())
    s = student.clone().requires_grad_(True)
    loss = kc.token_divergence(teacher, s, kind, reduction="mean", **par)
    (grad,) = torch.autograd.grad(loss, s)
    return float(loss.detach()), grad


@pytest.fixture(scope="module")
def profile():
    return beta_profile()


@pytest.mark.parametrize(("beta", "end"), [(1e-6, "forward_kl"), (1 - 1e-6, "reverse_kl")])
def test_jsd_scaled_tends_to_the_kl_of_its_end_and_jsd_to_zero(beta, end):
    kl, kl_grad = torch_loss_and_grad(end)
    scaled, scaled_grad = torch_loss_and_grad("jsd_scaled", beta=beta)
    assert scaled == pytest.approx(kl, rel=1e-4)
    assert float((scaled_grad - kl_grad).norm() / kl_grad.norm()) < 1e-4
    # TRL's jsd = β(1−β) jsd_scaled: it vanishes like the distance to the end times that end's KL
    jsd, jsd_grad = torch_loss_and_grad("jsd", beta=beta)
    weight = beta * (1 - beta)
    assert jsd == pytest.approx(weight * kl, rel=1e-4) and jsd < 1e-5
    assert float((jsd_grad / weight - kl_grad).norm() / kl_grad.norm()) < 1e-4
    # the profile (numpy registry derivatives) says the same at that β
    near = beta_profile(betas=np.array([beta]))
    target = near.forward_kl if end == "forward_kl" else near.reverse_kl
    target_grad = near.forward_grad if end == "forward_kl" else near.reverse_grad
    assert near.values["jsd_scaled"][0] == pytest.approx(target, rel=1e-4)
    assert near.grad_norms["jsd_scaled"][0] == pytest.approx(target_grad, rel=1e-4)
    assert near.values["jsd"][0] == pytest.approx(weight * target, rel=1e-4)


def test_profile_matches_token_divergence(profile):
    for beta in (*CAPTION_BETAS, profile.betas[0], 0.5, profile.betas[-1]):
        got = profile.at(float(beta))
        for kind in ("jsd", "jsd_scaled"):
            value, grad = torch_loss_and_grad(kind, beta=float(beta))
            assert got[kind] == pytest.approx(value, rel=1e-10)
            assert got[kind + "_grad"] == pytest.approx(float(grad.norm()), rel=1e-10)
    for end, value, grad_norm in (
        ("forward_kl", profile.forward_kl, profile.forward_grad),
        ("reverse_kl", profile.reverse_kl, profile.reverse_grad),
    ):
        oracle, grad = torch_loss_and_grad(end)
        assert value == pytest.approx(oracle, rel=1e-12) and grad_norm == pytest.approx(float(grad.norm()), rel=1e-12)


def test_caption_states_the_profiles_numbers(profile):
    text = beta_caption(profile)
    lo, hi = (profile.at(b) for b in CAPTION_BETAS)
    m = re.fullmatch(
        r"At β = 0\.9 the gradient of TRL's jsd is 1/(\d+) of reverse KL's \(its β = 1 end\), jsd_scaled's within "
        r"([\d.]+)% of it; at β = 0\.1 jsd's is 1/(\d+) of forward KL's, jsd_scaled's within ([\d.]+)%\. At exactly "
        r"β = 0 and 1 jsd is forward KL \(([\d.]+) nats per token\) and reverse KL \(([\d.]+)\); just inside, at "
        r"β = 0\.001 and 0\.999, it is ([\d.e-]+) and ([\d.e-]+): the jump\.",
        text,
    )
    assert m, text
    rev_frac, rev_gap, fwd_frac, fwd_gap, fwd_kl, rev_kl, first, last = m.groups()
    # the torch oracle's numbers, rounded as the sentence rounds them
    _, rev_grad = torch_loss_and_grad("reverse_kl")
    _, fwd_grad = torch_loss_and_grad("forward_kl")
    _, jsd_hi = torch_loss_and_grad("jsd", beta=0.9)
    _, jsd_lo = torch_loss_and_grad("jsd", beta=0.1)
    assert int(rev_frac) == round(float(rev_grad.norm() / jsd_hi.norm()))
    assert int(fwd_frac) == round(float(fwd_grad.norm() / jsd_lo.norm()))
    assert float(rev_gap) == pytest.approx(abs(hi["jsd_scaled_grad"] / profile.reverse_grad - 1) * 100, abs=0.51)
    assert float(fwd_gap) == pytest.approx(abs(lo["jsd_scaled_grad"] / profile.forward_grad - 1) * 100, abs=0.51)
    # what the sentence implies: jsd_scaled is far closer to the end's KL than jsd is
    assert float(rev_gap) < 100 * (1 - 1 / int(rev_frac)) and float(fwd_gap) < 100 * (1 - 1 / int(fwd_frac))
    assert float(fwd_kl) == pytest.approx(torch_loss_and_grad("forward_kl")[0], abs=5e-4)
    assert float(rev_kl) == pytest.approx(torch_loss_and_grad("reverse_kl")[0], abs=5e-4)
    assert float(first) == pytest.approx(torch_loss_and_grad("jsd", beta=1e-3)[0], rel=0.05)
    assert float(last) == pytest.approx(torch_loss_and_grad("jsd", beta=1 - 1e-3)[0], rel=0.05)
    teacher, _ = example_logits()
    assert teacher.shape == (EXAMPLE["positions"], EXAMPLE["vocab"]) and f"{teacher.shape[1]}-token" in example_note()


def test_figure_marks_the_kls_at_the_ends(profile):
    fig = json.loads(beta_scale_figure(profile).to_json())
    for row, (fwd, rev) in enumerate(
        [(profile.forward_kl, profile.reverse_kl), (profile.forward_grad, profile.reverse_grad)]
    ):
        (f,) = [t for t in fig["data"] if t["meta"] == {"role": "forward_kl", "row": row}]
        (r,) = [t for t in fig["data"] if t["meta"] == {"role": "reverse_kl", "row": row}]
        assert (list(f["x"]), list(f["y"])) == ([0.0], [fwd]) and (list(r["x"]), list(r["y"])) == ([1.0], [rev])
        (jsd,) = [t for t in fig["data"] if t["meta"] == {"role": "jsd", "row": row}]
        y = decode(jsd["y"])
        assert y[0] < 0.01 * fwd and y[-1] < 0.01 * rev  # the curve falls to ~0 where the marker sits at the KL
        (limit,) = [t for t in fig["data"] if t["meta"] == {"role": "jsd_limit", "row": row}]
        assert (list(limit["x"]), list(limit["y"])) == ([0.0, 1.0], [0.0, 0.0])  # the open circles: its limit
    assert default_betas()[0] == pytest.approx(1e-3) and set(CAPTION_BETAS) <= set(default_betas())


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"betas": np.array([0.0, 0.5])}, "strictly inside"),
        ({"betas": np.array([0.5, 1.0])}, "strictly inside"),
        ({"betas": np.array([np.nan])}, "finite"),
        ({"betas": np.array([])}, "non-empty"),
        ({"teacher_logits": np.zeros((2, 4)), "student_logits": np.zeros((2, 5))}, "same shape"),
        ({"teacher_logits": np.full((2, 4), np.nan), "student_logits": np.zeros((2, 4))}, "finite"),
        ({"teacher_logits": np.zeros((2, 4))}, "both"),
    ],
)
def test_hostile_input_names_the_problem(kwargs, words):
    with pytest.raises(ValueError, match=words):
        beta_profile(**kwargs)
    with pytest.raises(ValueError, match="one of the profile's betas"):
        beta_profile(betas=np.array([0.5])).at(0.3)
    with pytest.raises(ValueError, match="vocab"):
        example_logits(vocab=1)


def test_family_page_draws_the_section():
    at = AppTest.from_file(str(ROOT / "app" / "views" / "family.py"), default_timeout=180)
    for k, v in {"points": "3", "steps": "100", "inits": "2", "kmax": "1"}.items():
        at.query_params[k] = v
    at.run()
    assert_clean(at)
    assert "β at the endpoints" in [h.value for h in at.header]
    captions = [c.value for c in at.caption]
    assert beta_caption(beta_profile()) in captions
    assert any(example_note() in c for c in captions)
    (fig,) = [f for f in figures(at) if traces(f, "jsd_scaled")]
    (marker,) = traces(fig, "reverse_kl", row=0)
    assert decode(marker["y"])[0] == pytest.approx(beta_profile().reverse_kl, rel=1e-6)
