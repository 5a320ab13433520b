"""Tests for kl_core.viz: the numbers inside the figures, the animation wiring, the captions.

Oracles: the closed-form moment-matched Gaussian N(0, 10) for forward KL on the bimodal preset
(Bishop, PRML Sec. 10.7: forward KL to a Gaussian matches moments; the preset's variance is
1 + 3^2 = 10), the trajectories' own parameters and losses, kl_core.divergences.integrand,
kl_core.metrics, and the eigen-decomposition of a covariance for the ellipses.
"""

from __future__ import annotations

import ast
import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kl_core as kc
import kl_core.viz as kv
from kl_core.distributions import Distribution
from kl_core.divergences import integrand
from kl_core.metrics import low_density_mass
from kl_core.viz.lab1d import penalty_range
from kl_core.viz.sweeps import sweep_colors
from kl_core.viz.text import claims

STEPS = 400  # the defaults the size budget is stated for: 2 runs x 8 starts, 400 steps
JSON_BUDGET = 1_500_000  # bytes of fig.to_json() at the defaults
# curves are stored as float32 and the x grid with them: a density re-evaluated at the stored
# (rounded) x differs by ~1e-6 relative in the far tails
NEAR_F32 = dict(rtol=1e-5, atol=1e-9)


def decode(value) -> np.ndarray:
    """A plotly array as numpy: a numpy array already, or a ``{"dtype", "bdata"}`` typed array from JSON."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), value["dtype"])
    return np.asarray(value)


def traces(fig: go.Figure, role: str, **where) -> list[int]:
    """Indices of the traces whose meta has this role (and the given keys)."""
    out = []
    for k, t in enumerate(fig.data):
        meta = t.meta or {}
        if meta.get("role") == role and all(meta.get(key) == v for key, v in where.items()):
            out.append(k)
    return out


def pieces(values: np.ndarray) -> list[np.ndarray]:
    """The curves of a trace that draws several, separated by NaN gaps."""
    values = np.asarray(values, float)
    return [piece[~np.isnan(piece)] for piece in np.split(values, np.nonzero(np.isnan(values))[0] + 1)]


def drawn_values(fig: go.Figure, k: int) -> list[np.ndarray]:
    """Trace ``k``'s y in the initial data and in every frame that sets it."""
    out = [decode(fig.data[k].y)]
    for fr in fig.frames:
        if k in list(fr.traces or []):
            out.append(decode(fr.data[list(fr.traces).index(k)].y))
    return out


def density_peak(fig: go.Figure, axis: str) -> float:
    """The highest teacher or student density drawn on the layout axis ``axis`` in any frame."""
    ref = axis.replace("axis", "")
    ks = [k for k, t in enumerate(fig.data) if (t.meta or {}).get("role") in ("teacher", "student") and t.yaxis == ref]
    return max(float(np.nanmax(v)) for k in ks for v in drawn_values(fig, k))


def frame_value(fig: go.Figure, frame: int, trace_index: int, axis: str = "y") -> np.ndarray:
    """The ``axis`` array that frame ``frame`` sets on trace ``trace_index``."""
    fr = fig.frames[frame]
    return decode(getattr(fr.data[list(fr.traces).index(trace_index)], axis))


# ----------------------------------------------------------------------------------------------
# Shared fits and figures (built once: the fits dominate the runtime)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bimodal():
    return kc.get_preset("bimodal")


@pytest.fixture(scope="module")
def runs(bimodal):
    return [
        kv.Run(o, {}, kc.fit(bimodal.teacher, bimodal.student, o, steps=STEPS, lr=0.05, inits=8, seed=0))
        for o in ("forward_kl", "reverse_kl")
    ]


@pytest.fixture(scope="module")
def fig1d(bimodal, runs):
    return kv.animation_1d(bimodal.teacher, runs)


@pytest.fixture(scope="module")
def correlated_run():
    p = kc.get_preset("correlated")
    traj = kc.fit(p.teacher, p.student, "reverse_kl", steps=20, lr=0.05, inits=2, seed=0, learn=("mean", "std"))
    return p.teacher, kv.Run("reverse_kl", {}, traj)


@pytest.fixture(scope="module")
def landscapes(bimodal):
    return [kc.landscape(bimodal.teacher, o, n=60) for o in ("forward_kl", "reverse_kl")]


@pytest.fixture(scope="module")
def jsd_fits(bimodal):
    betas = (0.0, 0.25, 0.5, 0.75, 1.0)
    return [
        (b, kc.fit(bimodal.teacher, bimodal.student, "jsd", steps=200, lr=0.05, inits=2, seed=0, beta=b)) for b in betas
    ]


@pytest.fixture(scope="module")
def sweep_fig(bimodal, jsd_fits):
    return kv.sweep_figure(bimodal.teacher, jsd_fits, "beta")


@pytest.fixture(scope="module")
def correlated_summaries(correlated_run):
    teacher, run = correlated_run
    return kv.run_summaries(teacher, run)  # 2-D summaries take ~0.5 s each: computed once


@pytest.fixture(scope="module")
def capacity_fits(bimodal):
    def start(k: int) -> Distribution:
        return kc.Gaussian(0.3, 1.0) if k == 1 else kc.GaussianMixture([1.0, 1.0], [-0.7, 1.3], [1.0, 1.0])

    return {
        o: [(k, kc.fit(bimodal.teacher, start(k), o, steps=300, lr=0.05, inits=3, seed=0)) for k in (1, 2)]
        for o in ("forward_kl", "reverse_kl")
    }


@pytest.fixture(scope="module")
def capacity_fig(bimodal, capacity_fits):
    return kv.capacity_figure(bimodal.teacher, capacity_fits)


# ----------------------------------------------------------------------------------------------
# colors.py
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role, hex_color",
    [("teacher", "#999999"), ("forward_kl", "#0072B2"), ("reverse_kl", "#D55E00"), ("jsd", "#009E73")],
)
def test_color_for_roles(role, hex_color):
    assert kv.color_for(role) == hex_color


def test_role_colors_are_distinct_and_never_black_or_white():
    colors = [c.upper() for c in kv.ROLE_COLORS.values()]
    assert len(set(colors)) == len(colors)
    assert not {"#000000", "#FFFFFF"} & set(colors)


def test_color_for_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="forward_kl.*reverse_kl"):
        kv.color_for("kl")


@pytest.mark.parametrize(
    "kind, params, label",
    [
        ("forward_kl", {}, "forward KL"),
        ("reverse_kl", {}, "reverse KL"),
        ("jsd", {"beta": 0.5}, "JSD (β=0.5)"),
        ("jsd", {}, "JSD (β=0.5)"),  # the default is filled in
        ("alpha", {"alpha": 0.5}, "α-divergence (α=0.5)"),
        ("alpha", {"alpha": -1.0}, "α-divergence (α=-1)"),
        ("skew_forward_kl", {"alpha": 0.1}, "skew forward KL (α=0.1)"),
        ("skew_reverse_kl", {"alpha": 0.1}, "skew reverse KL (α=0.1)"),
        ("tv", {}, "total variation"),
        ("akl", {"mu": 0.5}, "AKL (μ=0.5)"),
    ],
)
def test_label_for(kind, params, label):
    assert kv.label_for(kind, params) == label


@pytest.mark.parametrize(
    "args, expected",
    [
        (("#0072B2", 0.25), "rgba(0,114,178,0.25)"),  # 0x00, 0x72, 0xB2
        (("#999", 1.0), "rgba(153,153,153,1)"),  # #RGB shorthand
    ],
)
def test_rgba(args, expected):
    assert kv.rgba(*args) == expected


