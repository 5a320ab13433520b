"""The guided lesson (kl_core.lesson) and its static site (kl_core.site): live numbers, figures, pages.

Every quoted number is checked against an independent computation: a closed form (moment
matching, product of marginals, the KL-regularised RL optimum), a fresh ``kc.fit`` with the same
settings, or the loss landscape's minima.
"""

import math
import re

import numpy as np
import pytest
from spec_tools import decode

import kl_core as kc
from kl_core.cli import main
from kl_core.lesson import BETAS, N_STEPS, ONE_LINE, REMARK, STEPS, Step, get_step, opening, recap
from kl_core.metrics import summarize
from kl_core.site import PLOTLY_JS, build_site, markdown_to_html, page_name
from kl_core.viz import Run, animation_1d
from kl_core.viz.colors import ROLE_COLORS, color_for
from kl_core.viz.lesson import CANDIDATE_COLOR, first_frame

BY_KEY = {s.key: s for s in STEPS}


def test_six_to_eight_steps_with_unique_keys_and_valid_answers():
    assert 6 <= N_STEPS == len(STEPS) <= 8
    assert len(BY_KEY) == N_STEPS
    for step in STEPS:
        assert 0 <= step.answer < len(step.choices) and len(set(step.choices)) == len(step.choices)
        assert step.is_correct(step.answer) and not step.is_correct((step.answer + 1) % len(step.choices))
    # the right answer is not always in the same place
    assert len({s.answer for s in STEPS}) >= 2


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.key)
def test_every_step_renders_text_and_a_figure_with_data(step):
    text, why = step.text(), step.explanation()
    for t in (text, why):
        assert "{" not in t and "}" not in t and "nan" not in t.lower().split()
    fig, preview = step.figure(), step.preview()
    assert fig.data and all(len(t.y) > 0 for t in fig.data if t.y is not None)
    assert preview.data and not preview.frames
    if step.draw_preview is None:  # an animation: the preview is its first frame
        assert len(fig.frames) >= 5


def test_distillation_numbers_are_the_two_kls_of_both_candidates():
    step = BY_KEY["distillation"]
    teacher = kc.get_preset("bimodal").teacher
    wide, narrow = kc.Gaussian(0.0, math.sqrt(10.0)), kc.Gaussian(3.0, 1.0)  # moment match; the right bump
    expected = [
        kc.divergence(teacher, wide, "forward_kl"),
        kc.divergence(teacher, narrow, "forward_kl"),
        kc.divergence(teacher, wide, "reverse_kl"),
        kc.divergence(teacher, narrow, "reverse_kl"),
    ]
    why = step.explanation()
    assert [f"{v:.2f}" in why for v in expected] == [True] * 4
    # the "depends" answer holds: each direction prefers a different candidate
    assert expected[0] < expected[1] and expected[3] < expected[2]
    # KL(bump || two equal, well-separated bumps) ~ log 2 (the other bump's density there is ~e^-18)
    assert step.facts()["b_rev"] == pytest.approx(math.log(2), abs=0.01)


def test_forward_step_quotes_the_moment_matched_student():
    f = BY_KEY["forward"].facts()
    # oracle: forward KL with a Gaussian student = moment matching, N(0, sqrt(1 + 3^2))
    assert f["fwd_mean"] == pytest.approx(0.0, abs=0.01) and f["fwd_std"] == pytest.approx(math.sqrt(10), abs=0.01)
    assert f["fwd_cover"] == 8
    assert "mean +0.00, std 3.16" in BY_KEY["forward"].explanation()


def test_reverse_step_mean_equals_a_fresh_fit_and_the_landscape_minimum():
    p = kc.get_preset("bimodal")
    traj = kc.fit(p.teacher, p.student, "reverse_kl", steps=400, lr=0.05, inits=1, seed=0)
    s = traj.final[0]
    why = BY_KEY["reverse"].explanation()
    assert f"mean {s.mean:+.2f}, std {s.std:.2f}" in why
    assert "mean +2.98, std 1.02" in why  # the 1-D lab's default reverse-KL student
    right = max(kc.landscape(p.teacher, "reverse_kl", n=60).minima, key=lambda m: m.mean)
    assert s.mean == pytest.approx(right.mean, abs=0.01) and s.std == pytest.approx(right.std, abs=0.01)
    assert f"{kc.divergence(p.teacher, s, 'reverse_kl'):.3f}" in why


