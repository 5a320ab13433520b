"""Scenario files: round trips, strict rejection of bad files, and runs identical to the app's."""

import json

import numpy as np
import pytest

import kl_core as kc
import kl_core.viz as kv
from app import export_ui, model
from app import state as schema
from kl_core.scenario import MAX_BYTES, RANGES, Scenario, scenario_figure, scenario_runs

SCENARIOS = [
    Scenario(),
    Scenario(preset="three_modes", student="mixture", components=3, estimator="on_policy_score", samples=64),
    Scenario(
        preset="custom",
        teacher=((0.3, -4.0, 0.5), (0.7, 2.5, 1.5), (0.2, 8.0, 0.3)),
        objectives=(("jsd", (("beta", 0.25),)), ("alpha", (("alpha", -1.5),)), ("skew_reverse_kl", (("alpha", 0.3),))),
        lr=0.01,
        steps=1500,
        inits=16,
        seed=10_000,
        frame_ms=20,
    ),
    Scenario(space="2d", preset="correlated", objectives=(("tv", ()),), steps=1000, inits=1),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_json_round_trips_to_the_same_scenario(scenario):
    text = scenario.to_json()
    assert Scenario.from_json(text) == scenario
    assert Scenario.from_json(text.encode()) == scenario
    assert Scenario.from_json(text).to_json() == text  # stable: saving a restored file changes nothing


def test_omitted_sections_take_the_defaults_and_the_preset_teacher():
    s = Scenario.from_json('{"version": 1, "preset": "far_modes"}')
    assert s.teacher == ((0.5, -6.0, 0.7), (0.5, 6.0, 0.7))  # kl_core.presets "far_modes"
    assert (s.steps, s.lr, s.inits, s.seed, s.objectives) == (400, 0.05, 8, 0, (("forward_kl", ()), ("reverse_kl", ())))
    # a kind with a parameter always names it: the app's defaults fill it in
    s = Scenario.from_json('{"version": 1, "objectives": [{"kind": "jsd"}, {"kind": "skew_forward_kl"}]}')
    assert s.objectives == (("jsd", (("beta", 0.5),)), ("skew_forward_kl", (("alpha", 0.1),)))


def test_ranges_are_the_app_controls_ranges():
    names = {"components": "k", "skew": "skew", "frame_ms": "speed", "steps_2d": "steps2d", "inits_2d": "inits2d"}
    names.update({n: n for n in ("beta", "alpha", "samples", "lr", "steps", "inits", "seed", "modes")})
    names.update({"weight": "w1", "mean": "m1", "std": "s1"})
    for key, field in names.items():
        assert RANGES[key] == (schema.FIELDS[field].low, schema.FIELDS[field].high), key


def valid() -> dict:
    return json.loads(Scenario().to_json())


def with_(path: str, value) -> str:
    """The default scenario's JSON with one entry (``a.b`` or ``a[0].b``) set to ``value``."""
    data = valid()
    node, keys = data, path.replace("[", ".").replace("]", "").split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return json.dumps(data)


BAD = [
    # (file text, words the message must contain)
    ("not json at all", "not valid JSON"),
    ("[1, 2]", "scenario must be a JSON object"),
    ('{"space": "1d"}', "version is missing"),
    (with_("version", 2), "version must be 1, got 2"),
    (with_("version", "1"), "version must be 1, got '1'"),
    (with_("version", True), "version must be 1"),
    (with_("format", "other"), "format must be 'kl-lab-scenario'"),
    (with_("comment", "hi"), "scenario has unknown key 'comment'"),
    (with_("training.momentum", 0.9), "training has unknown key 'momentum'"),
    (with_("teacher[0].skew", 1.0), "teacher[0] has unknown key 'skew'"),
    (with_("training.steps", "400"), "training.steps must be an integer in [50, 1500], got '400'"),
    (with_("training.steps", 400.5), "training.steps must be an integer"),
    (with_("training.inits", True), "training.inits must be an integer"),
    (with_("training.steps", 10), "training.steps must be in [50, 1500], got 10"),
    (with_("training.lr", 0.9), "training.lr must be in [0.005, 0.5], got 0.9"),
    (with_("training.seed", -1), "training.seed must be in [0, 10000]"),
    (with_("estimator.samples", 4096), "estimator.samples must be in [16, 2048]"),
    (with_("estimator.name", "magic"), "estimator.name must be one of exact, off_policy"),
    (with_("student.family", "flow"), "student.family must be one of gaussian"),
    (with_("student.components", 5), "student.components must be in [1, 4]"),
    (with_("animation.frame_ms", 5), "animation.frame_ms must be in [20, 400]"),
    (with_("teacher[1].std", 0.0), "teacher[1].std must be in [0.2, 4]"),
    (with_("teacher[0].mean", None), "teacher[0].mean must be a number"),
    (with_("teacher", []), "teacher must hold 1 to 6 entries, got 0"),
    (with_("teacher", [{"weight": 1, "mean": 0, "std": 1}] * 7), "teacher must hold 1 to 6 entries, got 7"),
    (with_("teacher[0].mean", -2.0), "teacher differs from preset 'bimodal'"),
    (with_("preset", "custom").replace('"teacher"', '"_t"'), "scenario has unknown key '_t'"),
    ('{"version": 1, "preset": "custom"}', "teacher is required when preset is 'custom'"),
    (with_("preset", "ring"), "preset must be one of bimodal"),
    (with_("objectives", []), "objectives must hold 1 to 8 entries"),
    (with_("objectives[0].kind", "akl"), "objectives[0].kind must be one of forward_kl"),
    (with_("objectives[0]", "forward_kl"), "objectives[0] must be a JSON object"),
    (with_("objectives[1]", {"kind": "reverse_kl", "beta": 0.5}), "objectives[1] has unknown key 'beta'"),
    (with_("objectives[1]", {"kind": "jsd", "beta": 1.5}), "objectives[1].beta must be in [0, 1], got 1.5"),
    (with_("objectives[1]", {"kind": "skew_reverse_kl", "alpha": 0.99}), "objectives[1].alpha must be in [0, 0.95]"),
    (with_("objectives[1]", {"kind": "forward_kl"}), "objectives[1] repeats forward_kl"),
    (with_("training.lr", float("nan")), "holds NaN"),
    ('{"version": 1, "space": "2d", "preset": "ring", "teacher": []}', "teacher is not used by a 2d scenario"),
    ('{"version": 1, "space": "2d", "training": {"steps": 1200}}', "training.steps must be in [50, 1000]"),
    ('{"version": 1, "space": "3d"}', "space must be one of 1d, 2d"),
    ('{"version": 1, "pad": "' + "x" * MAX_BYTES + '"}', "the limit is 65536 (64 KB)"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_files_are_rejected_naming_the_field(text, message):
    with pytest.raises(ValueError) as err:
        Scenario.from_json(text)
    assert message in str(err.value)


def test_bad_bytes_and_types():
    with pytest.raises(ValueError, match="not UTF-8"):
        Scenario.from_json(b'{"version": 1, "x": "\xff"}')
    with pytest.raises(ValueError, match="limit is 65536"):
        Scenario.from_json(b" " * (MAX_BYTES + 1))
    with pytest.raises(ValueError, match="must be JSON text"):
        Scenario.from_json(None)
    with pytest.raises(ValueError, match="nested too deeply"):
        Scenario.from_json("[" * 30_000 + "]" * 30_000)
    with pytest.raises(ValueError, match="student is not used by a 2d scenario"):
        Scenario(space="2d", preset="ring", student="mixture")


def test_a_scenario_runs_the_app_fits():
    """Same numbers as the 1-D lab's cached call, and as kl_core.fit called by hand (the oracle)."""
    s = Scenario(
        preset="unequal", objectives=(("reverse_kl", ()), ("jsd", (("beta", 0.3),))), steps=60, inits=3, seed=4
    )
    runs = scenario_runs(s)
    app_runs = model.lab_1d_runs(s.teacher, "unequal", "gaussian", 2, s.objectives, "exact", 256, 0.05, 60, 3, 4)
    preset = kc.PRESETS["unequal"]
    by_hand = kc.fit(preset.teacher, preset.student, "jsd", steps=60, lr=0.05, inits=3, seed=4, beta=0.3)
    assert [r.objective for r in runs] == ["reverse_kl", "jsd"] and runs[1].params == {"beta": 0.3}
    for run, app_run in zip(runs, app_runs):
        np.testing.assert_array_equal(run.trajectory.params, app_run.trajectory.params)
    np.testing.assert_allclose(runs[1].trajectory.params, by_hand.params, rtol=1e-12)
    np.testing.assert_allclose(runs[1].trajectory.loss, by_hand.loss, rtol=1e-12)


def test_a_2d_scenario_draws_the_2d_lab():
    s = Scenario(space="2d", preset="ring", objectives=(("reverse_kl", ()),), steps=50, inits=2, seed=1)
    fig = scenario_figure(s, n_frames=6)
    preset = kc.PRESETS["ring"]
    by_hand = kc.fit(preset.teacher, preset.student, "reverse_kl", steps=50, lr=0.05, inits=2, seed=1)
    # frames follow the movement (kl_core.viz.motion_steps, issue 10), named by their real steps
    assert [f.name for f in fig.frames] == [str(v) for v in kv.motion_steps(scenario_runs(s), 6)]
    assert fig.frames[0].name == "0" and fig.frames[-1].name == "50" and len(fig.frames) == 6
    np.testing.assert_allclose(scenario_runs(s)[0].trajectory.params, by_hand.params, rtol=1e-12)


def test_the_1d_lab_state_round_trips_through_a_scenario():
    state = dict(schema.DEFAULTS)
    state.update(preset="custom", modes=3, m3=4.5, s3=0.6, w3=0.2, student="mixture", k=3)
    state.update(beta=0.3, skew=0.25, estimator="off_policy", samples=512, steps=250, seed=42, speed=120)
    kinds = ("jsd", "skew_forward_kl", "skew_reverse_kl")
    scenario = export_ui.scenario_1d(state, kinds)
    assert scenario.teacher == ((0.5, -3.0, 1.0), (0.5, 3.0, 1.0), (0.2, 4.5, 0.6))
    fields = export_ui.apply_scenario(Scenario.from_json(scenario.to_json()))
    assert fields["objectives"] == kinds
    for name, value in fields.items():
        if name != "objectives":
            assert value == state[name], name


@pytest.mark.parametrize(
    "scenario, message",
    [
        (Scenario(space="2d", preset="ring"), "restores 1-D scenarios"),
        (
            Scenario(objectives=(("skew_forward_kl", (("alpha", 0.1),)), ("skew_reverse_kl", (("alpha", 0.2),)))),
            "one α for both skew KLs",
        ),
    ],
)
def test_scenarios_the_app_cannot_show_are_refused(scenario, message):
    with pytest.raises(ValueError, match=message):
        export_ui.apply_scenario(scenario)


HUGE = "1" + "0" * 400  # 1e400 written as digits: beyond float range
HOSTILE = [
    ('{"version": 1, "training": {"steps": ' + HUGE + "}}", "training.steps must be in [50, 1500], got an integer"),
    ('{"version": 1, "training": {"lr": ' + HUGE + "}}", "training.lr must be in [0.005, 0.5], got an integer"),
    ('{"version": 1, "training": {"inits": ' + HUGE + "}}", "training.inits must be in [1, 16]"),
    ('{"version": 1, "training": {"seed": -' + HUGE + "}}", "training.seed must be in [0, 10000]"),
    ('{"version": 1, "estimator": {"samples": ' + HUGE + "}}", "estimator.samples must be in [16, 2048]"),
    ('{"version": 1, "student": {"components": ' + HUGE + "}}", "student.components must be in [1, 4]"),
    ('{"version": 1, "animation": {"frame_ms": ' + HUGE + "}}", "animation.frame_ms must be in [20, 400]"),
    (
        '{"version": 1, "preset": "custom", "teacher": [{"weight": 1, "mean": ' + HUGE + ', "std": 1}]}',
        "teacher[0].mean must be in [-10, 10]",
    ),  # fmt: skip
    ('{"version": 1, "objectives": [{"kind": "jsd", "beta": ' + HUGE + "}]}", "objectives[0].beta must be in [0, 1]"),
    ('{"version": 1, "training": {"steps": 1' + "0" * 5000 + "}}", "more than 4300 digits"),
    (Scenario().to_json() + " " * (MAX_BYTES - len(Scenario().to_json())), "bytes of whitespace"),
    (
        '{"version": 1, "objectives": [{"kind": "jsd", "beta": 0.3}, {"kind": "jsd", "beta": 0.7}]}',
        "objectives[1] repeats jsd (beta=0.7 after beta=0.3)",
    ),
    ('{"version": 1, "preset": "' + "x" * 60_000 + '"}', "preset must be one of"),
]


@pytest.mark.parametrize("text, message", HOSTILE, ids=[m[:40] for _, m in HOSTILE])
def test_hostile_files_are_refused_with_one_short_message(text, message):
    """Never OverflowError: one ValueError naming the field, quoting at most a short piece of the value."""
    for given in (text, text.encode()):
        with pytest.raises(ValueError) as err:
            Scenario.from_json(given)
        assert message in str(err.value)
        assert len(str(err.value)) < 200, "the message echoes the hostile value"


def test_two_betas_of_one_kind_are_refused_at_construction():
    with pytest.raises(ValueError, match="objectives\\[1\\] repeats jsd"):
        Scenario(objectives=(("jsd", (("beta", 0.1),)), ("jsd", (("beta", 0.9),))))
