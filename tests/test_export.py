"""Exports: HTML/div text, PNG/SVG stills, GIF/MP4 frames and sizes (read back with imageio), and ``kl-lab export``.

One kaleido browser serves the whole module (``render_session``), so the images cost ~0.3 s each.
"""

import io
import json
import re

import imageio.v3 as iio
import numpy as np
import pytest
from spec_tools import decode

from kl_core.cli import main
from kl_core.scenario import Scenario, scenario_figure
from kl_core.viz import export
from kl_core.viz.animation import CONTROLS_HEIGHT

SMALL = Scenario(steps=50, inits=2, seed=0)
FRAMES = 5  # motion_steps(runs, 5): five steps from 0 to 50, spread over the movement


@pytest.fixture(scope="module")
def fig():
    return scenario_figure(SMALL, n_frames=FRAMES)


@pytest.fixture(scope="module")
def kaleido_browser():
    with export.render_session():
        yield


def animated_ys(still: dict, fig) -> list[np.ndarray]:
    return [decode(still["data"][i]["y"]) for i in fig.frames[0].traces]


# -- HTML ------------------------------------------------------------------------------------------


def test_html_is_self_contained_with_every_frame(fig):
    html = export.to_html(fig, title="KL Lab <test>")
    assert not re.search(r'<script[^>]+src="https://cdn\.plot\.ly', html)  # the inlined plotly.js names the CDN in text
    assert "<title>KL Lab &lt;test&gt;</title>" in html
    assert len(html) > 3_000_000 and "Plotly.newPlot" in html  # plotly.js (~4.7 MB) is inside
    frames = json.loads(re.search(r"Plotly\.addFrames\([^,]+,\s*(\[.*?\])\)", html, re.S).group(1))
    assert [f["name"] for f in frames] == [f.name for f in fig.frames] and len(frames) == FRAMES
    assert frames[0]["name"] == "0" and frames[-1]["name"] == "50"
    assert '"label":"Play"' in html.replace(" ", "")


def test_div_snippet_and_script_src(fig):
    div = export.to_div(fig, div_id="kl-lab-fit")
    assert div.startswith("<div") and '<div id="kl-lab-fit"' in div and "<html" not in div
    assert len(div) < 1_000_000 and "Plotly.addFrames" in div  # no plotly.js, only the figure
    page = export.to_html(fig, plotlyjs="plotly.min.js")
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in page and len(page) < 1_000_000
    with pytest.raises(ValueError, match="plotlyjs must be"):
        export.to_html(fig, plotlyjs="cdn")


def test_html_page_title_figure_title_and_caption_come_from_the_scenario(fig):
    title, caption = export.scenario_labels(SMALL)
    assert title == "KL Lab: forward KL vs reverse KL on bimodal, Gaussian student"  # not "KL Lab: lab_1d"
    # the caption states the settings, from the scenario's own numbers
    assert caption == (
        "teacher: 0.5·N(−3, 1²) + 0.5·N(3, 1²); student: Gaussian; estimator: exact; "
        f"lr {SMALL.lr:g}, 50 steps, 2 starts, seed 0"
    )
    html = export.to_html(fig, plotlyjs="none", title=title, caption=caption)
    assert f"<title>{title}</title>" in html
    for text in (title, caption):  # in the figure JSON, raw (orjson) or with \u escapes
        assert text in html or json.dumps(text)[1:-1] in html
    layout = export.labelled(fig, title, caption)["layout"]
    assert layout["title"]["text"] == title
    assert layout["annotations"][-1]["text"] == caption and layout["annotations"][-1]["yanchor"] == "top"
    # the plots keep their size: the figure grows by the title's and the caption's room
    assert layout["height"] == fig.layout.height + export.TITLE_PX + export.CAPTION_LINE_PX + 8
    mc = SMALL.replace(estimator="on_policy_score", samples=64, student="mixture", components=3)
    assert "estimator: on_policy_score (64 samples per step)" in export.scenario_labels(mc)[1]
    assert "3-component mixture student" in export.scenario_labels(mc)[0]
    assert export.scenario_labels(Scenario(space="2d", preset="ring"))[0].startswith("KL Lab: forward KL vs reverse KL")


def test_labelled_escapes_and_wraps():
    d = export.labelled({"data": [], "layout": {"height": 300}}, "a <b>", "x" * 130 + " y & z")
    assert d["layout"]["title"]["text"] == "a &lt;b&gt;"
    note = d["layout"]["annotations"][-1]["text"]
    assert note.count("<br>") == 1 and "&amp;" in note
    assert export.labelled({"data": [], "layout": {}})["layout"].get("title") is None