def test_both_step_counts_where_each_start_lands():
    p = kc.get_preset("bimodal")
    rev = kc.fit(p.teacher, p.student, "reverse_kl", steps=400, lr=0.05, inits=8, seed=0)
    left = sum(1 for s in rev.final if s.mean < -2 and s.std < 1.5)
    right = sum(1 for s in rev.final if s.mean > 2 and s.std < 1.5)
    wide = sum(1 for s in rev.final if s.std > 2)
    assert left + right + wide == 8 and left > 0 and right > 0
    f = BY_KEY["both"].facts()
    assert (f["rev_left"], f["rev_right"], f["rev_middle"]) == (left, right, wide)
    why = BY_KEY["both"].explanation()
    assert f"{left} on the left bump" in why and f"{right} on the right bump" in why
    assert "has 1 minimum" in why and f"has {len(kc.landscape(p.teacher, 'reverse_kl', n=60).minima)}:" in why


def test_family_ends_are_exactly_forward_and_reverse_and_the_switch_is_quoted():
    f = BY_KEY["family"].facts()
    fits = dict(f["fits"])
    fwd = BY_KEY["forward"].facts()["traj"]
    rev = BY_KEY["reverse"].facts()["traj"]
    # jsd at beta = 0 / 1 is special-cased to forward / reverse KL: the same students as those fits
    assert fits[0.0].final[0].std == pytest.approx(fwd.final[0].std, abs=1e-6)
    assert fits[1.0].final[0].mean == pytest.approx(rev.final[0].mean, abs=1e-6)
    stds = np.array(f["stds"])
    assert f["switches"] == 1 and stds[0] > 3.0 and stds[-1] < 1.1
    k = BETAS.index(f["first_narrow"])
    assert stds[k - 1] > 2.5 and stds[k] < 1.5
    assert f"β = {f['last_wide']:g}" in BY_KEY["family"].explanation()


def test_token_step_forward_student_is_the_product_of_the_teacher_marginals():
    f = BY_KEY["tokens"].facts()
    table = kc.get_preset("city_tokens").teacher.probs
    m1, m2 = table.sum(1), table.sum(0)
    product = np.outer(m1, m2)  # oracle: forward KL over factorised students = product of marginals
    assert f["fwd_new_angeles"] == pytest.approx(product[0, 1], abs=2e-3)
    assert f["fwd_invalid"] == pytest.approx(1 - np.trace(product), abs=5e-3)
    assert f["rev_invalid"] < 0.02 and f["rev_city_p"] > 0.98
    why = BY_KEY["tokens"].explanation()
    assert f"{f['fwd_new_angeles']:.1%}" in why and f"{f['fwd_invalid']:.0%}" in why and "New York" in why


