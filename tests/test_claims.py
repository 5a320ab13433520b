"""The captions' claims against the results table, and every preset's headline against its fitted numbers.

Oracle: the table rows of :func:`kl_core.viz.results_rows` (what a student reads under the caption)
and the trajectories themselves; each caption clause must hold for every start it names within the
precision it prints, and "all" may appear only when one clause names every start.
"""

import numpy as np
import pytest

import kl_core as kc
from app.state import DEFAULTS
from kl_core.metrics import teacher_modes
from kl_core.scenario import _spec, fit_1d, fit_2d
from kl_core.viz import Run
from kl_core.viz.text import MOVING, MOVING_WINDOW, caption, claims, render_claim, results_rows, run_summaries

PRESETS_1D = [n for n, p in kc.PRESETS.items() if p.space == "1d"]
PRESETS_2D = [n for n, p in kc.PRESETS.items() if p.space == "2d"]
BOTH = (("forward_kl", ()), ("reverse_kl", ()))
PRINTED = 0.005 + 5e-4 + 1e-9  # a 2-decimal number printed from a table value rounded to 3 decimals


def runs_1d(name, student, seed, steps=None, lr=None):
    p = kc.get_preset(name)
    steps = DEFAULTS["steps"] if steps is None else steps
    lr = DEFAULTS["lr"] if lr is None else lr
    return p.teacher, fit_1d(
        _spec(p.teacher), name, student, DEFAULTS["k"], BOTH, "exact", 256, lr, steps, DEFAULTS["inits"], seed
    )


def runs_2d(name, seed, steps=None):
    steps = DEFAULTS["steps2d"] if steps is None else steps
    return kc.PRESETS[name].teacher, fit_2d(name, BOTH, steps, DEFAULTS["inits2d"], DEFAULTS["lr2d"], seed)


def _moments(student):
    return np.concatenate([np.atleast_1d(student.mean), np.sqrt(np.atleast_1d(np.diagonal(student.cov)))])


def _within(value, span, tol):
    return span[0] - tol <= value <= span[1] + tol


def check_caption(teacher, run):
    """Every claim of the caption against the table rows it cites; returns the claims."""
    summaries = run_summaries(teacher, run)
    rows = results_rows(teacher, run, summaries=summaries)
    found = claims(teacher, run, summaries=summaries)
    text = caption(teacher, run, summaries=summaries)
    n, n_modes = len(rows), len(teacher_modes(teacher)[1])
    named = sorted(i for c in found for i in c.starts)
    assert named == list(range(n)), "every start is in exactly one claim"
    traj = run.trajectory
    k = max(2, round(MOVING_WINDOW * traj.steps))
    for i, c in enumerate(found):
        assert render_claim(teacher, c, first=i == 0) in text
        for start in c.starts:
            row, s = rows[start], summaries[start]
            covered = int(row["modes_covered"].split("/")[0])
            # exact fits: how far each printed moment ranges over every step of the last 10%
            window = np.array([_moments(traj.student(step, start)) for step in range(traj.steps - k, traj.steps + 1)])
            moved = window.max(0) - window.min(0)
            if c.kind == "moving":
                assert moved.max() >= MOVING, (start, moved)
            else:
                assert moved.max() < 2 * MOVING, (start, moved)  # "not moving" is true at the printed precision
                assert _within(covered, c.covered, 0)
                assert _within(100 * row["low_density_mass"], c.low_density_percent, 0.5 + 0.05 + 1e-9)
            if c.kind == "settled":
                assert s.modes_covered == (c.mode,) and s.mode_shares[c.mode] >= 0.5
            elif c.kind == "spread":
                assert covered >= 2 or (covered == 1 and s.mode_shares[s.modes_covered[0]] < 0.5)
            elif c.kind == "between":
                assert covered == 0
            elif c.kind == "reached":
                assert n_modes == 1
            means, stds = np.atleast_1d(row["mean"]), np.atleast_1d(row["std"])
            for value, span in zip(means, c.mean):
                assert _within(value, span, PRINTED), (start, value, span)
            for value, span in zip(stds, c.std):
                assert _within(value, span, PRINTED), (start, value, span)
    everyone = any(len(c.starts) == n for c in found)
    assert (f"all {n} starts" in text or "both starts" in text or n == 1) == everyone or n == 1
    if not everyone:
        assert "all " not in text
    return found


