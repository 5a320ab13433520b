"""The token lab: correlated token answers, factorised students, invalid mass, decoding; and its figures' numbers.

Oracles: the forward-KL optimum of a product student is the product of the teacher's marginals
(forward KL splits into one cross-entropy per position; marginals by plain numpy sums); invalid
mass and divergences by direct numpy / scipy (``scipy.special.rel_entr``,
``scipy.spatial.distance.jensenshannon``) on softmax / top-k / nucleus filters written out here.
"""

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr, softmax

import kl_core as kc
from kl_core import token_lab as tl
from kl_core.viz import Run
from kl_core.viz.tokens import answer_rows, decoding_figure, joint_animation, token_caption

JOINT = ["city_tokens", "yes_no_tokens", "three_tokens"]
SINGLE = ["breakfast_next_token", "capital_next_token"]


def marginals(p: np.ndarray) -> list[np.ndarray]:
    return [p.sum(axis=tuple(a for a in range(p.ndim) if a != i)) for i in range(p.ndim)]


def runs_for(name, objectives, steps=300, inits=8, seed=0):
    p = kc.get_preset(name)
    trajs = tl.fit_joint(p.teacher.probs, objectives, steps=steps, lr=0.1, inits=inits, seed=seed)
    return p, [Run(k, dict(par), t) for (k, par), t in zip(objectives, trajs)]


def trace(fig, role, **match):
    found = [
        t for t in fig.data if (t.meta or {}).get("role") == role and all(t.meta.get(k) == v for k, v in match.items())
    ]
    assert found, (role, match)
    return found


@pytest.mark.parametrize("name", JOINT + SINGLE)
def test_token_presets_are_valid_tables(name):
    p = kc.get_preset(name)
    t = p.teacher.probs
    assert p.space == "discrete" and np.all(t > 0) and t.sum() == pytest.approx(1.0, abs=1e-12)
    assert tuple(len(n) for n in p.labels) == t.shape == p.student.shape
    assert np.exp(p.student.log_probs).sum() == pytest.approx(1.0, abs=1e-12)
    if name in JOINT:
        invalid = tl.invalid_cells(t)
        assert invalid.any() and (~invalid).any()
        # every first token has a valid continuation and vice versa: the answers are correlated
        for axis in range(t.ndim):
            assert np.all((~invalid).any(axis=tuple(a for a in range(t.ndim) if a != axis)))
    else:
        assert t.shape == (12,) and not np.allclose(t, np.exp(p.student.log_probs))


def test_city_invalid_cells_are_the_mixed_names():
    t = kc.get_preset("city_tokens").teacher.probs
    np.testing.assert_array_equal(tl.invalid_cells(t), ~np.eye(3, dtype=bool))  # "New Angeles" etc.


def test_product_of_marginals_matches_outer_products():
    p = np.random.default_rng(0).random((3, 4, 2))
    p /= p.sum()
    m = marginals(p)
    np.testing.assert_allclose(tl.product_of_marginals(p), np.einsum("i,j,k->ijk", *m), rtol=1e-12)


@pytest.mark.parametrize("name", JOINT)
def test_forward_kl_fit_is_the_product_of_the_teachers_marginals(name):
    p, (run,) = runs_for(name, [("forward_kl", {})], steps=600)
    oracle = np.ones(())
    for m in marginals(p.teacher.probs):  # numpy marginals, outer product
        oracle = np.multiply.outer(oracle, m)
    for student in run.trajectory.final:
        np.testing.assert_allclose(np.exp(student.log_probs), oracle, atol=1e-4)
    # and it spreads mass onto invalid cells: exactly the product's share there
    inv = tl.invalid_cells(p.teacher.probs)
    assert tl.invalid_mass(p.teacher, run.trajectory.final[0]) == pytest.approx(oracle[inv].sum(), abs=1e-4)
    assert oracle[inv].sum() > 0.4