def test_on_policy_step_checks_the_rlhf_identity():
    f = BY_KEY["on_policy"].facts()
    k1, k3 = f["k1"], f["k3"]
    bandit = k1.bandit
    ref, opt, r, beta = np.exp(bandit.log_reference), np.exp(bandit.log_optimum), bandit.reward, bandit.beta
    # oracle: pi* ∝ pi_ref exp(r / beta) in closed form (Rafailov et al. 2023, eq. 4), and the identity
    # E_pi[r] - beta KL(pi || pi_ref) = beta log Z - beta KL(pi || pi*) for every policy, computed here by hand
    z = np.sum(ref * np.exp(r / beta))
    np.testing.assert_allclose(opt, ref * np.exp(r / beta) / z, rtol=1e-10)
    assert f["bound"] == pytest.approx(beta * math.log(z), rel=1e-12)
    for run in (k1, k3):
        pi = run.probs  # (updates + 1, K)
        objective = pi @ r - beta * np.sum(pi * np.log(pi / ref), axis=1)
        np.testing.assert_allclose(run.objective, objective, atol=1e-9)
        np.testing.assert_allclose(objective + beta * np.sum(pi * np.log(pi / opt), axis=1), f["bound"], atol=1e-9)
        assert np.all(objective <= f["bound"] + 1e-12)
    # k1 in the reward reaches pi* (the reverse-KL answer); k3 as a loss settles elsewhere
    assert f["k1_kl"] < 0.02 < 0.5 < f["k3_kl"] and f["k3_target_kl"] < 0.02
    assert f["start_kl"] == pytest.approx(float(np.sum(ref * np.log(ref / opt))), rel=1e-9)
    # the on-policy (REINFORCE) student lands on a bump; the Monte-Carlo loss agrees with the exact KL(q || p)
    assert f["on_mean"] > 2.5 and f["on_std"] < 1.3 and abs(f["off_mean"]) < 0.3 and f["off_std"] > 2.9
    assert abs(f["mc_value"] - f["exact"]) < 4 * f["mc_se"]
    why = BY_KEY["on_policy"].explanation()
    for key, digits in (("k1_kl", 4), ("k3_kl", 3), ("bound", 4), ("k1_objective", 4), ("k3_objective", 4)):
        assert f"{f[key]:.{digits}f}" in why, key
    assert f"{f['on_mean']:+.2f}" in why and f"{len(bandit.x)}-response bandit" in why


def test_rlhf_figure_draws_the_runs_policies_and_the_bound():
    step = BY_KEY["on_policy"]
    f, fig = step.facts(), step.extra_figure()
    by_role = {}
    for trace in fig.data:
        by_role.setdefault(trace.meta["role"], []).append(trace)
    np.testing.assert_allclose(decode(by_role["optimum"][0].y), np.exp(f["k1"].bandit.log_optimum), rtol=1e-6)
    np.testing.assert_allclose(decode(by_role["reference"][0].y), np.exp(f["k1"].bandit.log_reference), rtol=1e-6)
    (k1_policy, k3_policy) = by_role["policy"]
    np.testing.assert_allclose(decode(k1_policy.y), f["k1"].probs[-1], rtol=1e-6)
    np.testing.assert_allclose(decode(k3_policy.y), f["k3"].probs[-1], rtol=1e-6)
    # k1 in the reward acts on the reverse KL, k3 as a loss on the forward KL's gradient: their role colours
    assert (k1_policy.line.color, k3_policy.line.color) == (color_for("reverse_kl"), color_for("forward_kl"))
    assert list(by_role["bound"][0].y) == [pytest.approx(f["bound"])] * 2
    assert BY_KEY["distillation"].extra_figure() is None and BY_KEY["distillation"].extra_result() == ""
    line = step.extra_result()
    assert f"KL(π‖π*) = {f['k1_kl']:.4f}, on π*" in line and f"at {f['k3_kl']:.3f}" in line
    assert f"{f['updates']} updates" in line and f["updates"] == len(f["k1"].objective) - 1 == 100
    assert f["k3_objective"] < f["k1_objective"] <= f["bound"]  # "falls below the maximum"


def test_language_step_trades_diversity_for_validity():
    f = BY_KEY["language_models"].facts()
    table = kc.get_preset("city_tokens").teacher.probs
    m1, m2 = table.sum(1), table.sum(0)
    assert f["valid0"] == pytest.approx(float(m1 @ m2), abs=5e-3)  # beta = 0 is forward KL: product of marginals
    assert f["valid1"] > 0.98 and f["eff1"] < 1.1 and f["eff0"] > 2.0
    why = BY_KEY["language_models"].explanation()
    assert f"valid {f['valid0']:.0%}" in why and f"{f['eff1']:.2f} effective" in why


def test_get_step_and_step_validation():
    assert get_step(1) is STEPS[0] and get_step(N_STEPS) is STEPS[-1]
    for bad in (0, N_STEPS + 1, "2", True):
        with pytest.raises(ValueError, match="lesson step"):
            get_step(bad)
    s = STEPS[0]
    with pytest.raises(ValueError, match="answer must be in"):
        Step(s.key, s.title, s.body, s.question, s.choices, len(s.choices), s.why, s.compute, s.draw)


