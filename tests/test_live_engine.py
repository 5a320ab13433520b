"""The live lab's JavaScript engine (kl_core/live/engine.js, minima.js) against its oracle, kl_core.

Python writes problems with kl_core.live.problem, one `node` process runs them all
(tests/live_runner.mjs), and every parameter of every start at every step is compared with
kc.fit(..., estimator="exact"). Relative errors are taken against max(|value|, 1): a parameter
is a mean, a log std or a weight logit, all of order one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import kl_core as kc
from kl_core.divergences import resolve
from kl_core.families import GaussianMixture1D
from kl_core.fitting import _Problem
from kl_core.live import problem

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "live_runner.mjs"


@pytest.fixture(autouse=True, scope="module")
def node_available() -> None:
    """Skip without node (locally); in CI (CI=true) fail, so a missing runtime cannot pass as green."""
    if shutil.which("node") is None:
        message = "the live engine's oracle tests need node (>= 18) on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)


TEACHER = kc.GaussianMixture([0.5, 0.3, 0.2], [-3.0, 2.0, 5.0], [1.0, 0.7, 1.3])
KINDS = [
    ("forward_kl", {}),
    ("reverse_kl", {}),
    ("jsd", {"beta": 0.5}),
    ("jsd", {"beta": 1.0}),
    ("jsd_scaled", {"beta": 0.3}),
    ("alpha", {"alpha": 0.5}),
    ("alpha", {"alpha": 0.0}),
    ("skew_forward_kl", {"alpha": 0.0}),
    ("skew_forward_kl", {"alpha": 0.1}),
    ("skew_reverse_kl", {"alpha": 0.1}),
    ("tv", {}),
]
STUDENTS = {  # name: (start 0, learn)
    "gaussian": (kc.Gaussian(1.0, 1.0), None),
    "gaussian_fixed_std": (kc.Gaussian(1.0, 1.5), ("mean",)),
    "mixture_2": (kc.GaussianMixture([1, 1], [-1.0, 1.0], [1.0, 1.0]), None),
    "mixture_3": (kc.GaussianMixture([1, 2, 1], [-2.0, 0.0, 2.0], [1.0, 0.8, 1.0]), None),
    "mixture_4": (kc.GaussianMixture([1, 1, 1, 1], [-2.0, -1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 1.0]), None),
}
STEPS = 400
INITS = 4
# total variation's gradient is a sign: near its optimum Adam chatters around the kinks and two runs
# that differ by one rounding error separate exponentially (kc.fit's own trajectory moves by more
# than 1e-6 under a 1-ulp change of its start: test_tv_is_chaotic_in_kl_core_itself). Its oracle
# horizon is the stretch before that happens.
TV_HORIZON = 120


def run_node(tasks: list[dict], tmp_path: Path) -> list[dict]:
    src, out = tmp_path / "tasks.json", tmp_path / "results.json"
    src.write_text(json.dumps(tasks))
    subprocess.run(["node", str(RUNNER), str(src), str(out)], check=True, timeout=600)
    results = json.loads(out.read_text())
    for r in results:
        assert "error" not in r, r.get("error")
    return results


def rel_err(a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b) / np.maximum(np.abs(b), 1.0)


CASES = [(kind, par, name) for kind, par in KINDS for name in STUDENTS]


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """(case, problem dict, kc.fit trajectory, engine result) for every kind x student family."""
    problems, trajs = [], []
    for kind, par, name in CASES:
        start, learn = STUDENTS[name]
        args = dict(steps=STEPS, lr=0.05, inits=INITS, seed=3, learn=learn, **par)
        problems.append(problem(TEACHER, start, kind, **args))
        trajs.append(kc.fit(TEACHER, start, kind, estimator="exact", **args))
    results = run_node([{"task": "fit", "problem": p} for p in problems], tmp_path_factory.mktemp("live"))
    return list(zip(CASES, problems, trajs, results))


def test_problem_is_json_and_holds_kc_fit_starts_and_grid():
    start, _ = STUDENTS["mixture_2"]
    p = problem(TEACHER, start, "jsd", steps=10, lr=0.1, inits=5, seed=7, beta=0.3)
    assert json.loads(json.dumps(p)) == p
    traj = kc.fit(TEACHER, start, "jsd", steps=0, lr=0.1, inits=5, seed=7, beta=0.3)
    assert np.array_equal(np.array(p["starts"]), traj.params[0])
    assert p["objective"] == {"kind": "jsd", "params": {"beta": 0.3}, "direction": None}
    assert p["optimizer"] == {"name": "adam", "lr": 0.1, "b1": 0.9, "b2": 0.999, "eps": 1e-8}
    assert p["family"]["param_names"] == GaussianMixture1D(2).param_names
    x, w = np.array(p["grid"]["x"]), np.array(p["grid"]["w"])
    assert x.size == p["grid"]["n"] == 2048 and math.isclose(w.sum(), x[-1] - x[0], rel_tol=1e-12)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(objective="akl"), "discrete"),
        (dict(objective="nope"), "unknown divergence kind"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(steps=-1), "steps"),
        (dict(inits=0), "inits"),
        (dict(student=kc.GaussianMixture([1] * 5, [0, 1, 2, 3, 4], [1] * 5)), "1 to 4 components"),
        (dict(teacher=kc.Gaussian([0.0, 0.0], cov=[[1.0, 0.0], [0.0, 1.0]])), "1-D"),
    ],
)
def test_problem_rejects_bad_arguments(bad, message):
    args = dict(teacher=TEACHER, student=kc.Gaussian(0.0, 1.0), objective="reverse_kl", steps=5, inits=2)
    args.update(bad)
    teacher, student, objective = args.pop("teacher"), args.pop("student"), args.pop("objective")
    with pytest.raises(ValueError, match=message):
        problem(teacher, student, objective, **args)


@pytest.mark.parametrize(
    "index", range(len(CASES)), ids=[f"{k}-{'-'.join(map(str, p.values()))}-{s}" for k, p, s in CASES]
)
def test_engine_matches_kc_fit_at_every_step(fits, index):
    (kind, _, _), _, traj, result = fits[index]
    params, loss = np.array(result["params"]), np.array(result["loss"])
    assert params.shape == traj.params.shape == (STEPS + 1, INITS, traj.params.shape[-1])
    assert loss.shape == traj.loss.shape
    err = rel_err(params, traj.params).max(axis=(1, 2))  # worst parameter of any start, per step
    assert err[0] == 0.0  # the starts are the problem's, bit for bit
    assert err[1] <= 1e-9
    horizon = TV_HORIZON if kind == "tv" else STEPS
    assert err[: horizon + 1].max() <= 1e-6, f"worst step {int(err.argmax())}: {err.max():.2e}"
    assert rel_err(loss[: horizon + 1], traj.loss[: horizon + 1]).max() <= 1e-6


def test_tv_is_chaotic_in_kl_core_itself():
    """Why tv has a horizon: kc.fit against kc.fit from a start one rounding error away."""
    start, learn = STUDENTS["mixture_2"]
    args = dict(steps=STEPS, lr=0.05, inits=INITS, seed=3, learn=learn)
    a = kc.fit(TEACHER, start, "tv", **args)
    nudged = kc.GaussianMixture([1, 1], [-1.0, np.nextafter(1.0, 2.0)], [1.0, 1.0])
    b = kc.fit(TEACHER, nudged, "tv", **args)
    err = rel_err(a.params, b.params).max(axis=(1, 2))
    assert err[TV_HORIZON] < 1e-6 < err[STEPS]


def test_engine_grid_matches_kc_fit_grid(tmp_path):
    """The widget rebuilds the grid in the browser when the teacher moves: same rule as kc.fit."""
    teachers = [TEACHER, kc.Gaussian(0.5, 2.0), kc.GaussianMixture([1, 1], [-3.0, 3.0], [0.2, 1.0])]
    problems = [problem(t, kc.Gaussian(1.0, 0.5), "reverse_kl", steps=1, inits=6, seed=1) for t in teachers]
    for p, r, t in zip(problems, run_node([{"task": "grid", "problem": p} for p in problems], tmp_path), teachers):
        assert len(r["x"]) == p["grid"]["n"]
        assert rel_err(r["box"], p["grid"]["box"]).max() <= 1e-14
        assert rel_err(r["x"], p["grid"]["x"]).max() <= 1e-13
        assert rel_err(r["w"], p["grid"]["w"]).max() <= 1e-12
        assert rel_err(r["lp"], t.log_prob(np.array(p["grid"]["x"]))).max() <= 1e-13


MC_CASES = [  # (kind, params, student, estimator settings)
    ("forward_kl", {}, kc.Gaussian(1.0, 1.5), dict(sampler="teacher")),
    ("forward_kl", {}, kc.GaussianMixture([1, 1], [-1.0, 1.0], [1.0, 1.0]), dict(sampler="teacher")),
    ("skew_forward_kl", {"alpha": 0.1}, kc.Gaussian(1.0, 1.5), dict(sampler="teacher")),
    ("reverse_kl", {}, kc.Gaussian(1.0, 1.5), dict(sampler="student", gradient="pathwise")),
    ("reverse_kl", {}, kc.Gaussian(1.0, 1.5), dict(sampler="student", gradient="score")),
    (
        "reverse_kl",
        {},
        kc.GaussianMixture([1, 2], [-1.0, 1.0], [1.0, 0.8]),
        dict(sampler="student", gradient="pathwise"),
    ),
    ("reverse_kl", {}, kc.GaussianMixture([1, 2], [-1.0, 1.0], [1.0, 0.8]), dict(sampler="student", gradient="score")),
    ("jsd", {"beta": 0.5}, kc.Gaussian(1.0, 1.5), dict(sampler="student", gradient="pathwise")),
    # alpha with a mixture student and REINFORCE is heavy-tailed (one draw in thousands moves the mean by
    # 3 standard errors, seen with 20000 draws in kl_core too): its Gaussian case is tested here
    ("alpha", {"alpha": 0.5}, kc.Gaussian(1.0, 1.5), dict(sampler="student", gradient="score")),
]


def test_monte_carlo_gradients_are_unbiased(tmp_path):
    """Mean of 4000 engine draws (n = 64 samples each) within 4 standard errors of kl_core's exact gradient.

    The engine has its own generator (seeded, not numpy's stream), so its Monte-Carlo steps cannot
    equal kc.fit's; what must hold is that their expectation is the exact gradient.
    """
    tasks, oracles = [], []
    for kind, par, student, est in MC_CASES:
        p = problem(TEACHER, student, kind, steps=1, inits=3, seed=5, estimator="mc", n=64, **est, **par)
        tasks.append({"task": "mc", "problem": p, "draws": 4000, "seed": 11})
        k, kpar = resolve(kind, par)
        x, w = np.array(p["grid"]["x"]), np.array(p["grid"]["w"])
        prob = _Problem(k, kpar, TEACHER, GaussianMixture1D(student.n_components), x, w, TEACHER.log_prob(x))
        oracles.append(prob.exact(np.array(p["starts"]))[1].ravel())
    for (kind, _, _, est), r, exact in zip(MC_CASES, run_node(tasks, tmp_path), oracles):
        mean, se = np.array(r["mean"]), np.array(r["se"])
        assert np.all(se > 0)
        z = np.abs(mean - exact) / se
        assert z.max() <= 4.0, f"{kind} {est}: z = {np.round(z, 2).tolist()}"
        assert rel_err(r["exact"], exact).max() <= 1e-12  # the engine's own exact gradient, too


MINIMA_TEACHERS = [
    kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0]),
    TEACHER,
    kc.GaussianMixture([0.6, 0.4], [-2.0, 2.5], [0.5, 1.5]),
    kc.Gaussian(1.0, 2.0),
]


@pytest.mark.parametrize("n", [120, 80])  # kc.landscape's default grid; the widget's coarser one
def test_minima_match_kc_landscape(tmp_path, n):
    tasks, expected = [], []
    for t in MINIMA_TEACHERS:
        for kind in ("forward_kl", "reverse_kl"):
            tasks.append(
                {
                    "task": "minima",
                    "teacher": problem(t, kc.Gaussian(0.0, 1.0), kind, steps=0)["teacher"],
                    "objective": kind,
                    "n": n,
                }
            )
            expected.append(kc.landscape(t, kind).minima)
    for task, got, want in zip(tasks, run_node(tasks, tmp_path), expected):
        assert len(got) == len(want), (task["objective"], got, want)
        for m in want:  # tied minima (a symmetric teacher) come in either order: pair each with the nearest
            g = min(got, key=lambda g: abs(g["mean"] - m.mean) + abs(g["std"] - m.std))
            assert abs(g["mean"] - m.mean) <= 1e-3 and abs(g["std"] - m.std) <= 1e-3, (g, m)
            assert abs(g["value"] - m.value) <= 1e-3 * max(1.0, abs(m.value))
            assert g["isGlobal"] == m.is_global


BIMODAL = kc.PRESETS["bimodal"].teacher
MIX2 = kc.GaussianMixture([1, 2], [-1.0, 1.0], [1.0, 0.8])  # not symmetric: a mirror-image start sits on a
# saddle of the weight logits, where Adam turns rounding noise into steps (as for tv above)
DROP_CASES = [  # (teacher, start 0, alpha, seed): alpha outside [0, 1] drops starts, at the start and later
    (BIMODAL, kc.PRESETS["bimodal"].student, -0.5, 1),  # too wide at the start, and two that widen later
    (BIMODAL, MIX2, -0.5, 0),  # a mixture whose components widen past the limit at steps 11, 12 and 182
    (TEACHER, MIX2, 2.0, 1),  # too narrow at the start
]
DROP_STEPS = 200


def test_engine_drops_the_starts_kc_fit_drops():
    """kc.fit freezes and names the starts whose objective is infinite at the start or becomes so
    (Trajectory.dropped / reasons / drop_note): the engine drops the same starts at the same steps, in
    the same words, and the others train exactly as in kc.fit."""
    import tempfile

    args = dict(steps=DROP_STEPS, lr=0.05, inits=8)
    problems = [problem(t, s, "alpha", alpha=a, seed=seed, **args) for t, s, a, seed in DROP_CASES]
    trajs = [kc.fit(t, s, "alpha", alpha=a, seed=seed, **args) for t, s, a, seed in DROP_CASES]
    with tempfile.TemporaryDirectory() as tmp:
        results = run_node([{"task": "fit", "problem": p} for p in problems], Path(tmp))
    reasons = set()
    for traj, r in zip(trajs, results):
        assert 0 < traj.dropped.sum() < traj.inits  # the case drops some starts, not all
        assert r["dropped"] == traj.dropped.tolist()
        assert tuple(r["reasons"]) == traj.reasons and r["note"] == traj.drop_note()
        params, loss = np.array(r["params"], float), np.array(r["loss"], float)
        assert rel_err(params, traj.params).max() <= 1e-6  # dropped starts frozen where kc.fit froze them
        assert np.array_equal(np.isinf(loss), np.isinf(traj.loss))  # an infinite start keeps loss inf
        finite = np.isfinite(traj.loss)
        assert rel_err(loss[finite], traj.loss[finite]).max() <= 1e-6
        reasons.update(x.split(" (")[0].rsplit(" at step", 1)[0] for x in traj.reasons if x)
    assert reasons == {"alpha is infinite at the start", "alpha became infinite"}  # both kinds were checked


def test_engine_refuses_a_fit_whose_every_start_is_infinite(tmp_path):
    """kc.fit's ValueError, word for word, when no start is left (alpha = -0.5, a student too wide)."""
    p = problem(BIMODAL, kc.Gaussian(2.0, 1.0), "alpha", alpha=-0.5, steps=3, inits=1)
    p["starts"] = [[2.0, math.log(2.0)]]  # std 2: variance 4 >= 3 x the teacher's, infinite for alpha = -0.5
    with pytest.raises(ValueError) as err:
        kc.fit(BIMODAL, kc.Gaussian(2.0, 2.0), "alpha", alpha=-0.5, steps=3, inits=1)
    src, out = tmp_path / "tasks.json", tmp_path / "results.json"
    src.write_text(json.dumps([{"task": "fit", "problem": p}]))
    subprocess.run(["node", str(RUNNER), str(src), str(out)], check=True, timeout=60)
    assert json.loads(out.read_text()) == [{"error": str(err.value)}]


def test_reasons_format_numbers_as_python_does(tmp_path):
    """The reasons quote alpha with {:g} and the std floor with {:.3g}: the engine's formatG is Python's."""
    values = [2.0, -0.5, 1.5, 1e-6, 0.0004883, 0.00048828125, 123456.0, 1234567.0, 1e16, -3e-5, 0.1, 0.0, 99.95]
    got = run_node([{"task": "format", "values": values, "digits": d} for d in (6, 3)], tmp_path)
    assert got == [[format(v, ".6g") for v in values], [format(v, ".3g") for v in values]]