# -- captions: every 1-D preset x student type x 3 seeds (seed 0 at the page's defaults) ------------


@pytest.mark.parametrize("student", ["gaussian", "gaussian_fixed_std", "mixture"])
@pytest.mark.parametrize("name", PRESETS_1D)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_1d_caption_claims_match_the_table(name, student, seed):
    teacher, runs = runs_1d(name, student, seed, steps=None if seed == 0 else 150)
    for run in runs:
        check_caption(teacher, run)


@pytest.mark.parametrize("name", PRESETS_2D)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_2d_caption_claims_match_the_table(name, seed):
    teacher, runs = runs_2d(name, seed, steps=None if seed == 0 else 100)
    for run in runs:
        check_caption(teacher, run)


def test_the_reported_default_captions_no_longer_say_all():
    # issue 10: "forward KL: all 8 starts reached mean 0.00, std 3.16" while start 5 ends at (0.487, 3.237)
    teacher, runs = runs_1d("bimodal", "gaussian", 0)
    text = caption(teacher, runs[0])
    assert "all 8" not in text and "7 of 8 starts" in text
    assert "start 5 is still moving at step 400 (mean 0.49, std 3.24)" in text


def test_a_mixture_that_fits_the_teacher_covers_its_modes_not_between():
    p = kc.get_preset("bimodal")
    traj = kc.fit(p.teacher, p.teacher, "reverse_kl", steps=2, lr=1e-3, inits=1)  # starts at the teacher
    text = caption(p.teacher, Run("reverse_kl", {}, traj))
    assert "covered 2 of 2 modes" in text and "between" not in text


# -- headlines: each preset's one-line lesson, true of the fitted numbers at the page's defaults ---------


def _settled(s):
    return s.n_modes_covered == 1


def headline_1d(name, fwd, rev):
    """The preset's headline as a predicate over the final students' summaries (forward, reverse)."""
    if name == "bimodal":  # forward spreads over both; from most starts reverse locks onto one
        return all(s.n_modes_covered == 2 for s in fwd) and sum(map(_settled, rev)) > len(rev) / 2
    if name == "unequal":  # reverse usually finds the heavy mode; start 0 (at +2, near the light one) stays
        heavy = sum(s.modes_covered == (0,) for s in rev)
        return heavy > len(rev) / 2 and rev[0].modes_covered == (1,)
    if name == "three_modes":  # forward covers all three; reverse picks one, or a wide compromise over all
        picked = {s.modes_covered[0] for s in rev if _settled(s)}
        return all(s.n_modes_covered == 3 for s in fwd) and all(
            s.n_modes_covered in (1, 3) for s in rev
        ) and len(picked) >= 2
    if name == "close_modes":  # even reverse KL stays in the middle
        return all(abs(s.mean) < 0.05 and s.n_modes_covered == 2 for s in rev)
    if name == "far_modes":  # forward puts most of its mass where the teacher has almost none
        return all(s.low_density_mass > 0.5 for s in fwd)
    if name == "five_modes":  # forward blurs all five; reverse keeps fewer (one mode, or the middle three)
        return all(s.n_modes_covered == 5 for s in fwd) and all(
            s.n_modes_covered == 1 or s.modes_covered == (1, 2, 3) for s in rev
        )
    raise AssertionError(f"no headline check for {name}")


def _settled_summaries(teacher, run):
    """Summaries of the starts that have stopped moving (the caption names the others as still moving)."""
    summaries = run_summaries(teacher, run)
    moving = {i for c in claims(teacher, run, summaries=summaries) if c.kind == "moving" for i in c.starts}
    assert len(moving) < len(summaries) / 2, "most starts have stopped moving at the defaults"
    return [s for i, s in enumerate(summaries) if i not in moving]


@pytest.mark.parametrize("name", PRESETS_1D)
def test_1d_headline_is_true_at_the_page_defaults(name):
    teacher, (fwd, rev) = runs_1d(name, DEFAULTS["student"], DEFAULTS["seed"])
    rev_all = run_summaries(teacher, rev)
    assert headline_1d(name, _settled_summaries(teacher, fwd), rev_all), kc.PRESETS[name].lesson


def _mahalanobis(student, points):
    d = np.atleast_2d(points) - student.mean
    return np.sqrt(np.einsum("ni,ij,nj->n", d, np.linalg.inv(student.cov), d))