def test_first_frame_shows_the_start():
    fig = BY_KEY["reverse"].figure()
    start = first_frame(fig)
    frame = fig.frames[0]
    for index, trace in zip(frame.traces, frame.data):
        np.testing.assert_array_equal(decode(start.data[index].y), decode(trace.y))
    assert not np.array_equal(decode(start.data[1].y), decode(fig.data[1].y))  # the start is not the end
    assert start.layout.sliders[0].active == 0 and len(start.frames) == len(fig.frames)
    still = first_frame(fig, keep_controls=False)
    assert not still.frames and not still.layout.sliders and not still.layout.updatemenus


def test_markdown_subset():
    assert markdown_to_html("a **b**\n\n*c* <d> `e`") == (
        "<p>a <strong>b</strong></p>\n<p><em>c</em> &lt;d&gt; <code>e</code></p>"
    )
    assert "<em>" not in markdown_to_html("π* ∝ π_ref, KL(q‖π*)")


def test_site_writes_index_pages_and_one_shared_plotly_js(tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["site", str(out)]) == 0
    assert "8 step pages" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    expected = sorted(["index.html", PLOTLY_JS] + [page_name(i, s.key) for i, s in enumerate(STEPS, start=1)])
    assert names == expected
    assert (out / PLOTLY_JS).stat().st_size > 1_000_000
    for path in out.glob("*.html"):
        page = path.read_text(encoding="utf-8")
        srcs = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", page)
        assert srcs == [PLOTLY_JS], (path.name, srcs)  # the shared file, relative; nothing external
        assert "<link" not in page and not re.search(r"""(src|href)=["']https?:""", page)
        assert page.count("Plotly.newPlot") >= 1
        for href in re.findall(r"href='([^']+)'", page):
            assert (out / href).is_file(), (path.name, href)
    reverse = (out / page_name(3, "reverse")).read_text(encoding="utf-8")
    assert "mean +2.98, std 1.02" in reverse and "data-answer='1'" in reverse and "<details>" in reverse


def test_site_rejects_a_file_as_out_dir(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["site", str(target)]) == 2
    assert "out_dir" in capsys.readouterr().err
    with pytest.raises(ValueError, match="hero"):
        build_site(tmp_path / "x", steps=STEPS[:1], hero="both")


def _texts(fig) -> list[str]:
    """Every title and legend name of a figure (what a reader sees as words)."""
    layout = fig.layout
    out = [a.text for a in layout.annotations or ()] + [t.name for t in fig.data if t.name]
    out += [layout.title.text] if layout.title and layout.title.text else []
    return [t for t in out if t]


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.key)
def test_figures_speak_the_lessons_notation(step):
    # the lesson writes p (teacher) and q (student); its figures must not switch to T and S
    figs = [step.figure(), step.preview()] + ([step.extra_figure()] if step.draw_extra else [])
    texts = [t for fig in figs for t in _texts(fig)]
    for text in texts:
        assert not re.search(r"\bT·log|\bS·log|\(T/S\)|\(S/T\)|T‖S|S‖T", text), (step.key, text)
    if step.key in ("forward", "both"):
        assert any("p·log(p/q)" in t for t in texts)
    if step.key in ("reverse", "both"):
        assert any("q·log(q/p)" in t for t in texts)


# the family step's sweep shades its student from the forward colour (β = 0) to the reverse one (β = 1): a ramp
# between the two roles by design (kl_core.viz.sweeps), so its colours are not one-role-per-trace
@pytest.mark.parametrize("step", [s for s in STEPS if s.key != "family"], ids=lambda s: s.key)
def test_a_colour_keeps_its_role_in_every_lesson_figure(step):
    role_of = {c.upper(): role for role, c in ROLE_COLORS.items()}
    figs = [step.figure(), step.preview()] + ([step.extra_figure()] if step.draw_extra else [])
    for fig in figs:
        for trace in fig.data:
            color = (trace.line.color if "line" in trace and trace.line.color else None) or (
                trace.marker.color if "marker" in trace and isinstance(trace.marker.color, str) else None
            )
            if not color or not color.startswith("#"):
                continue
            role = role_of.get(color.upper())
            name = (trace.meta or {}).get("role")
            if name == "candidate":  # fixed students of step 1: not a divergence, so no divergence's colour
                assert color == CANDIDATE_COLOR, trace.name
            elif role in ("forward_kl", "reverse_kl"):
                # a forward/reverse colour only on a trace that is that direction's student, bar or run
                label = f"{trace.name} {trace.meta}".lower()
                wanted = ("forward", "off-policy", "k3") if role == "forward_kl" else ("reverse", "on-policy", "k1")
                assert any(w in label for w in wanted), (step.key, trace.name, role)