def test_rgba_rejects_bad_input():
    with pytest.raises(ValueError, match="colour"):
        kv.rgba("blue", 0.5)
    with pytest.raises(ValueError, match="alpha"):
        kv.rgba("#0072B2", 1.5)


def test_mix_endpoints_and_midpoint():
    forward, reverse = kv.color_for("forward_kl"), kv.color_for("reverse_kl")
    assert kv.mix(forward, reverse, 0.0) == forward
    assert kv.mix(forward, reverse, 1.0) == reverse
    # by hand: (0+213)/2 = 106.5 -> 106 (round half to even), (114+94)/2 = 104, (178+0)/2 = 89
    assert kv.mix(forward, reverse, 0.5) == "#6A6859"


# ----------------------------------------------------------------------------------------------
# runs.py
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps, n_frames, expected",
    [(400, 5, [0, 100, 200, 300, 400]), (3, 60, [0, 1, 2, 3]), (0, 5, [0]), (10, 2, [0, 10]), (7, 3, [0, 4, 7])],
)
def test_frame_steps_table(steps, n_frames, expected):
    assert kv.frame_steps(steps, n_frames).tolist() == expected


@given(st.integers(0, 5000), st.integers(2, 300))
def test_frame_steps_properties(steps, n_frames):
    f = kv.frame_steps(steps, n_frames)
    assert f[0] == 0 and f[-1] == steps
    assert np.all(np.diff(f) > 0)  # sorted and unique
    assert len(f) == min(n_frames, steps + 1)


@pytest.mark.parametrize("n_frames", [1, 0, 2.5, True])
def test_frame_steps_rejects_bad_n_frames(n_frames):
    with pytest.raises(ValueError, match="n_frames"):
        kv.frame_steps(10, n_frames)


def test_run_color_and_label(runs):
    forward, _ = runs
    assert forward.color == "#0072B2"
    assert forward.display_label == "forward KL"
    assert kv.Run("forward_kl", {}, forward.trajectory, label="FKL").display_label == "FKL"
    with pytest.raises(ValueError, match="unknown"):
        kv.Run("kl", {}, forward.trajectory)


# ----------------------------------------------------------------------------------------------
# animation_1d
# ----------------------------------------------------------------------------------------------


def test_animation_1d_forward_student_is_moment_matched(fig1d, runs):
    k = traces(fig1d, "student", run=0, start=0)[0]
    x, y = decode(fig1d.data[k].x).astype(float), decode(fig1d.data[k].y)
    oracle = np.exp(-0.5 * x**2 / 10.0) / math.sqrt(2 * math.pi * 10.0)  # N(0, sqrt(10))
    np.testing.assert_allclose(y, oracle, atol=2e-4)
    np.testing.assert_allclose(y, runs[0].trajectory.final[0].prob(x), **NEAR_F32)  # the fit itself


def test_animation_1d_frames_and_controls(fig1d, runs):
    expected = kv.motion_steps(runs, 60)  # frames follow the movement (issue 10), named by the real step
    assert [f.name for f in fig1d.frames] == [str(s) for s in expected]
    slider = fig1d.layout.sliders[0]
    assert slider.active == len(expected) - 1
    assert [s.label for s in slider.steps] == [str(s) for s in expected]
    assert [list(s.args[0]) for s in slider.steps] == [[str(s)] for s in expected]
    assert slider.currentvalue.prefix == "step "
    buttons = {b.label: b for menu in fig1d.layout.updatemenus for b in menu.buttons}
    assert {"Play", "Pause", "0.5×", "1×", "2×"} <= set(buttons)
    # speed buttons play at 2x, 1x and 0.5x the base frame duration; nothing redraws the layout
    durations = {label: buttons[label].args[1]["frame"]["duration"] for label in ("0.5×", "1×", "2×")}
    assert durations == {"0.5×": 160, "1×": 80, "2×": 40}
    assert all(b.args[1]["frame"]["redraw"] is False for b in buttons.values())


def test_animation_1d_initial_data_is_the_last_frame(fig1d, runs):
    last = len(fig1d.frames) - 1
    for k in fig1d.frames[last].traces:
        np.testing.assert_array_equal(decode(fig1d.data[k].y), frame_value(fig1d, last, k))
    # and the first frame holds the starting students
    for c, run in enumerate(runs):
        k = traces(fig1d, "student", run=c, start=0)[0]
        x = decode(fig1d.data[k].x).astype(float)
        np.testing.assert_allclose(frame_value(fig1d, 0, k), run.trajectory.student(0, 0).prob(x), **NEAR_F32)


def test_animation_1d_integrand_row(fig1d, bimodal, runs):
    for c, run in enumerate(runs):
        k = traces(fig1d, "integrand", run=c)[0]
        x = decode(fig1d.data[k].x).astype(float)
        student = run.trajectory.final[0]
        expected = integrand(run.objective, bimodal.teacher.log_prob(x), student.log_prob(x))
        np.testing.assert_allclose(decode(fig1d.data[k].y), expected, rtol=1e-5, atol=1e-7)
        # its area is the divergence itself (trapezoid on the 200-point grid)
        area = np.trapezoid(decode(fig1d.data[k].y).astype(float), x)
        assert area == pytest.approx(kc.divergence(bimodal.teacher, student, run.objective), abs=5e-3)


def test_animation_1d_loss_row(fig1d, runs):
    for c, run in enumerate(runs):
        marker = traces(fig1d, "loss_marker", run=c)[0]
        np.testing.assert_allclose(decode(fig1d.data[marker].y), run.trajectory.loss[-1], rtol=1e-6)
        np.testing.assert_array_equal(decode(fig1d.data[marker].x), np.full(8, STEPS))
        assert frame_value(fig1d, 0, marker, "x").tolist() == [0.0] * 8
        (first,) = traces(fig1d, "loss", run=c, start=0)
        np.testing.assert_allclose(decode(fig1d.data[first].y), run.trajectory.loss[:, 0], rtol=1e-6)
        (others,) = traces(fig1d, "loss", run=c, starts=list(range(1, 8)))  # one trace, NaN gaps
        ys, xs = pieces(decode(fig1d.data[others].y)), pieces(decode(fig1d.data[others].x))
        assert len(ys) == len(xs) == 7
        for i, (x, y) in enumerate(zip(xs, ys), start=1):
            np.testing.assert_array_equal(x, np.arange(STEPS + 1))
            np.testing.assert_allclose(y, run.trajectory.loss[:, i], rtol=1e-6)


def test_animation_1d_other_starts_share_one_trace(fig1d, runs):
    """Starts 1..7 are one faint trace per run, a curve per start between NaN gaps, in every frame."""
    for c, run in enumerate(runs):
        (k,) = traces(fig1d, "student", run=c, starts=list(range(1, 8)))
        t = fig1d.data[k]
        xs = pieces(decode(t.x))
        assert len(xs) == 7 and all(np.array_equal(x, xs[0]) for x in xs)
        x = xs[0].astype(float)
        labels = decode(t.customdata)  # the hover names each point's start
        assert labels.size == decode(t.y).size and np.isin(labels, np.arange(1, 8)).all()
        for f, step in ((0, 0), (len(fig1d.frames) - 1, STEPS)):
            drawn = pieces(frame_value(fig1d, f, k))
            assert len(drawn) == 7
            for i, y in enumerate(drawn, start=1):
                np.testing.assert_allclose(y, run.trajectory.student(step, i).prob(x), **NEAR_F32)
        (first,) = traces(fig1d, "student", run=c, start=0)
        assert k in fig1d.frames[0].traces and t.line.width < fig1d.data[first].line.width