# -- stills ------------------------------------------------------------------------------------------


def test_still_is_the_displayed_state_without_controls(fig):
    base = fig.to_dict()
    still = export.still_figure(fig)
    assert "updatemenus" not in still["layout"] and "sliders" not in still["layout"]
    assert still["layout"]["height"] == base["layout"]["height"] - CONTROLS_HEIGHT
    assert still["layout"]["margin"]["b"] == base["layout"]["margin"]["b"] - CONTROLS_HEIGHT
    # displayed state = the initial data = the last frame (the fitted students)
    last = export.still_figure(fig, -1)
    for a, b in zip(animated_ys(still, fig), animated_ys(last, fig)):
        np.testing.assert_array_equal(a, b)
    first = export.still_figure(fig, "0")
    assert any(not np.array_equal(a, b) for a, b in zip(animated_ys(first, fig), animated_ys(last, fig)))
    for i, trace in zip(fig.frames[0].traces, fig.frames[0].data):
        np.testing.assert_array_equal(decode(first["data"][i]["y"]), decode(trace.y))
    assert first["data"][0]["type"] == base["data"][0]["type"]  # untouched properties are kept
    with pytest.raises(ValueError, match="frame must be an index"):
        export.still_figure(fig, 5)


def test_frame_figures_spread_evenly_with_both_ends(fig):
    stills = export.frame_figures(fig, max_frames=3)
    assert len(stills) == 3 and len(export.frame_figures(fig)) == FRAMES
    for still, frame in zip(stills, [fig.frames[0], fig.frames[2], fig.frames[4]]):
        np.testing.assert_array_equal(decode(still["data"][frame.traces[0]]["y"]), decode(frame.data[0].y))
    with pytest.raises(ValueError, match="max_frames must be an integer >= 2"):
        export.frame_figures(fig, max_frames=1)


def test_png_and_svg(fig, kaleido_browser):
    png = export.to_png(fig, width=400, height=300)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = iio.imread(png)
    assert image.shape[:2] == (300, 400)
    assert (image[0, 0, :3] == 255).all()  # an opaque white background, readable on a slide
    assert iio.imread(export.to_png(fig, width=400, height=300, scale=2)).shape[:2] == (600, 800)
    svg = export.to_svg(fig, width=400, height=300).decode()
    assert svg.lstrip().startswith("<svg") and 'width="400"' in svg and 'height="300"' in svg
    with pytest.raises(ValueError, match=r"width must be an integer in \[16, 4096\]"):
        export.to_png(fig, width=10)


def test_png_carries_the_title_and_caption(fig, kaleido_browser):
    title, caption = export.scenario_labels(SMALL)
    plain = iio.imread(export.to_png(fig, width=640))
    image = iio.imread(export.to_png(fig, width=640, title=title, caption=caption))
    lines = export.labelled(fig, title, caption, width=640)["layout"]["annotations"][-1]["text"].count("<br>") + 1
    assert lines == 2  # wrapped to the image's width, not cut off at its edge
    extra = export.TITLE_PX + export.CAPTION_LINE_PX * lines + 8
    assert image.shape[0] == plain.shape[0] + extra  # the plots keep their height
    dark = image[..., :3].min(axis=-1) < 128  # (H, W): text pixels on the white background
    assert dark[: export.TITLE_PX - 10].any()  # the title, above everything (the legend starts lower)
    assert dark[-(export.CAPTION_LINE_PX * lines + 8) :].any()  # the caption, under everything
    # nothing is drawn past the right edge: the caption's last column of pixels is background
    assert not dark[-(export.CAPTION_LINE_PX * lines + 8) :, -4:].any()


def test_gif_has_every_frame_at_the_asked_size_and_rate(fig, kaleido_browser, tmp_path):
    data = export.to_gif(fig, tmp_path / "fit.gif", fps=5, width=320, height=240)
    assert data[:6] == b"GIF89a" and (tmp_path / "fit.gif").read_bytes() == data
    frames = iio.imread(data, extension=".gif", index=None)
    assert frames.shape[:3] == (FRAMES, 240, 320)
    meta = iio.immeta(data, extension=".gif")
    assert meta["loop"] == 0 and meta["duration"] == 200  # 1000 ms / 5 fps