def test_animation_notation_is_validated():
    traj = BY_KEY["reverse"].facts()["traj"]
    teacher = kc.get_preset("bimodal").teacher
    for bad in (("p",), ("pp", "q"), (1, 2)):
        with pytest.raises(ValueError, match="notation must be two one-letter strings"):
            animation_1d(teacher, [Run("reverse_kl", {}, traj)], n_frames=3, notation=bad)


def test_step_1_candidates_are_neutral_and_the_bars_carry_the_directions():
    fig = BY_KEY["distillation"].figure()
    candidates = [t for t in fig.data if t.meta["role"] == "candidate"]
    bars = {t.meta["role"]: t for t in fig.data if t.type == "bar"}
    assert [t.line.color for t in candidates] == [CANDIDATE_COLOR] * 2
    assert len({t.line.dash for t in candidates}) == 2  # told apart by dash (and their labels), not by hue
    assert CANDIDATE_COLOR not in ROLE_COLORS.values()
    assert bars["forward_kl"].marker.color == color_for("forward_kl")
    assert bars["reverse_kl"].marker.color == color_for("reverse_kl")
    assert [a.text for a in fig.layout.annotations if a.text in ("A", "B")] == ["A", "B"]


def test_every_step_states_its_outcome_from_its_numbers():
    d = BY_KEY["distillation"].facts()
    assert d["fwd_pick"] == ("A" if d["a_fwd"] < d["b_fwd"] else "B") == "A"
    assert d["rev_pick"] == ("A" if d["a_rev"] < d["b_rev"] else "B") == "B"
    assert BY_KEY["distillation"].result().startswith("forward KL prefers A (0.46 vs 8.31")
    p = kc.get_preset("bimodal")
    s = summarize(p.teacher, BY_KEY["reverse"].facts()["traj"].final[0])
    assert s.n_modes_covered == 1 and s.dominant_mode == 1  # oracle: the metrics module, on the fitted student
    assert (
        BY_KEY["reverse"].result()
        == f"the reverse-KL student ended on the right bump: mean {s.mean:+.2f}, std {s.std:.2f}"
    )
    f = BY_KEY["on_policy"].facts()
    assert "on the right bump" in BY_KEY["on_policy"].result() and f["on_mean"] > 2.5
    for step in STEPS:
        line = step.result()
        assert line and "{" not in line and "\n" not in line and len(line) < 200, step.key


def test_opening_quotes_the_remark_and_answers_it_with_the_lessons_numbers():
    start = opening()
    assert REMARK == "this is different from previous distillation: reverse KL"
    assert REMARK in start.question and REMARK in start.answer
    fwd, rev, tok = BY_KEY["forward"].facts(), BY_KEY["reverse"].facts(), BY_KEY["tokens"].facts()
    p = kc.get_preset("bimodal")
    wide = summarize(p.teacher, fwd["traj"].final[0])  # oracle: the metrics of the fitted student
    assert f"std {math.sqrt(10):.2f}) with {wide.low_density_mass:.0%} of its mass" in start.answer
    assert f"mean {rev['rev_mean']:+.2f}, std {rev['rev_std']:.2f}" in start.answer
    assert f"{tok['fwd_invalid']:.0%} of the time" in start.answer and f"{tok['rev_invalid']:.1%}" in start.answer
    assert "KL(p‖q)" in start.answer and "KL(q‖p)" in start.answer and f"{N_STEPS} steps" in start.answer