def _adjacent_on_ring(modes, n):
    return len(modes) == 1 or (len(modes) == 2 and (modes[1] - modes[0]) % n in (1, n - 1))


@pytest.mark.parametrize("name", PRESETS_2D)
def test_2d_headline_is_true_at_the_page_defaults(name):
    teacher, (fwd, rev) = runs_2d(name, DEFAULTS["seed"])
    centres, _ = teacher_modes(teacher)
    f_sum, r_sum = run_summaries(teacher, fwd), run_summaries(teacher, rev)
    for run, summaries in ((fwd, f_sum), (rev, r_sum)):  # every student has converged by the default steps
        assert "moving" not in {c.kind for c in claims(teacher, run, summaries=summaries)}, run.objective
    if name == "ring":  # one wide disc over the whole ring; reverse on one bump or two neighbours
        for student in fwd.trajectory.final:
            assert np.all(np.abs(student.mean) < 0.3) and np.all(_mahalanobis(student, centres) < 2.0)
        assert all(_adjacent_on_ring(s.modes_covered, len(centres)) for s in r_sum)
        assert any(s.n_modes_covered == 1 for s in r_sum)
    elif name == "three_clusters":  # reverse chooses a cluster by its start; forward stretches over all three
        for student in fwd.trajectory.final:
            assert np.all(_mahalanobis(student, centres) < 2.0)
        assert all(s.n_modes_covered == 1 for s in r_sum)
    elif name == "correlated":  # axis-aligned: too broad under forward KL, too compact under reverse KL
        minor = float(np.sqrt(np.linalg.eigvalsh(teacher.cov)[0]))
        marginal = float(np.sqrt(teacher.cov[0, 0]))
        assert all(np.all(np.asarray(s.std) > 2 * minor) for s in f_sum)
        assert all(np.all(np.asarray(s.std) < 0.6 * marginal) for s in r_sum)
    else:
        raise AssertionError(f"no headline check for {name}")


# -- the family page's capacity panel, the RL text and the landscape's counts --------------------------------


def test_capacity_panel_notes_agree_with_reverse_kl_dropping_modes():
    from app import model
    from kl_core.viz.capacity import panel_note

    inits = min(DEFAULTS["inits"], 4)  # as app/views/family.py asks
    fits = model.capacity_fits(DEFAULTS["kmax"], DEFAULTS["lr"], DEFAULTS["steps"], inits, DEFAULTS["seed"])
    teacher = kc.PRESETS[model.CAPACITY_TEACHER].teacher
    n_modes = len(teacher_modes(teacher)[1])
    for kind, pairs in fits.items():
        for k, traj in pairs:
            covered = kc.summarize(teacher, traj.student(traj.steps, traj.best)).n_modes_covered
            assert f"modes covered {covered}/{n_modes}" in panel_note(teacher, traj)
            if kind == "reverse_kl" and k < n_modes:  # the caption above the panel: "reverse KL drops modes"
                assert covered < n_modes, (kind, k)
            if kind == "forward_kl":  # "forward KL smears them over the gaps": every mode keeps some mass
                assert covered == n_modes, (kind, k)


def _page(name, query):
    import sys
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    at = AppTest.from_file(str(root / "app" / "views" / name), default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


@pytest.mark.parametrize("n", [DEFAULTS["rl_samples"], 64])
def test_rl_gradient_text_quotes_the_samples_the_training_uses(n):
    import kl_core.rl as rl

    at = _page("rl.py", {"rl_samples": str(n)})
    assert not at.exception
    text = at.markdown[0].value
    assert f"with n = {n} samples" in text and "n = 32" not in text
    study = rl.demo_study("gaussian", DEFAULTS["rl_seed"], reps=200, n=n)
    j = [int(v) for v in study.sizes].index(n)
    for i in range(len(study.estimators)):
        assert f"{study.variance[i, j]:.3g}" in text
    columns = list(at.dataframe[0].value.columns)
    assert f"variance (n={n})" in columns and f"mean estimate (n={n})" in columns


def test_landscape_counts_its_minima_in_good_english():
    at = _page("landscape.py", {"grid": "60", "steps": "100", "inits": "2"})
    assert not at.exception
    counts = [m.value for m in at.markdown if "local minim" in m.value]
    assert len(counts) == 2 and not any("1 local minima" in c for c in counts)
    assert any("1 local minimum" in c for c in counts)  # forward KL: one minimum, at the moment match