@pytest.mark.parametrize("name", ["city_tokens", "three_tokens"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reverse_kl_commits_to_one_valid_answer(name, seed):
    p, (run,) = runs_for(name, [("reverse_kl", {})], seed=seed)
    cells = set()
    for student in run.trajectory.final:
        q = np.exp(student.log_probs)
        cell = np.unravel_index(np.argmax(q), q.shape)
        assert q[cell] > 0.9 and p.teacher.probs[cell] >= tl.INVALID_BELOW
        assert q[tl.invalid_cells(p.teacher.probs)].sum() < 0.05
        cells.add(cell)
    assert len(cells) >= 2  # which answer depends on the start


def test_reverse_kl_on_yes_no_commits_to_the_answer_and_keeps_fitting_reasons():
    p, (run,) = runs_for("yes_no_tokens", [("reverse_kl", {})])
    for student in run.trajectory.final:
        q = np.exp(student.log_probs)
        assert q.sum(axis=1).max() > 0.95  # Yes or No
        assert q[tl.invalid_cells(p.teacher.probs)].sum() < 0.05


def test_joint_animation_numbers_equal_direct_computation():
    p, runs = runs_for("city_tokens", [("forward_kl", {}), ("reverse_kl", {})], steps=120, inits=3)
    fig = joint_animation(p.teacher, runs, p.labels, start=1, n_frames=13)
    invalid = p.teacher.probs < 0.01
    for c, run in enumerate(runs):
        traj = run.trajectory
        drawn = {}
        for t in trace(fig, "invalid_mass", run=c):
            y = np.asarray(t.y, float)
            pieces = np.split(y, np.nonzero(np.isnan(y))[0] + 1)  # starts separated by NaN
            for i, piece in zip(t.meta["starts"], pieces):
                drawn[i] = piece[~np.isnan(piece)]
        assert sorted(drawn) == list(range(traj.inits))
        for i, y in drawn.items():
            direct = [np.exp(traj.student(s, i).log_probs)[invalid].sum() for s in range(traj.steps + 1)]
            np.testing.assert_allclose(y, direct, atol=1e-6)
        (h,) = trace(fig, "joint", run=c, start=1)
        np.testing.assert_allclose(np.asarray(h.z, float), np.exp(traj.final[1].log_probs), atol=1e-6)
        for j in range(2):
            (b,) = trace(fig, "marginal", run=c, position=j)
            np.testing.assert_allclose(np.asarray(b.y, float), traj.final[1].marginals()[j], atol=1e-6)
    np.testing.assert_allclose(np.asarray(trace(fig, "teacher_joint")[0].z, float), p.teacher.probs, atol=1e-7)
    assert len(fig.frames) == 13 and fig.frames[0].name == "0" and fig.frames[-1].name == "120"
    # frame 0 shows the uniform start 0... start 1 is a random start: its joint at step 0
    np.testing.assert_allclose(
        np.asarray(fig.frames[0].data[1].z, float), np.exp(runs[1].trajectory.student(0, 1).log_probs), atol=1e-6
    )
    assert fig.layout.updatemenus[0].buttons[0].args[1]["frame"]["redraw"] is True


def test_three_positions_are_drawn_as_first_token_by_the_rest():
    p, runs = runs_for("three_tokens", [("reverse_kl", {})], steps=60, inits=2)
    fig = joint_animation(p.teacher, runs, p.labels)
    (h,) = trace(fig, "joint", run=0, start=0)
    np.testing.assert_allclose(np.asarray(h.z, float), np.exp(runs[0].trajectory.final[0].log_probs).reshape(3, 9))
    assert "Chi Minh" in fig.layout.xaxis.ticktext


def test_answer_rows_and_caption_use_live_numbers():
    p, runs = runs_for("city_tokens", [("forward_kl", {}), ("reverse_kl", {})])
    rows = answer_rows(p.teacher, runs, p.labels)
    assert len(rows) == 16
    fwd = [r for r in rows if r["objective"] == "forward KL"]
    oracle = tl.product_of_marginals(p.teacher.probs)
    assert all(r["answer"] == "New York" and not r["committed"] for r in fwd)
    assert fwd[0]["invalid_mass"] == pytest.approx(oracle[~np.eye(3, dtype=bool)].sum(), abs=1e-3)
    assert fwd[0]["forward_kl"] == pytest.approx(rel_entr(p.teacher.probs, oracle).sum(), abs=1e-4)
    rev = [r for r in rows if r["objective"] == "reverse KL"]
    assert all(r["committed"] and r["invalid_mass"] < 0.05 for r in rev)
    assert len({r["answer"] for r in rev}) >= 2
    text = token_caption(p.teacher, runs[1], p.labels)
    assert "8 of 8 starts put > 90% on one valid answer" in text
    n_ny = sum(r["answer"] == "New York" for r in rev)
    assert f"New York ×{n_ny}" in text
    text = token_caption(p.teacher, runs[0], p.labels)
    assert text.startswith("**forward KL**: 0 of 8") and f"{oracle[~np.eye(3, dtype=bool)].sum():.1%}" in text


@pytest.mark.parametrize(
    "values, message",
    [
        ([[0.5, -0.1], [0.2, 0.4]], r"cell \(1, 2\) is -0.1; probabilities must be >= 0"),
        ([[0.5, None], [0.2, 0.4]], r"cell \(1, 2\) is empty"),
        ([[0.5, float("nan")], [0.2, 0.4]], r"cell \(1, 2\) is empty"),
        ([[0.5, "abc"], [0.2, 0.4]], "not a number"),
        ([[0.0, 0.0], [0.0, 0.0]], "at least one cell must be positive"),
        ([0.5, 0.5], "at least two axes"),
        ([[0.5, float("inf")], [0.2, 0.4]], "finite"),
    ],
)
def test_bad_tables_raise_clear_errors(values, message):
    with pytest.raises(ValueError, match=message):
        tl.joint_table(values)


def test_tables_are_normalised_with_notes():
    table, notes = tl.joint_table([[3.0, 0.0], [0.0, 1.0]])
    floor = 1e-3
    expected = np.array([[0.75, floor], [floor, 0.25]]) / (1 + 2 * floor)
    np.testing.assert_allclose(table, expected, rtol=1e-12)
    assert "summed to 4" in notes[0] and "2 cells at 0 were raised to 0.001" in notes[1]
    table, notes = tl.joint_table([[0.25, 0.25], [0.25, 0.25]])
    assert notes == [] and table.sum() == 1.0


def oracle_decode(probs, t, k, top_p):
    """softmax(log p / t), keep the k most likely (k = 0: all), then the smallest top set reaching top_p."""
    q = softmax(np.log(probs) / t)
    if k:
        q = np.where(q >= np.sort(q)[-k], q, 0.0)
        q /= q.sum()
    order = np.argsort(-q, kind="stable")
    before = np.cumsum(q[order]) - q[order]
    keep = np.zeros(q.size, bool)
    keep[order[before < top_p]] = True
    q = np.where(keep, q, 0.0)
    return q / q.sum()


@pytest.mark.parametrize("name", SINGLE)
@pytest.mark.parametrize("top_k, top_p, transform", [(0, 1.0, "student"), (4, 1.0, "student"), (0, 0.8, "teacher")])
def test_decoding_sweep_equals_scipy(name, top_k, top_p, transform):
    pair = kc.get_preset(name)
    p, s = pair.teacher.probs, np.exp(pair.student.log_probs)
    temps = [0.3, 0.7, 1.0, 1.6, 2.5]
    objectives = [("forward_kl", {}), ("reverse_kl", {}), ("jsd", {"beta": 0.5}), ("tv", {})]
    sweep = tl.decoding_sweep(p, s, objectives, temps, top_k, top_p, transform)
    source = s if transform == "student" else p
    for j, t in enumerate(temps):
        q = oracle_decode(source, t, top_k, top_p)
        np.testing.assert_allclose(sweep.decoded[j], q, atol=1e-12)
        with np.errstate(divide="ignore"):
            fwd = rel_entr(p, q).sum()
        assert sweep.values[0, j] == pytest.approx(fwd, rel=1e-9)  # inf == inf where a filter cut a token
        assert sweep.values[1, j] == pytest.approx(rel_entr(q, p).sum(), rel=1e-9)
        assert sweep.values[2, j] == pytest.approx(jensenshannon(p, q) ** 2, rel=1e-7)
        assert sweep.values[3, j] == pytest.approx(0.5 * np.abs(p - q).sum(), rel=1e-9)
    if top_k:
        assert np.all(np.isinf(sweep.values[0]))  # the student dropped tokens the teacher uses
    fig = decoding_figure(sweep, pair.labels[0], temperature=0.7)
    for k, (kind, _) in enumerate(objectives):
        (line,) = trace(fig, "sweep", kind=kind)
        shown = np.array([np.nan if v is None else v for v in line.y], float)
        np.testing.assert_allclose(shown, np.where(np.isfinite(sweep.values[k]), sweep.values[k], np.nan), rtol=1e-12)
    (bars,) = trace(fig, "bars", what="decoded")
    np.testing.assert_allclose(np.asarray(bars.y, float), oracle_decode(source, 0.7, top_k, top_p), atol=1e-6)


def test_decoding_at_temperature_one_without_filters_is_the_original():
    pair = kc.get_preset("capital_next_token")
    p = pair.teacher.probs
    sweep = tl.decoding_sweep(p, np.exp(pair.student.log_probs), [("forward_kl", {})], [1.0], transform="teacher")
    assert sweep.values[0, 0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="transform must be"):
        tl.decoding_sweep(p, p, [("forward_kl", {})], [1.0], transform="both")
    with pytest.raises(ValueError, match="top_k must be"):
        tl.decode(np.log(p), 1.0, top_k=-1)