def test_animation_1d_colours_and_legend(fig1d):
    for c, color in enumerate(("#0072B2", "#D55E00")):
        assert fig1d.data[traces(fig1d, "student", run=c, start=0)[0]].line.color == color
        assert fig1d.data[traces(fig1d, "student", run=c, starts=list(range(1, 8)))[0]].line.color.startswith("rgba(")
    teacher = fig1d.data[traces(fig1d, "teacher")[0]]
    assert teacher.line.color == "#999999" and teacher.fill == "tozeroy"
    legend = [t.name for t in fig1d.data if t.showlegend is not False]
    assert legend == ["teacher", "forward KL", "reverse KL"]  # each once, not once per start


def test_animation_1d_axes_are_fixed_and_hold_every_curve(fig1d, bimodal):
    # issue 10: the axis used to stop at 1.6x the teacher's peak and cut off the tall reverse-KL student
    for axis in ("yaxis", "yaxis2"):  # row 1 of both columns
        low, high = fig1d.layout[axis].range
        assert low == 0.0 and high == pytest.approx(1.05 * density_peak(fig1d, axis), rel=1e-6)
    assert fig1d.layout.xaxis3.title.text == "x" and fig1d.layout.yaxis.title.text == "density"  # row 2 names x
    assert fig1d.layout.yaxis5.title.text == "loss (nats)"
    # the fitted integrand is inside its axis, which spans no more than the values of all frames
    for c, axis in enumerate(("yaxis3", "yaxis4")):
        k = traces(fig1d, "integrand", run=c)[0]
        low, high = fig1d.layout[axis].range
        last = decode(fig1d.data[k].y)
        every = np.concatenate([frame_value(fig1d, f, k) for f in range(len(fig1d.frames))])
        pad = 0.05 * (high - low) / 1.1
        assert low <= min(last.min(), 0.0) and last.max() <= high
        assert low >= min(every.min(), 0.0) - pad - 1e-6 and high <= every.max() + pad + 1e-6  # float32 rounding


@pytest.mark.parametrize(
    "first, last, expected",
    [
        ([0.0, 1.0], [0.0, 1.0], [-0.05, 1.05]),  # the whole range fits: nothing is cut
        ([0.0, 40.0], [0.0, 1.0], [-0.2, 4.2]),  # capped at 4x the last frame's peak
        ([0.0, 40.0], [0.0, 0.0], [-0.2, 4.2]),  # a flat last frame: floor at 10% of the peak
        ([-2.0, 40.0], [-0.1, 1.0], [-0.4 - 0.22, 4.0 + 0.22]),  # the same on the negative side
    ],
)
def test_penalty_range(first, last, expected):
    np.testing.assert_allclose(penalty_range(np.array([first, last])), expected)


def test_animation_1d_json_size_and_typed_arrays(fig1d):
    text = fig1d.to_json()
    assert len(text) <= JSON_BUDGET
    data = json.loads(text)
    k = traces(fig1d, "student", run=0, start=0)[0]
    encoded = data["data"][k]["y"]
    assert encoded["dtype"] == "f4"  # float32 base64, not a list of decimal strings
    np.testing.assert_array_equal(decode(encoded), decode(fig1d.data[k].y))


def test_animation_1d_rejects_a_2d_teacher(correlated_run):
    teacher, run = correlated_run
    with pytest.raises(ValueError, match="1-D"):
        kv.animation_1d(teacher, [run])


# ----------------------------------------------------------------------------------------------
# animation_2d
# ----------------------------------------------------------------------------------------------


def test_animation_2d_ellipse_semi_axes_are_eigenvalues():
    teacher = kc.get_preset("correlated").teacher
    mean, cov = np.array([0.5, -0.5]), np.array([[2.0, 0.6], [0.6, 1.0]])
    traj = kc.fit(teacher, kc.Gaussian(mean=mean, cov=cov), "forward_kl", steps=0)
    fig = kv.animation_2d(teacher, [kv.Run("forward_kl", {}, traj)])
    eig = np.linalg.eigvalsh(cov)
    prec = np.linalg.inv(cov)
    for sigma in (1.0, 2.0):
        k = traces(fig, "ellipse", run=0, start=0, sigma=sigma)[0]
        pts = np.stack([decode(fig.data[k].x), decode(fig.data[k].y)], -1).astype(float) - mean
        radius = np.linalg.norm(pts, axis=1)
        assert radius.max() == pytest.approx(sigma * math.sqrt(eig[1]), rel=1e-5)
        assert radius.min() == pytest.approx(sigma * math.sqrt(eig[0]), rel=1e-5)
        mahalanobis = np.einsum("ni,ij,nj->n", pts, prec, pts)
        np.testing.assert_allclose(mahalanobis, sigma**2, rtol=1e-5)
    assert [f.name for f in fig.frames] == ["0"]


def test_animation_2d_frames_follow_the_trajectory(correlated_run):
    teacher, run = correlated_run
    fig = kv.animation_2d(teacher, [run], n_frames=5)
    steps = kv.motion_steps([run], 5)
    assert [f.name for f in fig.frames] == [str(s) for s in steps]
    assert fig.layout.sliders[0].active == 4
    assert fig.layout.yaxis.scaleanchor == "x"  # equal aspect
    k = traces(fig, "ellipse", run=0, starts=[1], sigma=1.0)[0]  # the other starts' trace: here start 1 only
    for f, step in enumerate(steps):
        xs = frame_value(fig, f, k, "x").astype(float)
        centre = (xs.max() + xs.min()) / 2.0  # an ellipse is symmetric about its mean
        assert centre == pytest.approx(run.trajectory.student(step, 1).mean[0], abs=1e-4)
    assert fig.data[k].line.color == kv.rgba("#D55E00", 0.75)  # FAINT_ALPHA: readable on a dark page
    assert fig.data[traces(fig, "ellipse", run=0, start=0, sigma=1.0)[0]].line.width == 3


def test_animation_2d_mixture_student_draws_every_component():
    teacher = kc.get_preset("three_clusters").teacher
    student = kc.GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], covs=[np.eye(2), 0.25 * np.eye(2)])
    traj = kc.fit(teacher, student, "reverse_kl", steps=0)
    fig = kv.animation_2d(teacher, [kv.Run("reverse_kl", {}, traj)])
    k = traces(fig, "ellipse", run=0, start=0, sigma=1.0)[0]
    xs = decode(fig.data[k].x).astype(float)
    assert np.isnan(xs).sum() == 1  # two closed outlines, one gap
    first, second = np.split(xs, np.flatnonzero(np.isnan(xs)))
    assert (first.max() - first.min()) / 2 == pytest.approx(1.0, rel=1e-5)  # std 1
    assert (np.nanmax(second) - np.nanmin(second)) / 2 == pytest.approx(0.5, rel=1e-5)  # std 0.5