def test_recap_counts_predictions_and_points_to_what_was_missed():
    answers = {"distillation": 2, "forward": 0, "reverse": 1}  # right, wrong, right
    card = recap(answers)
    assert (card.answered, card.correct) == (3, 2) and card.score == "2 of 8 predictions right (3 answered)"
    rows = {r.key: r for r in card.rows}
    assert rows["forward"].predicted == BY_KEY["forward"].choices[0] and rows["forward"].correct is False
    assert rows["tokens"].predicted is None and rows["tokens"].correct is None
    assert all(r.happened == BY_KEY[r.key].result() for r in card.rows)
    assert card.one_line == ONE_LINE and "forward KL(p‖q)" in ONE_LINE and "reverse KL(q‖p)" in ONE_LINE
    # next: the pages of the steps not predicted right, first one per page, in lesson order
    assert card.next_steps[0] == BY_KEY["forward"].links[0]
    assert len({page for page, _ in card.next_steps}) == len(card.next_steps) <= 4
    perfect = recap({s.key: s.answer for s in STEPS})
    assert perfect.correct == N_STEPS and [p for p, _ in perfect.next_steps] == ["lab_1d", "rl", "lm"]


@pytest.mark.parametrize(
    "answers, match",
    [({"nope": 0}, "unknown step 'nope'"), ({"forward": 7}, r"answers\['forward'\] must be an integer in \[0, 2\]"),
     ({"forward": True}, "must be an integer"), ({"forward": "1"}, "must be an integer")],
)  # fmt: skip
def test_recap_rejects_bad_answers(answers, match):
    with pytest.raises(ValueError, match=match):
        recap(answers)


def _scene_in(page: str, key: str) -> dict:
    import json

    raw = re.search(rf'<script type="application/json" id="kl-live-scene-{key}">(.*?)</script>', page, re.S)
    return json.loads(raw.group(1)) if raw else None


def test_site_live_steps_extra_figure_and_recap(tmp_path):
    from kl_core.live.lesson import lesson_scene

    keys = ("distillation", "forward", "reverse", "both", "on_policy")
    steps = [BY_KEY[k] for k in keys]
    report = build_site(tmp_path, steps=steps, hero="both")
    pages = {s.key: p.read_text(encoding="utf-8") for s, p in zip(steps, report.pages)}
    for step in steps:
        page = pages[step.key]
        scene = _scene_in(page, step.key)
        if step.key in ("forward", "reverse", "both"):
            # the widget sits in the answer (predict first), inlined, with the step's own scene in p/q
            answer = page[page.index("<details>") : page.index("</details>")]
            assert f"id='kl-live-{step.key}'" in answer and "const E = Object.freeze(" in answer
            assert scene == lesson_scene(step) and scene["notation"] == ["p", "q"]
            assert re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", page) == [PLOTLY_JS]  # nothing else fetched
            assert ".kl-live-bar" in page  # the widget's stylesheet, inline
        else:
            assert scene is None and "kl-live-bar" not in page
    # step 7's second figure (PPO runs) with its caption, inside the revealed answer
    rl = pages["on_policy"]
    answer = rl[rl.index("<details>") : rl.index("</details>")]
    assert '<div id="fig-on_policy-extra"' in answer
    assert f"What the KL penalty does: {BY_KEY['on_policy'].extra_result()}." in answer
    assert "fig-forward-extra" not in pages["forward"]
    # the recap closes the last page only: the one-line answer, each step's outcome, where to go next
    assert all("class='recap'" not in pages[k] for k in keys[:-1])
    recap_html = rl[rl.index("<section class='recap'") :]
    assert f"<strong>The one-line answer.</strong> {ONE_LINE}</p>" in recap_html
    for number, step in enumerate(steps, start=1):
        assert f"<a href='{page_name(number, step.key)}'>{step.title}</a>: {step.result()}." in recap_html
    card = recap({s.key: s.answer for s in STEPS})
    assert [f"<li>{label}</li>" in recap_html for _, label in card.next_steps] == [True] * len(card.next_steps)