def test_mp4_has_every_frame_at_the_asked_size(fig, kaleido_browser, tmp_path):
    data = export.to_mp4(fig, tmp_path / "fit.mp4", fps=8, width=320, height=240)
    assert data[4:8] == b"ftyp"
    frames = iio.imread(tmp_path / "fit.mp4", plugin="FFMPEG")
    assert frames.shape == (FRAMES, 240, 320, 3)
    assert iio.immeta(tmp_path / "fit.mp4", plugin="FFMPEG")["fps"] == 8
    with pytest.raises(ValueError, match="width must be even for MP4"):
        export.to_mp4(fig, width=321, height=240)
    with pytest.raises(ValueError, match=r"fps must be a number in \[0.5, 60\]"):
        export.to_mp4(fig, fps=0)


# -- the CLI -----------------------------------------------------------------------------------------

CLI = ["export", "--steps", "50", "--inits", "2", "--frames", "4", "--width", "160", "--height", "120", "--fps", "4"]


@pytest.mark.parametrize("fmt", ["html", "div", "json", "png", "svg", "gif", "mp4"])
def test_cli_exports_every_format(fmt, kaleido_browser, tmp_path, capsys):
    out = tmp_path / f"fit.{'html' if fmt == 'div' else fmt}"
    assert main([*CLI, "--objectives", "reverse_kl,jsd", "--beta", "0.3", "--format", fmt, "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    data = out.read_bytes()
    if fmt == "json":
        s = Scenario.from_json(data)
        assert s.objectives == (("reverse_kl", ()), ("jsd", (("beta", 0.3),))) and (s.steps, s.inits) == (50, 2)
    elif fmt in ("html", "div"):
        text = data.decode()
        # plotly writes the title as "β" (orjson, when installed) or as the JSON escape "\\u03b2"
        assert ("JSD (β=0.3)" in text or "JSD (\\u03b2=0.3)" in text) and ("<html" in text) == (fmt == "html")
        if fmt == "html":
            assert "<title>KL Lab: reverse KL vs JSD (β=0.3) on bimodal, Gaussian student</title>" in text
    elif fmt == "svg":
        assert b'width="160"' in data[:500]
    else:
        frames = iio.imread(io.BytesIO(data), extension=f".{fmt}", index=None)
        frames = frames[None] if fmt == "png" else frames  # a PNG is one (H, W, C) image
        assert frames.shape[:3] == ((1 if fmt == "png" else 4), 120, 160)


def test_cli_exports_a_saved_scenario_with_overrides(tmp_path, capsys):
    saved = tmp_path / "s.json"
    saved.write_text(Scenario(space="2d", preset="three_clusters", steps=60, inits=1, seed=3).to_json())
    out = tmp_path / "s2.json"
    assert main(["export", "--scenario", str(saved), "--seed", "9", "--out", str(out)]) == 0
    assert Scenario.from_json(out.read_text()) == Scenario(
        space="2d", preset="three_clusters", steps=60, inits=1, seed=9
    )
    assert main(["export", "--scenario", str(saved), "--frames", "3", "--out", str(tmp_path / "s.html")]) == 0
    assert "(html, " in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "gif", "--fps", "0"], "fps must be a number in [0.5, 60], got 0.0"),
        (["--format", "mp4", "--width", "321"], "width must be even for MP4"),
        (["--format", "png", "--height", "5"], "height must be an integer in [16, 4096] pixels, got 5"),
        (["--objectives", "forward_kl,magic"], "--objectives must be a comma-separated list"),
        (["--steps", "10"], "steps must be in [50, 1500], got 10"),
        (["--format", "xyz"], "argument --format: invalid choice: 'xyz'"),
        (["--preset", "city_tokens"], "argument --preset: invalid choice"),
        (["--scenario", "/nonexistent.json"], "--scenario: no such file"),
        (["--preset", "ring", "--scenario", "x.json"], "not allowed with argument"),
        (["--fps", "fast"], "argument --fps: invalid float value"),
    ],
)
def test_cli_bad_flags_exit_2_with_one_line(args, message, tmp_path, capsys):
    code = None
    try:
        code = main(["export", *args, "--out", str(tmp_path / "x.gif")])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.startswith("kl-lab: error:") and err.count("\n") == 1
    assert not (tmp_path / "x.gif").exists()


def test_cli_export_rejects_a_bad_scenario_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "training": {"lr": "fast"}}')
    assert main(["export", "--scenario", str(bad), "--out", str(tmp_path / "x.html")]) == 2
    assert "training.lr must be a number in [0.005, 0.5], got 'fast'" in capsys.readouterr().err