def test_animation_2d_draws_every_start_in_four_traces_per_run():
    """Start 0's 1σ and 2σ outlines, and every other start's in ONE NaN-broken trace per σ (not one per start:
    plotly's cost grows with the traces); each piece is that start's :func:`ellipse`, in the initial data and
    in every frame, and the hover names its start (customdata)."""
    teacher = kc.get_preset("three_clusters").teacher
    mixture = kc.GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], covs=[np.eye(2), 0.25 * np.eye(2)])
    runs = [
        kv.Run("reverse_kl", {}, kc.fit(teacher, kc.Gaussian(mean=[0.0, 0.0]), "reverse_kl", steps=8, inits=3)),
        kv.Run("forward_kl", {}, kc.fit(teacher, mixture, "forward_kl", steps=8, inits=3, seed=1)),
    ]
    fig = kv.animation_2d(teacher, runs, n_frames=3)
    steps = kv.motion_steps(runs, 3)
    assert len(fig.data) == len(runs) * 5  # the teacher's contours and four outline traces per run
    assert fig.layout.yaxis2.range == fig.layout.yaxis.range and fig.layout.yaxis2.showticklabels is False
    for c, run in enumerate(runs):
        assert len(traces(fig, "ellipse", run=c)) == 4
        for sigma in (1.0, 2.0):
            (first,) = traces(fig, "ellipse", run=c, start=0, sigma=sigma)
            (rest,) = traces(fig, "ellipse", run=c, starts=[1, 2], sigma=sigma)
            assert fig.data[rest].hovertemplate.startswith("start %{customdata}")
            x_rest = decode(fig.data[rest].x).astype(float)
            labels = decode(fig.data[rest].customdata)[~np.isnan(x_rest)]
            outlines = run.trajectory.student(0, 0).n_components * kv.lab2d.ELLIPSE_POINTS  # points per start
            np.testing.assert_array_equal(labels, np.repeat([1, 2], outlines))
            # (step, trace, x, y): the initial data shows the last step, then what every frame sets
            drawn = [(steps[-1], k, fig.data[k].x, fig.data[k].y) for k in (first, rest)]
            for f, t in enumerate(steps):
                drawn += [(t, k, frame_value(fig, f, k, "x"), frame_value(fig, f, k, "y")) for k in (first, rest)]
            for step, k, xs, ys in drawn:
                expected = [  # every component's outline of every start this trace draws, in order
                    kv.ellipse(m, cov, sigma)
                    for i in ([0] if k == first else [1, 2])
                    for _, means, covs in [run.trajectory.student(int(step), i).components()]
                    for m, cov in zip(means, covs)
                ]
                got = list(zip(pieces(decode(xs)), pieces(decode(ys))))
                assert len(got) == len(expected)
                for (gx, gy), want in zip(got, expected):
                    np.testing.assert_allclose(np.stack([gx, gy], -1), want, rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# landscape_figure
# ----------------------------------------------------------------------------------------------


def test_landscape_heatmap_is_clipped_values(landscapes):
    fig = kv.landscape_figure(landscapes)
    for c, land in enumerate(landscapes):
        heat = fig.data[traces(fig, "heatmap", column=c)[0]]
        expected = np.minimum(land.values, np.percentile(land.values, 95))
        np.testing.assert_allclose(kv.landscape.clipped_values(land), expected, rtol=1e-12)
        # the colour is log10 of the clipped height above the minimum (issue 10: see the test below)
        z = np.log10(expected - expected.min() + kv.landscape.LOG_FLOOR)
        np.testing.assert_allclose(decode(heat.z).reshape(expected.shape), z, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(decode(heat.x), land.means, rtol=1e-6)
        np.testing.assert_allclose(decode(heat.y), land.log_stds, rtol=1e-6)
        assert heat.colorbar.title.text.startswith("nats")
    assert [a.text for a in fig.layout.annotations] == ["forward KL", "reverse KL"]


def test_landscape_minima_markers(landscapes):
    fig = kv.landscape_figure(landscapes)
    land = landscapes[1]  # reverse KL: two global minima on the modes, a local one in between
    m = fig.data[traces(fig, "minima", column=1)[0]]
    np.testing.assert_allclose(m.x, [v.mean for v in land.minima])
    np.testing.assert_allclose(m.y, [math.log(v.std) for v in land.minima])
    assert list(m.marker.symbol) == ["star", "star", "diamond"]  # circles are the paths' starts
    assert "global minimum" in m.hovertext[0] and "local minimum" in m.hovertext[2]


def test_landscape_paths_are_the_trajectory(landscapes, runs):
    fig = kv.landscape_figure(landscapes, runs)
    rows = kv.frame_steps(STEPS, 200)
    for c, run in enumerate(runs):
        paths = traces(fig, "path", column=c)
        assert len(paths) == 8
        for i, k in enumerate(paths):
            np.testing.assert_allclose(decode(fig.data[k].x), run.trajectory.params[rows, i, 0], rtol=1e-6)
            np.testing.assert_allclose(decode(fig.data[k].y), run.trajectory.params[rows, i, 1], rtol=1e-6)
            assert len(decode(fig.data[k].x)) <= 200
        end = fig.data[traces(fig, "path_end", column=c)[0]]
        np.testing.assert_allclose(decode(end.x), run.trajectory.params[-1, :, 0], rtol=1e-6)
        assert fig.data[paths[0]].line.color == run.color


def test_landscape_needs_one_run_per_landscape(landscapes, runs):
    with pytest.raises(ValueError, match="Length mismatch"):
        kv.landscape_figure(landscapes, runs[:1])


# ----------------------------------------------------------------------------------------------
# sweep_figure
# ----------------------------------------------------------------------------------------------


def test_sweep_one_frame_per_value(sweep_fig):
    fig = sweep_fig
    assert [f.name for f in fig.frames] == ["beta=0", "beta=0.25", "beta=0.5", "beta=0.75", "beta=1"]
    slider = fig.layout.sliders[0]
    assert slider.currentvalue.prefix == "beta = " and slider.active == 4
    assert [s.label for s in slider.steps] == ["0", "0.25", "0.5", "0.75", "1"]


def test_sweep_second_row_numbers(sweep_fig, bimodal, jsd_fits):
    fig = sweep_fig
    best = [traj.student(traj.steps, traj.best) for _, traj in jsd_fits]
    std = decode(fig.data[traces(fig, "std")[0]].y)
    np.testing.assert_allclose(std, [s.std for s in best], rtol=1e-6)
    ldm = decode(fig.data[traces(fig, "low_density_mass")[0]].y)
    np.testing.assert_allclose(ldm, [low_density_mass(bimodal.teacher, s) for s in best], rtol=1e-5)
    # beta = 0 is forward KL (covering, std sqrt(10)); beta = 1 reverse KL (one mode, std ~1)
    assert std[0] == pytest.approx(math.sqrt(10.0), abs=0.01) and std[-1] < 1.1


def test_sweep_colours_run_from_forward_to_reverse(sweep_fig):
    fig = sweep_fig
    student = traces(fig, "student")[0]
    colors = [fig.frames[f].data[list(fig.frames[f].traces).index(student)].line.color for f in range(5)]
    assert colors[0] == "#0072B2" and colors[-1] == "#D55E00"
    assert colors[2] == kv.mix("#0072B2", "#D55E00", 0.5)
    assert fig.data[student].line.color == "#D55E00"  # the initial data is the last value
    # the alpha-divergence runs the other way: alpha -> 1 is forward KL
    assert sweep_colors("alpha", [0.0, 1.0]) == ["#D55E00", "#0072B2"]


# ----------------------------------------------------------------------------------------------
# capacity_figure and loss_figure
# ----------------------------------------------------------------------------------------------


def test_capacity_panels_and_notes(capacity_fig, bimodal, capacity_fits):
    fig = capacity_fig
    notes = [a.text for a in fig.layout.annotations if a.text.startswith("KL")]
    assert len(notes) == 4
    for note, (_, traj) in zip(notes, [kt for o in capacity_fits for kt in capacity_fits[o]]):
        assert f"KL = {traj.final_loss[traj.best]:.3f} nats" in note
        covered = kc.summarize(bimodal.teacher, traj.student(traj.steps, traj.best)).n_modes_covered
        assert f"modes covered {covered}/2" in note
    # forward KL with one Gaussian covers both modes; reverse KL with one Gaussian covers one
    assert notes[0].endswith("2/2") and notes[2].endswith("1/2")
    # objectives are columns (titled), K the rows (issue 10: a column per K left no room for the notes)
    assert [a.text for a in fig.layout.annotations[:2]] == ["forward KL", "reverse KL"]
    assert fig.layout.yaxis.title.text == "K = 1<br>density" and fig.layout.yaxis3.title.text == "K = 2<br>density"


def test_capacity_components_add_up_to_the_mixture(capacity_fig):
    fig = capacity_fig
    student = fig.data[traces(fig, "student", row=1, K=2)[0]]
    parts = [decode(fig.data[k].y).astype(float) for k in traces(fig, "component", row=1, K=2)]
    assert len(parts) == 2
    np.testing.assert_allclose(np.sum(parts, axis=0), decode(student.y), atol=1e-6)
    assert student.line.color == "#D55E00"
    assert traces(fig, "component", row=0, K=1) == []  # a single Gaussian has no separate components


def test_loss_figure(runs):
    fig = kv.loss_figure(runs)
    assert len(fig.data) == 16
    k = traces(fig, "loss", run=1, start=5)[0]
    np.testing.assert_allclose(decode(fig.data[k].y), runs[1].trajectory.loss[:, 5], rtol=1e-6)
    assert fig.layout.xaxis.title.text == "step" and fig.layout.yaxis.title.text == "loss (nats)"
    assert [t.name for t in fig.data if t.showlegend] == ["forward KL", "reverse KL"]


# ----------------------------------------------------------------------------------------------
# Every figure: theme-neutral
# ----------------------------------------------------------------------------------------------


def test_style_layout_equals_style_on_a_figure():
    """The dict version (for figures assembled without validation) gives plotly's own result."""
    from plotly.subplots import make_subplots

    from kl_core.viz.theme import style, style_layout

    grid = make_subplots(rows=2, cols=2, subplot_titles=["a", "b", "c", "d"])
    grid.update_layout(legend={"title": {"text": "kept"}}, margin={"pad": 3})
    expected = style(go.Figure(grid), height=500, bottom=90).layout.to_plotly_json()
    got = style_layout(grid.layout.to_plotly_json(), height=500, bottom=90)
    assert json.loads(json.dumps(got)) == json.loads(go.Layout(got).to_json()) == json.loads(json.dumps(expected))


def test_typed_array_is_plotlys_own_float32_encoding():
    from kl_core.viz.theme import compact, typed_array

    values = np.array([0.0, -1.5, np.nan, 3e40, 1e-3])  # a gap and a value beyond float32
    spec = typed_array(values)
    assert spec == go.Figure(go.Scatter(y=compact(values))).to_dict()["data"][0]["y"]
    np.testing.assert_array_equal(decode(spec), compact(values))


def _colors_in(obj) -> list[str]:
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if "color" in key and isinstance(value, str):
                found.append(value)
            elif "color" in key and isinstance(value, list):
                found += [v for v in value if isinstance(v, str)]
            else:
                found += _colors_in(value)
    elif isinstance(obj, list):
        for value in obj:
            found += _colors_in(value)
    return found


def test_every_figure_has_transparent_backgrounds_and_no_pure_black_or_white(
    fig1d, sweep_fig, capacity_fig, runs, landscapes, correlated_run
):
    figures = [
        fig1d,
        kv.animation_2d(correlated_run[0], [correlated_run[1]]),
        kv.landscape_figure(landscapes, runs),
        sweep_fig,
        capacity_fig,
        kv.loss_figure(runs),
    ]
    banned = {"#000000", "#FFFFFF", "#000", "#FFF", "BLACK", "WHITE", "RGB(0,0,0)", "RGB(255,255,255)"}
    for fig in figures:
        assert fig.layout.paper_bgcolor == "rgba(0,0,0,0)" and fig.layout.plot_bgcolor == "rgba(0,0,0,0)"
        used = {c.replace(" ", "").upper() for c in _colors_in([t.to_plotly_json() for t in fig.data])}
        assert not used & banned


# ----------------------------------------------------------------------------------------------
# text.py
# ----------------------------------------------------------------------------------------------


def test_results_rows_match_summarize(bimodal, runs):
    run = runs[1]
    rows = kv.results_rows(bimodal.teacher, run)
    assert [r["start"] for r in rows] == list(range(8))
    for row, student, loss in zip(rows, run.trajectory.final, run.trajectory.final_loss):
        s = kc.summarize(bimodal.teacher, student)
        assert set(row) == {
            "start", "mean", "std", "entropy", "forward_kl", "reverse_kl", "modes_covered", "low_density_mass", "loss"
        }  # fmt: skip
        assert row["mean"] == pytest.approx(s.mean, abs=5e-4) and row["std"] == pytest.approx(s.std, abs=5e-4)
        assert row["reverse_kl"] == pytest.approx(s.reverse_kl, abs=5e-5)
        assert row["loss"] == pytest.approx(loss, abs=5e-5)
        assert row["modes_covered"] == f"{s.n_modes_covered}/2"
        assert all(isinstance(row[k], float) for k in ("mean", "std", "entropy", "forward_kl", "low_density_mass"))


def test_results_rows_2d_gives_tuples(correlated_run, correlated_summaries):
    teacher, run = correlated_run
    row = kv.results_rows(teacher, run, summaries=correlated_summaries)[0]
    assert isinstance(row["mean"], tuple) and len(row["mean"]) == 2
    np.testing.assert_allclose(row["std"], np.sqrt(np.diag(run.trajectory.final[0].cov)), atol=5e-4)
    assert row["modes_covered"] == "1/1"


def test_caption_reverse_kl_counts_add_up(bimodal, runs):
    text = kv.caption(bimodal.teacher, runs[1])
    assert text.startswith("reverse KL: ") and text.endswith(".")
    # the groups are claims (tests/test_claims.py checks their numbers): every start in exactly one
    found = claims(bimodal.teacher, runs[1])
    assert sorted(i for c in found for i in c.starts) == list(range(8))
    shares = [kc.summarize(bimodal.teacher, s) for s in runs[1].trajectory.final]
    several = [i for i, s in enumerate(shares) if s.n_modes_covered > 1]
    spread = {i for c in found if c.kind == "spread" for i in c.starts}
    moving = {i for c in found if c.kind == "moving" for i in c.starts}
    assert spread <= set(several) <= spread | moving  # start 1 (the wide minimum) still creeps: std 2.757 -> 2.743
    assert "covered only the mode at +3.0" in text and "the mode at -3.0" in text


def test_caption_forward_kl_numbers(bimodal, runs):
    text = kv.caption(bimodal.teacher, runs[0])
    # moment matching: mean 0, std sqrt(10) = 3.16; 22% of N(0, 10) lies where the teacher is < 5% of its peak.
    # Start 5 ends at (0.487, 3.237), still moving: not "all 8" (issue 10)
    assert text.startswith("forward KL: 7 of 8 starts covered 2 of 2 modes (mean 0.00, std 3.16)")
    assert "start 5 is still moving at step 400" in text
    ldm = low_density_mass(bimodal.teacher, runs[0].trajectory.final[0])
    assert f"with {100 * ldm:.0f}% of their mass" in text


def test_caption_2d_and_discrete(correlated_run, correlated_summaries):
    teacher, run = correlated_run
    text = kv.caption(teacher, run, summaries=correlated_summaries)
    assert re.search(r"mean \(-?\d+\.\d\d( to -?\d+\.\d\d)?, -?\d+\.\d\d( to -?\d+\.\d\d)?\), std \(", text)
    city = kc.get_preset("city_tokens")
    traj = kc.fit(city.teacher, city.student, "reverse_kl", steps=300, lr=0.1, inits=8, seed=0)
    text = kv.caption(city.teacher, kv.Run("reverse_kl", {}, traj))
    found = claims(city.teacher, kv.Run("reverse_kl", {}, traj))
    assert sorted(i for c in found for i in c.starts) == list(range(8)) and "cell (" in text


def test_caption_beyond_2d_falls_back_to_losses():
    teacher = kc.Gaussian(mean=[0.0, 0.0, 0.0], cov=np.eye(3))
    traj = kc.fit(teacher, kc.Gaussian(mean=[1.0, 0.0, 0.0], cov=np.eye(3)), "reverse_kl", steps=5, estimator="mc")
    run = kv.Run("reverse_kl", {}, traj)
    assert kv.caption(teacher, run) == f"reverse KL: the student reached a loss of {traj.final_loss[0]:.3f} nats."
    assert kv.results_rows(teacher, run)[0]["forward_kl"] is None


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gap=st.floats(0.5, 8.0),
    weight=st.floats(0.1, 0.9),
    objective=st.sampled_from(["forward_kl", "reverse_kl", "jsd", "tv"]),
    seed=st.integers(0, 100),
)
def test_caption_never_crashes_and_accounts_for_every_start(gap, weight, objective, seed):
    teacher = kc.GaussianMixture([weight, 1.0 - weight], [-gap / 2, gap / 2], [1.0, 0.6])
    traj = kc.fit(teacher, kc.Gaussian(0.0, 1.0), objective, steps=30, lr=0.1, inits=3, seed=seed)
    text = kv.caption(teacher, kv.Run(objective, {}, traj))
    assert text.startswith(kv.label_for(objective, {}) + ": ") and text.endswith(".")
    found = claims(teacher, kv.Run(objective, {}, traj))
    assert sorted(i for c in found for i in c.starts) == [0, 1, 2]
    assert ("all 3 starts" in text) == (len(found) == 1)


# ----------------------------------------------------------------------------------------------
# The rule: no streamlit in the library
# ----------------------------------------------------------------------------------------------


def test_kl_core_never_imports_streamlit():
    root = Path(kc.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


# ----------------------------------------------------------------------------------------------
# Issue 10: every figure shows its point (y range, frames, axes, landscape, contrast)
# ----------------------------------------------------------------------------------------------

FIVE = (("forward_kl", ()), ("reverse_kl", ()), ("jsd", ()), ("tv", ()), ("skew_forward_kl", ()))


@pytest.fixture(scope="module")
def default_1d():
    from kl_core.scenario import Scenario, scenario_runs

    scenario = Scenario(space="1d", preset="bimodal")
    return scenario, scenario_runs(scenario)


@pytest.fixture(scope="module")
def narrow_reverse():
    """Reverse KL onto a teacher with narrow modes (std 0.3): the student ends ~4x taller than the
    bimodal preset's teacher peak, which the old 1.6x cap cut off."""
    from kl_core.scenario import Scenario, scenario_figure

    scenario = Scenario(
        space="1d",
        preset="custom",
        teacher=((0.5, -3.0, 0.3), (0.5, 3.0, 0.3)),
        objectives=(("forward_kl", ()), ("reverse_kl", ())),
        steps=300,
    )
    return scenario_figure(scenario)


def _density_axes(fig: go.Figure) -> list[str]:
    return sorted({f"yaxis{t.yaxis[1:]}" for t in fig.data if (t.meta or {}).get("role") == "teacher"})


def test_density_axis_holds_every_student_in_every_frame(default_1d, narrow_reverse):
    from kl_core.viz.lab1d import animation_1d

    scenario, runs = default_1d
    teacher = kc.GaussianMixture(weights=[0.5, 0.5], means=[-3.0, 3.0], stds=[1.0, 1.0])
    figures = [animation_1d(teacher, runs, n_frames=40), narrow_reverse]
    for fig in figures:
        axes = _density_axes(fig)
        assert len(axes) == 2
        peak = max(density_peak(fig, axis) for axis in axes)  # the columns share one scale
        for axis in axes:
            low, high = fig.layout[axis].range
            assert low == 0.0 and peak <= high <= 1.06 * peak  # everything in view, and no wasted air
    # the narrow case is the one the old cap (1.6 x the teacher's peak) cut off
    teacher_peak = float(np.max(decode(narrow_reverse.data[traces(narrow_reverse, "teacher")[0]].y)))
    (reverse,) = traces(narrow_reverse, "student", run=1, start=0)
    assert float(np.max(decode(narrow_reverse.data[reverse].y))) > 1.6 * teacher_peak


def _moved(run: kv.Run) -> np.ndarray:
    """Cumulative parameter movement (arc length, mean over starts) at each step, 0 .. total."""
    theta = run.trajectory.params
    per_step = np.sqrt(((theta[1:] - theta[:-1]) ** 2).sum(axis=-1)).mean(axis=-1)
    return np.concatenate([[0.0], np.cumsum(per_step)])


@pytest.mark.parametrize("preset", ["bimodal", "unequal", "three_modes", "close_modes", "far_modes", "five_modes"])
def test_frames_spread_the_motion_over_the_animation(preset):
    from kl_core.scenario import Scenario, scenario_figure, scenario_runs

    scenario = Scenario(space="1d", preset=preset)
    runs = scenario_runs(scenario)
    steps = kv.motion_steps(runs, 40)
    assert steps[0] == 0 and steps[-1] == scenario.steps and np.all(np.diff(steps) > 0) and len(steps) == 40
    first_tenth = 4  # frames 0..4: the first 10% of 40 frames
    for run in runs:
        moved = _moved(run)
        total = moved[-1]
        # with motion_steps the first 10% of frames hold at most a quarter of the movement, no frame over 12%
        assert moved[steps[first_tenth]] / total <= 0.25, run.objective
        assert np.diff(moved[steps]).max() / total <= 0.12, run.objective
    # evenly spaced frames (the old choice) put most of it there: the test above can fail
    even = kv.frame_steps(scenario.steps, 40)
    assert max(_moved(run)[even[first_tenth]] / _moved(run)[-1] for run in runs) > 0.5
    # every frame is named by its real step: the slider says it, and the loss marker stands on it
    fig = scenario_figure(scenario)
    assert [f.name for f in fig.frames] == [str(s) for s in steps]
    assert [s.label for s in fig.layout.sliders[0].steps] == [str(s) for s in steps]
    marker = traces(fig, "loss_marker", run=0)[0]
    for f, step in enumerate(steps):
        assert set(frame_value(fig, f, marker, "x").tolist()) == {float(step)}


def test_motion_steps_small_cases():
    p = kc.get_preset("bimodal")
    short = kv.Run("reverse_kl", {}, kc.fit(p.teacher, p.student, "reverse_kl", steps=3, inits=1))
    assert kv.motion_steps([short], 60).tolist() == [0, 1, 2, 3]  # fewer steps than frames: every step
    still = kv.Run("reverse_kl", {}, kc.fit(p.teacher, p.student, "reverse_kl", steps=10, lr=0.005, inits=1))
    steps = kv.motion_steps([still], 5)
    assert steps[0] == 0 and steps[-1] == 10 and len(steps) == 5


def test_five_objectives_get_one_row_each_with_its_label(default_1d):
    from kl_core.scenario import scenario_figure

    scenario, _ = default_1d
    fig = scenario_figure(scenario.replace(objectives=FIVE))
    labels = [a.text for a in fig.layout.annotations]
    assert len(labels) == 5 and labels[0].startswith("<b>forward KL</b>") and "T·log(T/S)" in labels[0]
    # each label sits above its own row, every row lower than the one before
    tops = [a.y for a in fig.layout.annotations]
    assert all(a > b for a, b in zip(tops, tops[1:]))
    assert all(a.xanchor == "left" and a.x == 0.0 for a in fig.layout.annotations)
    assert fig.layout.height > 820


def test_loss_panels_share_one_axis_type(default_1d):
    from kl_core.scenario import scenario_figure

    scenario, _ = default_1d
    for objectives in (scenario.objectives, FIVE):
        fig = scenario_figure(scenario.replace(objectives=objectives))
        loss_axes = {f"yaxis{fig.data[k].yaxis[1:]}" for k in traces(fig, "loss_marker")}
        kinds = {fig.layout[a].type for a in loss_axes}
        assert len(kinds) == 1, kinds  # all log or all linear, never a log panel next to a linear one
        for a in loss_axes:
            axis = fig.layout[a]
            if axis.type == "log" and axis.ticktext is not None:  # each tick says its value ("0.5", "10")
                assert [float(t) for t in axis.ticktext] == pytest.approx(list(axis.tickvals))
            elif axis.type == "log":  # less than a factor 2 or so: plotly's ticks, written in full
                assert axis.tickformat == ".3~g"


def test_shared_loss_axes_and_log_ticks():
    from kl_core.viz.losses import log_ticks, shared_loss_axes

    wide, narrow = np.array([100.0, 1.0, 0.5]), np.array([2.0, 1.0])
    assert [a["type"] for a in shared_loss_axes([wide, narrow])] == ["log", "log"]
    assert [a["type"] for a in shared_loss_axes([narrow, narrow])] == ["linear", "linear"]
    assert [a["type"] for a in shared_loss_axes([wide, np.array([-0.1, 1.0])])] == ["linear", "linear"]
    assert log_ticks(0.3, 12)["ticktext"] == ["0.5", "1", "2", "5", "10"]
    assert log_ticks(1e-6, 1e-2)["ticktext"][0] == "10<sup>−6</sup>"  # not plotly's "1µ"
    with pytest.raises(ValueError, match="0 < lo < hi"):
        log_ticks(0.0, 1.0)


def test_landscape_colour_is_log_and_the_bar_says_nats(landscapes):
    from kl_core.viz.landscape import LOG_FLOOR, clipped_values

    fig = kv.landscape_figure(landscapes)
    for c, land in enumerate(landscapes):
        heat = fig.data[traces(fig, "heatmap", column=c)[0]]
        clipped = clipped_values(land)
        expected = np.log10(clipped - clipped.min() + LOG_FLOOR)
        np.testing.assert_allclose(decode(heat.z).reshape(expected.shape), expected, rtol=1e-5, atol=1e-6)
        # the hover shows the exact value in nats; the bar's labels are nats at their log positions
        np.testing.assert_allclose(decode(heat.customdata).reshape(land.values.shape), land.values, rtol=1e-6)
        labels = list(heat.colorbar.ticktext)
        assert labels[0] == f"{clipped.min():.2f} (min)"
        for value, position in zip(labels[1:], heat.colorbar.tickvals[1:]):
            assert position == pytest.approx(math.log10(float(value) - clipped.min() + LOG_FLOOR))
    # forward KL climbs to ~100 nats: half of the colour range is now the basin below 2 nats
    forward = fig.data[traces(fig, "heatmap", column=0)[0]]
    z = decode(forward.z)
    assert (math.log10(2.0 - landscapes[0].values.min() + LOG_FLOOR) - z.min()) / (z.max() - z.min()) > 0.45


def test_landscape_paths_stay_in_view_and_markers_differ(landscapes, runs):
    fig = kv.landscape_figure(landscapes, runs)
    for c, run in enumerate(runs):
        x_range = fig.layout[f"xaxis{c + 1 if c else ''}"].range
        y_range = fig.layout[f"yaxis{c + 1 if c else ''}"].range
        params = run.trajectory.params
        assert x_range[0] <= params[..., 0].min() and params[..., 0].max() <= x_range[1]
        assert y_range[0] <= params[..., 1].min() and params[..., 1].max() <= y_range[1]
    starts = fig.data[traces(fig, "path_start", column=0)[0]]
    minima = fig.data[traces(fig, "minima", column=1)[0]]
    assert starts.marker.symbol == "circle-open" and "circle" not in list(minima.marker.symbol)
    assert "◆ local" in minima.name and starts.name == "start (○)" and starts.showlegend


# -- contrast of figure text (WCAG 2.x, AA: 4.5:1 for text) -------------------------------------

# what Streamlit's template gives text a figure leaves uncoloured (its gray70 / gray30)
HOST_DEFAULT_TEXT = {"light": "#808495", "dark": "#E6EAF1", "export": "#2A3F5F"}


def text_colours(fig: go.Figure | dict) -> list[tuple[str, str | None, str | None]]:
    """(where, text colour or None, background or None) of every text a figure draws (layout level).

    A colour left unset inherits ``layout.font.color``; None there means the host decides.
    """
    layout = (fig.to_dict() if isinstance(fig, go.Figure) else fig)["layout"]
    base = (layout.get("font") or {}).get("color")
    paper = layout.get("paper_bgcolor")

    def colour(font) -> str | None:
        return (font or {}).get("color") or base

    out = [("layout.font", base, paper)]
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")):
            out.append((f"{key}.tickfont", colour(axis.get("tickfont")), paper))
            if (axis.get("title") or {}).get("text"):
                out.append((f"{key}.title", colour(axis["title"].get("font")), paper))
    for i, a in enumerate(layout.get("annotations", [])):
        out.append((f"annotations[{i}] {a.get('text', '')[:30]}", colour(a.get("font")), a.get("bgcolor") or paper))
    for i, s in enumerate(layout.get("sliders", [])):
        transparent = (s.get("font") or {}).get("color") == "rgba(0,0,0,0)"  # hidden tick labels draw nothing
        if not transparent:
            out.append((f"sliders[{i}].font", colour(s.get("font")), paper))
        out.append((f"sliders[{i}].currentvalue", colour((s.get("currentvalue") or {}).get("font")), paper))
    for i, m in enumerate(layout.get("updatemenus", [])):
        out.append((f"updatemenus[{i}]", colour(m.get("font")), m.get("bgcolor") or "#F4FAFF"))  # plotly's default
    return out


def low_contrast(fig, host: str) -> list[str]:
    from kl_core.viz.theme import contrast_ratio, host_color

    bad = []
    for where, fg, bg in text_colours(fig):
        text = host_color(fg, host) if fg is not None else HOST_DEFAULT_TEXT[host]
        back = host_color(bg, host)
        ratio = contrast_ratio(text, back)
        if ratio < 4.5:
            bad.append(f"{where}: {text} on {back} = {ratio:.2f}:1")
    return bad


@pytest.mark.parametrize(
    "fg, bg, expected",
    [
        ("#000000", "#FFFFFF", 21.0),  # the maximum (WCAG 2.x definition)
        ("#FFFFFF", "#FFFFFF", 1.0),
        ("#808495", "#FFFFFF", 3.72),  # Streamlit's figure text (issue 10: "3.7:1")
        ("#777777", "#FFFFFF", 4.48),  # WebAIM's classic just-fails-AA grey
        ("#767676", "#FFFFFF", 4.54),  # ... and the lightest grey that passes
        ("#0000FF", "#FFFFFF", 8.59),  # WebAIM contrast checker
        ("rgba(0,0,0,0.5)", "#FFFFFF", 3.98),  # half-transparent black over white: grey 127.5
    ],
)
def test_contrast_ratio_known_values(fg, bg, expected):
    from kl_core.viz.theme import contrast_ratio

    assert contrast_ratio(fg, bg) == pytest.approx(expected, abs=0.01)
    assert contrast_ratio(bg, fg) == pytest.approx(contrast_ratio(fg, bg)) or "rgba" in fg


def test_contrast_helpers_reject_bad_colours_and_pick_cell_text():
    from kl_core.viz.theme import contrast_ratio, text_on

    with pytest.raises(ValueError, match="colour must be"):
        contrast_ratio("grey", "#FFFFFF")
    for cell in ("#0072B2", "#D55E00", "#440154", "#21918C", "#FDE725", "#F0E442", "rgba(0,114,178,0.3)"):
        for page in ("#FFFFFF", "#0E1117"):
            text = text_on(cell, page=page)
            from kl_core.viz.theme import _over

            solid = "rgb({:.0f},{:.0f},{:.0f})".format(*_over(cell, page))
            assert contrast_ratio(text, solid) >= 4.5 or contrast_ratio(text, solid) >= max(
                contrast_ratio("#000000", solid), contrast_ratio("#FFFFFF", solid)
            )


def test_figure_text_meets_wcag_aa_on_light_dark_and_export(
    fig1d, sweep_fig, capacity_fig, runs, landscapes, correlated_run, default_1d
):
    from kl_core.scenario import scenario_figure
    from kl_core.viz.export import still_figure

    figures = {
        "lab 1-D": fig1d,
        "lab 1-D, five objectives": scenario_figure(default_1d[0].replace(objectives=FIVE)),
        "lab 2-D": kv.animation_2d(correlated_run[0], [correlated_run[1]]),
        "landscape": kv.landscape_figure(landscapes, runs),
        "family sweep": sweep_fig,
        "capacity": capacity_fig,
        "losses": kv.loss_figure(runs),
    }
    for name, fig in figures.items():
        for host in ("light", "dark"):
            assert not low_contrast(fig, host), (name, host, low_contrast(fig, host))
        assert not low_contrast(still_figure(fig, background="white"), "export"), name
    # the check can fail: a figure that leaves its text to Streamlit's template does
    bare = go.Figure(go.Scatter(y=[1, 2]), layout={"title": {"text": "t"}})
    assert low_contrast(bare, "light")


def test_faint_lines_keep_their_colour_on_a_dark_page(fig1d, runs, correlated_run):
    """Starts 1.. are faint, not dim: they keep >= 65% of their role colour's contrast on Streamlit's dark page."""
    from kl_core.viz.theme import HOSTS, contrast_ratio

    dark = HOSTS["dark"]["background"]
    figures = [fig1d, kv.loss_figure(runs), kv.animation_2d(correlated_run[0], [correlated_run[1]])]
    checked = 0
    for fig in figures:
        for t in fig.data:
            color = getattr(getattr(t, "line", None), "color", None)
            role = (t.meta or {}).get("role")
            if isinstance(color, str) and color.startswith("rgba(") and role in ("student", "loss", "ellipse"):
                run = (t.meta or {}).get("run", 0)
                solid = runs[run].color if fig is not figures[2] else correlated_run[1].color
                assert contrast_ratio(color, dark) >= 0.65 * contrast_ratio(solid, dark), (role, color)
                assert t.line.width >= 1.2
                checked += 1
    assert checked >= 4


def test_token_heatmap_values_are_readable_on_every_cell():
    from kl_core.presets import get_preset
    from kl_core.viz.theme import contrast_ratio
    from kl_core.viz.tokens import cell_text_colors, cell_tint, joint_animation

    p = get_preset("city_tokens")
    runs = [
        kv.Run(o, {}, kc.fit(p.teacher, kc.FactorizedCategorical(shape=p.teacher.shape), o, steps=40, inits=2, seed=0))
        for o in ("forward_kl", "reverse_kl")
    ]
    fig = joint_animation(p.teacher, runs, p.labels, n_frames=5)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    values = traces(fig, "cell_values")
    assert len(values) == len(heatmaps) == 3
    for h, k in zip(heatmaps, values):
        low, high = h.colorscale[0][1], h.colorscale[-1][1]
        assert not low.startswith("rgba")  # opaque cells: the page never shows through
        z = decode(h.z).reshape(-1) if isinstance(h.z, dict) else np.asarray(h.z, float).ravel()
        text = fig.data[k]
        assert list(text.text) == [f"{v:.2f}" for v in z]
        for v, colour in zip(z, text.textfont.color):
            cell = kv.mix(low, high, float(v))
            assert contrast_ratio(colour, cell) >= 4.5, (v, colour, cell)
    # frames rewrite the numbers and their colours with the cells
    last = fig.frames[-1]
    written = [d for d in last.data if d.type == "scatter" and d.text is not None]
    assert len(written) == 2 and len(written[0].textfont.color) == len(written[0].text)
    assert cell_text_colors(np.array([0.0, 1.0]), "#0072B2") == ["#000000", "#FFFFFF"]
    assert cell_tint("#0072B2").startswith("#")


def test_log_axes_of_the_rl_figures_write_their_values():
    """PPO's KL axis read "1µ" (plotly's SI prefix at the 1e-6 floor); every log tick now says its value."""
    from kl_core import rl
    from kl_core.viz.rl import ppo_kl_figure

    run = rl.ppo_demo(24, 1.0, 0.5, "k3_loss", updates=30, seed=0)
    fig = ppo_kl_figure(run)
    axis = fig.layout.yaxis
    assert axis.type == "log" and axis.ticktext is not None
    assert not any("µ" in t or "μ" in t for t in axis.ticktext)
    shown = np.concatenate([decode(t.y).astype(float) for t in fig.data])
    low, high = 10 ** axis.range[0], 10 ** axis.range[1]
    assert low <= shown.min() and shown.max() <= high  # every curve inside the axis
    for value, text in zip(axis.tickvals, axis.ticktext):
        if "<sup>" in text:  # "10<sup>−4</sup>" or "2·10<sup>−4</sup>"
            mantissa, power = text.split("<sup>")
            k = int(power.removesuffix("</sup>").replace("−", "-"))
            m = float(mantissa.removesuffix("·10")) if mantissa != "10" else 1.0
            assert m * 10.0**k == pytest.approx(value)
        else:
            assert float(text) == pytest.approx(value)


def test_landscape_colour_bars_lie_under_their_own_panels(landscapes):
    # beside its panel, the forward bar ran into the reverse panel's tick labels at 390 px: under the panel,
    # as wide as its domain, it cannot meet a neighbour at any width
    fig = kv.landscape_figure(landscapes)
    for c in range(len(landscapes)):
        bar = fig.data[traces(fig, "heatmap", column=c)[0]].colorbar
        domain = fig.layout[f"xaxis{c + 1 if c else ''}"].domain
        assert bar.orientation == "h" and bar.xanchor == "center" and bar.yanchor == "top" and bar.y < 0
        assert domain[0] - 1e-9 <= bar.x - bar.len / 2 and bar.x + bar.len / 2 <= domain[1] + 1e-9
