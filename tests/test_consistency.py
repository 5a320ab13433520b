"""What the pages say against what they show: one notation per page, sentences against the numbers beside them.

Oracles: the lesson's own facts (``step.facts()``) for the README's lesson table; ``kl_core.token_lab.answer``
per start for the token caption; ``kl_core.viz.motion_steps`` for the lesson's token-pair frames; the
teacher's table (its invalid cells counted) for the three-token headline; the landscape's minima for
its counts; the fitted sweep's std for the family page's stated direction.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from spec_tools import decode, figures, traces
from streamlit.testing.v1 import AppTest

import kl_core as kc
import kl_core.rl as rl
from kl_core import token_lab as tl
from kl_core.lesson import N_FRAMES, STEPS
from kl_core.presets import starting_student
from kl_core.viz import Run, frame_steps, motion_steps
from kl_core.viz.capacity import NOTE_SHARE, capacity_figure
from kl_core.viz.colors import ROLE_COLORS
from kl_core.viz.lesson import CANDIDATE_COLOR, pair_bars_figure
from kl_core.viz.rl import kl_histogram_figure, kl_sweep_figure
from kl_core.viz.tokens import STUDENT_COLOR, decoding_figure, token_caption

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the pages import `app.*`, as app/main.py arranges in a real run
BY_KEY = {s.key: s for s in STEPS}


def _page(name: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app" / "views" / name), default_timeout=180)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _page_texts(at: AppTest) -> list[str]:
    """Every sentence, heading, column name, control label and figure word an AppTest run shows."""
    out = [
        el.value for kind in ("title", "header", "subheader", "markdown", "caption", "info") for el in getattr(at, kind)
    ]
    out += [str(c) for el in at.dataframe for c in el.value.columns]
    out += [el.label for kind in ("slider", "selectbox", "number_input") for el in getattr(at, kind)]
    for fig in figures(at):
        out += _figure_texts(fig)
    return out


def _figure_texts(fig: dict) -> list[str]:
    layout = fig.get("layout", {})
    out = [a.get("text", "") for a in layout.get("annotations", [])]
    out += [(layout.get("title") or {}).get("text") or ""]
    out += [(v.get("title") or {}).get("text") or "" for k, v in layout.items() if k.startswith(("xaxis", "yaxis"))]
    out += [t.get("name") or "" for t in fig.get("data", [])]
    return [t for t in out if t]


# -- 1. one notation per page: the RL page writes S (student) and T (teacher), Schulman's q/p only as a remark ----

# q/p written as the page's own notation: KL(q‖p), q = N(...), p(x), E_q, log p, q·log
QP = re.compile(r"KL\([pq]‖|‖[pq]\)|\b[pq] = N\(|\b[pq]\(x\)|E_[pq]\b|\blog [pq]\b|[pq]·log|[pq]\(x\)/[pq]")
REMARK = "writes q for S and p for T"  # the one place q and p may appear: naming Schulman's letters


def _qp_free(texts: list[str]) -> None:
    for text in texts:
        assert not QP.search(text.replace(REMARK, "")), text


def test_qp_pattern_catches_the_old_notation():
    # the pattern must be able to fail: these are the part-3 texts before issue 10's notation fix
    for old in ("per-sample estimate of KL(q‖p)", "separation μ (q = N(0,1), p = N(μ,1))", "r = p(x)/q(x)"):
        assert QP.search(old), old
    assert not QP.search("KL(S‖T), T = N(1, 1), top-p 0.9, π_ref")


def test_rl_estimator_figures_speak_s_and_t():
    hist = kl_histogram_figure(rl.kl_estimator_samples(1.0, 500, 0)).to_plotly_json()
    sweep = kl_sweep_figure(rl.kl_estimator_sweep(np.linspace(0.5, 2.0, 4), 500, 0), 1.0).to_plotly_json()
    texts = _figure_texts(hist) + _figure_texts(sweep)
    _qp_free(texts)
    assert any("KL(S‖T)" in t for t in texts) and any("S = N(0,1), T = N(μ,1)" in t for t in texts)


@pytest.mark.parametrize("part", ["gradients", "regularised", "estimators", "ppo"])
def test_rl_page_speaks_one_notation(part):
    query = {"rl_part": part, "rl_steps": "50", "rl_updates": "10", "rl_kl_samples": "500"}
    at = _page("rl.py", query)
    assert not at.exception, [e.value for e in at.exception]
    texts = _page_texts(at)
    _qp_free(texts)
    if part == "estimators":
        joined = " ".join(texts)
        assert "KL(S‖T)" in joined and "T = N(" in joined and REMARK in joined
        assert any(t.startswith("Separation μ (T = N(μ, 1))") for t in texts)


def test_rl_estimators_text_quotes_closed_forms_and_the_legend_the_samples():
    mu, n = 1.5, 800
    at = _page("rl.py", {"rl_part": "estimators", "rl_mu": str(mu), "rl_kl_samples": str(n)})
    assert not at.exception
    text = at.markdown[0].value
    k3_std = np.sqrt(np.exp(mu**2) - 1 - mu**2)  # closed form (Schulman 2020)
    assert f"std {k3_std:.3f}" in text and f"its {n:,} samples' mean and std" in text
    values = rl.kl_estimator_samples(mu, n, 0).values  # the histogram's samples, seed 0
    legend = [t["name"] for t in figures(at)[0]["data"]]
    for k, row in zip(rl.KL_ESTIMATORS, values):
        assert f"{k}: mean {row.mean():.3f}, std {row.std(ddof=1):.3f}" in legend
    caption = at.caption[0].value
    # ∇ over (mean, log std) at μ = 1.5, written as the table writes it (no numpy brackets)
    assert "∇KL(S‖T) = (-1.500, 0.000)" in caption and "∇KL(T‖S) = (-1.500, -2.250)" in caption


# -- 2. the lesson's token-pair bars: frames spread over the movement, named by their real step ----------------


def _movement(traj: kc.Trajectory) -> np.ndarray:
    """Cumulative parameter distance per step (averaged over starts): (steps + 1,)."""
    theta = traj.params
    per_step = np.sqrt(((theta[1:] - theta[:-1]) ** 2).sum(axis=-1)).mean(axis=-1)
    return np.concatenate([[0.0], np.cumsum(per_step)])


def test_lesson_token_bars_follow_the_motion_and_name_the_real_step():
    step = BY_KEY["tokens"]
    f, fig = step.facts(), step.figure()
    runs = [Run("forward_kl", {}, f["fwd"]), Run("reverse_kl", {}, f["rev"])]
    steps = motion_steps(runs, N_FRAMES)
    assert [fr.name for fr in fig.frames] == [str(s) for s in steps]
    assert [s.label for s in fig.layout.sliders[0].steps] == [str(s) for s in steps]
    for k in (0, len(steps) // 3, len(steps) - 1):  # each frame draws the students of its step (start 0)
        for trace, traj in zip(fig.frames[k].data, (f["fwd"], f["rev"])):
            direct = traj.student(int(steps[k]), 0).table().ravel()
            np.testing.assert_allclose(np.asarray(trace.y, float), direct, atol=1e-6)
    # the first tenth of the frames holds at most half of either student's movement; evenly spaced frames
    # (the old choice) held more: the assertion above can fail
    tenth = len(steps) // 10
    even = frame_steps(int(steps[-1]), N_FRAMES)
    for traj in (f["fwd"], f["rev"]):
        moved = _movement(traj)
        assert moved[steps[tenth]] / moved[-1] <= 0.5
    assert max(_movement(t)[even[tenth]] / _movement(t)[-1] for t in (f["fwd"], f["rev"])) > 0.5


def test_pair_bars_refuse_two_frames_of_one_name():
    probs = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match="frame_labels must be distinct"):
        pair_bars_figure(["a", "b"], np.array([0.5, 0.5]), [("q", "reverse_kl", probs)], ["5", "5"], prefix="step ")


# -- 3. claims against numbers: the README's lesson table, headlines, captions ---------------------------------


def _readme_lesson_rows() -> dict[int, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The guided lesson", 1)[1].split("\n## ", 1)[0]
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d) \| [^|]+ \| (.+) \|$", section, re.M)}


def test_readme_lesson_table_quotes_the_lessons_numbers():
    rows = _readme_lesson_rows()
    assert sorted(rows) == list(range(1, len(STEPS) + 1))
    f = {s.key: s.facts() for s in STEPS}
    d, fw, rv, both = f["distillation"], f["forward"], f["reverse"], f["both"]
    fam, tok, on, lm = f["family"], f["tokens"], f["on_policy"], f["language_models"]
    expected = {
        1: [f"forward {d['a_fwd']:.2f} / reverse {d['a_rev']:.2f}", f"{d['b_fwd']:.2f} / {d['b_rev']:.2f}"],
        2: [
            f"{fw['fwd_cover']} of {fw['inits']} starts end covering both bumps",
            f"start 0 moment-matches (mean {fw['fwd_mean']:+.2f}, std {fw['fwd_std']:.2f}",
            f"{fw['fwd_gap']:.0%} of its mass",
        ],
        3: [f"mean {rv['rev_mean']:+.2f}, std {rv['rev_std']:.2f}, reverse KL {rv['rev_kl']:.3f}"],
        4: [
            f"{both['rev_left']} starts on the left bump, {both['rev_right']} on the right, "
            f"{both['rev_middle']} stuck in the wide local minimum"
        ],
        5: [f"wide up to β = {fam['last_wide']:g}, on a bump from β = {fam['first_narrow']:g}"],
        6: [
            f"*New Angeles* {tok['fwd_new_angeles']:.1%}",
            f"invalid pairs {tok['fwd_invalid']:.0%}",
            f"{tok['rev_city']} {tok['rev_city_p']:.1%}",
        ],
        7: [f"({on['on_mean']:+.2f} / {on['on_std']:.2f})"],
        8: [f"{lm['valid0']:.0%} → {lm['valid1']:.1%}", f"{lm['eff0']:.1f} → {lm['eff1']:.2f}"],
    }
    for number, pieces in expected.items():
        for piece in pieces:
            assert piece in rows[number], (number, piece, rows[number])
    # the wide local minimum's std, from the landscape the lesson quotes
    assert re.search(r"std (\d\.\d\d)\)", rows[4]).group(1) in both["rev_minima"]
    # "all" only where every start agrees: forward KL's start 5 is still moving at step 400 (issue 10)
    stats = [(round(s.mean, 2) + 0.0, round(s.std, 2)) for s in fw["traj"].final]
    if len(set(stats)) > 1:
        assert "all" not in rows[2]


def test_three_tokens_headline_counts_its_invalid_triples():
    p = kc.get_preset("three_tokens")
    invalid = tl.invalid_cells(p.teacher.probs)
    claimed = int(re.search(r"all (\d+) invalid triples", p.lesson).group(1))
    assert claimed == int(invalid.sum()) == 24
    fwd, rev = tl.fit_joint(p.teacher.probs, [("forward_kl", ()), ("reverse_kl", ())], 300, 0.1, 8, 0)
    q = np.exp(fwd.final[0].log_probs)
    assert q[invalid].min() > 1e-3  # "spreads over all" of them: every invalid triple gets mass
    assert all(tl.answer(p.teacher, s).committed for s in rev.final)  # "reverse KL names one city"


CAPTION_CASES = [
    (name, kind, inits)
    for name in ("city_tokens", "yes_no_tokens", "three_tokens")
    for kind in ("forward_kl", "reverse_kl", "jsd")
    for inits in (1, 8)
]


@pytest.mark.parametrize("name, kind, inits", CAPTION_CASES)
def test_token_caption_names_each_start_with_its_own_numbers(name, kind, inits):
    p = kc.get_preset(name)
    params = {"beta": 0.5} if kind == "jsd" else {}
    (traj,) = tl.fit_joint(p.teacher.probs, [(kind, tuple(params.items()))], 300, 0.1, inits, 0)
    text = token_caption(p.teacher, Run(kind, params, traj), p.labels)
    answers = [tl.answer(p.teacher, s) for s in traj.final]  # the oracle, start by start
    names = [tl_label(p, a.cell) for a in answers]
    committed = [a for a in answers if a.committed]
    verb = "puts" if inits == 1 else "put"
    assert f"{len(committed)} of {inits} start{'s' if inits > 1 else ''} {verb} > 90%" in text
    # the invalid mass: one number only when every start prints it
    printed = {f"{a.invalid_mass:.1%}" for a in answers}
    if len(printed) == 1:
        assert f"it puts {printed.pop()} of its mass" in text
    else:
        lo, hi = min(a.invalid_mass for a in answers), max(a.invalid_mass for a in answers)
        assert f"it puts {lo:.1%} to {hi:.1%} of its mass" in text
    others = [(n, a) for n, a in zip(names, answers) if not a.committed]
    if not others:
        assert "most likely answer" not in text
        return
    tail = text.split("most likely answer: ", 1)[1].rstrip(".")
    for name_ in dict(others):
        shares = [b.mass for m, b in others if m == name_]
        lo, hi = f"{min(shares):.0%}", f"{max(shares):.0%}"
        count = "" if inits == 1 else f" ×{len(shares)}"
        assert f"{name_}{count} ({lo if lo == hi else f'{lo} to {hi}'})" in tail, (tail, name_)
    if inits == 1:
        assert "×" not in tail and text.count("its most likely answer") == 1


def tl_label(preset, cell) -> str:
    from kl_core.viz.tokens import cell_label, token_labels

    return cell_label(cell, token_labels(preset.teacher.shape, preset.labels))


def test_yes_no_reverse_caption_no_longer_borrows_another_answers_mass():
    # before: "its most likely answer is Yes, lifeguards at 55% at most", while Yes, lifeguards had 54%
    # and the 55% was No, strong currents'
    p = kc.get_preset("yes_no_tokens")
    (traj,) = tl.fit_joint(p.teacher.probs, [("reverse_kl", ())], 300, 0.1, 8, 0)
    text = token_caption(p.teacher, Run("reverse_kl", {}, traj), p.labels)
    tops = {}
    for s in traj.final:
        a = tl.answer(p.teacher, s)
        tops.setdefault(tl_label(p, a.cell), []).append(a.mass)
    assert len(tops) == 2  # some starts say Yes, the others No: the caption names both
    for label, masses in tops.items():
        assert f"{label} ×{len(masses)} ({max(masses):.0%})" in text


def test_decoding_bars_are_told_apart_and_the_teachers_grey_is_the_teachers():
    pair = kc.get_preset("capital_next_token")
    sweep = tl.decoding_sweep(pair.teacher.probs, np.exp(pair.student.log_probs), [("forward_kl", ())], [0.5, 1.0])
    fig = decoding_figure(sweep, pair.labels[0], temperature=0.5)
    bars = {t.meta["what"]: t for t in fig.data if (t.meta or {}).get("role") == "bars"}
    assert bars["original"].name == "student before decoding" and bars["decoded"].name == "student decoded at T=0.5"
    assert STUDENT_COLOR == CANDIDATE_COLOR and STUDENT_COLOR.upper() not in {c.upper() for c in ROLE_COLORS.values()}
    assert bars["decoded"].marker.color == STUDENT_COLOR


# -- 4. page sentences against the tables and figures beside them --------------------------------------------


def test_landscape_counts_say_which_minima_are_global():
    at = _page("landscape.py", {"grid": "60", "steps": "100", "inits": "2"})
    assert not at.exception
    counts = [m.value for m in at.markdown if "local minim" in m.value]
    assert len(counts) == 2 == len(at.dataframe)
    for sentence, table in zip(counts, (el.value for el in at.dataframe)):
        n, best = len(table), int(table["global"].sum())
        if n == 1:
            assert sentence.endswith("1 local minimum, the global one") and best == 1
        else:
            assert sentence.endswith(f"{n} local minima, {best} of them global")
        assert not np.any(np.signbit(table["mean"].to_numpy()) & (table["mean"].to_numpy() == 0))  # no "-0.0"


@pytest.mark.parametrize("sweep", ["alpha", "beta"])
def test_family_caption_states_the_direction_the_sweep_goes(sweep):
    at = _page("family.py", {"sweep": sweep, "points": "3", "steps": "200", "inits": "2", "kmax": "1"})
    assert not at.exception
    intro = at.caption[0].value
    std = decode(traces(figures(at)[0], "std")[0]["y"])  # the best start's std at each swept value, in order
    if sweep == "alpha":  # α from -0.5 (reverse-like) to 1.5 (forward-like): the student widens
        assert "widen from seeking (α = −0.5) to covering (α = 1.5)" in intro and std[-1] > 1.5 * std[0]
    else:  # β from 0 (forward) to 1 (reverse): it narrows
        assert "narrow from covering (β = 0) to seeking (β = 1)" in intro and std[0] > 1.5 * std[-1]
    title = [a["text"] for a in figures(at)[0]["layout"]["annotations"]]
    assert not any("from covering to seeking" in t for t in title)  # the axis runs the other way for α


def test_capacity_notes_sit_above_every_curve():
    teacher = kc.get_preset("five_modes").teacher
    fits = {
        kind: [(k, kc.fit(teacher, starting_student(teacher, k), kind, steps=150, lr=0.05, inits=2)) for k in (1, 2)]
        for kind in ("forward_kl", "reverse_kl")
    }
    fig = json.loads(capacity_figure(teacher, fits).to_json())
    layout = fig["layout"]
    for t in fig["data"]:
        axis = "yaxis" + t.get("yaxis", "y")[1:]
        top = layout[axis]["range"][1]
        assert np.nanmax(decode(t["y"])) <= (1 - NOTE_SHARE) * top + 1e-9, t.get("name")


def test_theory_page_bounds_jsd_only_where_it_is_bounded():
    # oracle: the generalized JS of two distributions that never overlap is the entropy of (β, 1 − β)
    p, q = kc.Gaussian(0.0, 1.0), kc.Gaussian(40.0, 1.0)
    for beta in (0.1, 0.3, 0.5, 0.9):
        entropy = -beta * np.log(beta) - (1 - beta) * np.log(1 - beta)
        assert float(kc.divergence(p, q, "jsd", beta=beta)) == pytest.approx(entropy, rel=1e-4)
        assert entropy <= np.log(2) + 1e-12
    assert float(kc.divergence(p, q, "jsd", beta=0.0)) > 100  # β = 0 is forward KL: no ln 2 bound there
    at = _page("theory.py")
    text = " ".join(m.value for m in at.markdown)
    assert "for 0 < β < 1" in text and "no bound" in text and "at any β" not in text
