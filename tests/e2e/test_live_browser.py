"""The live lab in a real chromium: the engine against kc.fit, the exported page offline, the app's hero.

* The engine module is loaded by the page from a local http server (ES modules cannot be imported
  from file://) and its fit compared with kc.fit, as tests/test_live_engine.py does under node.
* The file written by the README's `kl-lab export --format live` command is opened from file://
  with every http(s) request blocked: dragging a mode with the mouse, and moving it with the
  keyboard, both change the drawn students; Play advances the step; no console errors.
* The 1-D lab's hero: a drag released in the widget reaches the sidebar and the URL.
"""

from __future__ import annotations

import functools
import http.server
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import kl_core as kc
from kl_core.live import problem

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TIMEOUT_MS = 60_000


def readme_export_command() -> list[str]:
    """The command in the fenced block after ``<!-- live:export -->`` in README.md (the README's own text)."""
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- live:export -->")
    block = text[text.index("```bash\n", start) + len("```bash\n") :]
    line = block[: block.index("```")].strip().splitlines()[0]
    args = shlex.split(line)
    assert args[:2] == ["kl-lab", "export"], line
    return args[2:]


@pytest.fixture(scope="module")
def repo_server():
    """http://127.0.0.1:PORT serving the repository (read-only, quiet)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # noqa: D102 (silence per-request logging)
            pass

    handler = functools.partial(Quiet, directory=str(ROOT))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def collect_errors(page) -> list[str]:
    """Console errors and page errors (the test server's 404 for /favicon.ico aside)."""
    errors: list[str] = []

    def on_console(m) -> None:
        if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{m.text} ({m.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_engine_in_chromium_matches_kc_fit(browser, repo_server):
    teacher = kc.GaussianMixture([0.5, 0.3, 0.2], [-3.0, 2.0, 5.0], [1.0, 0.7, 1.3])
    cases = [
        (kc.Gaussian(1.0, 1.0), "reverse_kl", {}),
        (kc.GaussianMixture([1, 1], [-1.0, 1.0], [1.0, 1.0]), "jsd", {"beta": 0.5}),
    ]
    page = browser.new_page()
    errors = collect_errors(page)
    page.goto(f"{repo_server}/README.md")
    for student, kind, par in cases:
        p = problem(teacher, student, kind, steps=400, lr=0.05, inits=4, seed=3, **par)
        traj = kc.fit(teacher, student, kind, steps=400, lr=0.05, inits=4, seed=3, **par)
        got = page.evaluate("async (p) => { const m = await import('/kl_core/live/engine.js'); return m.fit(p); }", p)
        params = np.array(got["params"])
        err = (np.abs(params - traj.params) / np.maximum(np.abs(traj.params), 1.0)).max(axis=(1, 2))
        assert err[1] <= 1e-9 and err.max() <= 1e-6, (kind, err.max())
        assert np.allclose(got["loss"], traj.loss, rtol=1e-6, atol=0)
    page.close()
    assert not errors, errors


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The file the README's export command writes (run as `python -m kl_core.cli`, this checkout's code)."""
    args = readme_export_command()
    out = tmp_path_factory.mktemp("live") / Path(args[args.index("--out") + 1]).name
    args[args.index("--out") + 1] = str(out)
    subprocess.run([sys.executable, "-m", "kl_core.cli", "export", *args], check=True, cwd=ROOT, timeout=120)
    return out


@pytest.fixture
def offline_page(browser):
    """A 1400-wide page whose http(s) requests are aborted and recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    requests: list[str] = []

    def block(route):
        requests.append(route.request.url)
        route.abort()

    context.route("http://**/*", block)
    context.route("https://**/*", block)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = collect_errors(page)
    yield page, requests, errors
    context.close()


STUDENT_MEANS = "() => window.klLive.students().map(run => run.map(s => s.means[0]))"


def step_of(page) -> int:
    return int(re.search(r"\d+", page.locator(".kl-live-step").inner_text()).group())


def test_export_is_small_and_self_contained(exported: Path):
    text = exported.read_text(encoding="utf-8")
    assert exported.stat().st_size <= 300_000
    assert "<script src" not in text and "<link" not in text and "import(" not in text
    assert re.search(r"https?://", text) is None


def test_exported_widget_trains_offline_and_follows_mouse_and_keyboard(offline_page, exported: Path):
    page, requests, errors = offline_page
    page.goto(exported.as_uri())
    page.wait_for_function("() => window.klLive && window.klLive.runs.length === 2 && window.klLive.playing")
    page.wait_for_function("() => window.klLive.runs[0].state.t >= 50")  # it trains on load
    # pause so that only the teacher moves the students from here on (the gradient changes with it)
    page.keyboard.press("Space")
    assert not page.evaluate("() => window.klLive.playing")
    page.locator(".kl-live-bar button", has_text="Step").click()
    t0 = page.evaluate("() => window.klLive.runs[0].state.t")

    # mouse: drag mode 1 of the first panel 120 px to the left, then Play: the students follow
    handle = page.locator(".kl-live-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    teacher_before = page.evaluate("() => window.klLive.teacher.means[0]")
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(x - 10 * i, y)
    page.mouse.up()
    teacher_after = page.evaluate("() => window.klLive.teacher.means[0]")
    assert teacher_after < teacher_before - 2.0
    before = page.evaluate(STUDENT_MEANS)
    page.locator(".kl-live-play").click()
    page.wait_for_function("(t0) => window.klLive.runs[0].state.t >= t0 + 200", arg=t0)
    after = page.evaluate(STUDENT_MEANS)
    assert step_of(page) > t0
    moved = np.abs(np.array(after) - np.array(before))
    assert moved.max() > 0.05, moved

    # keyboard: Tab to the first handle, ArrowRight x5 moves mode 1 by +0.5, students move again
    page.keyboard.press("Space")  # pause
    page.locator(".kl-live-handle").first.focus()
    m0 = page.evaluate("() => window.klLive.teacher.means[0]")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    assert page.evaluate("() => window.klLive.teacher.means[0]") == pytest.approx(m0 + 0.5, abs=1e-9)
    before = page.evaluate(STUDENT_MEANS)
    page.locator(".kl-live-bar button", has_text="Step").click()
    after = page.evaluate(STUDENT_MEANS)
    assert not np.allclose(before, after, rtol=0, atol=1e-12)
    assert requests == [] and errors == [], (requests, errors)


def test_exported_widget_at_phone_width_respects_reduced_motion(browser, exported: Path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, reduced_motion="reduce", color_scheme="dark")
    page = context.new_page()
    errors = collect_errors(page)
    page.goto(exported.as_uri())
    page.wait_for_function("() => window.klLive && window.klLive.runs.length === 2")
    page.wait_for_timeout(500)
    assert not page.evaluate("() => window.klLive.playing") and step_of(page) == 0
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at 390 px ({width} px)"
    page.locator(".kl-live-play").click()
    page.wait_for_function("() => window.klLive.runs[0].state.t > 0")
    context.close()
    assert not errors, errors


def test_app_hero_reports_the_teacher_on_release(page, page_errors, app_url):
    page.goto(f"{app_url}/")
    page.wait_for_selector(".kl-live-handle", timeout=TIMEOUT_MS)
    handle = page.locator(".kl-live-handle").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x - 8 * i, y)
    page.mouse.up()
    page.wait_for_url(re.compile(r"preset=custom"), timeout=TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    mean = float(re.search(r"m1=(-?[\d.]+)", page.url).group(1))
    assert mean < -3.0 and abs(round(mean * 10) - mean * 10) < 1e-9  # moved left, snapped to the 0.1 step
    slider = page.get_by_role("slider", name="Mode 1 mean")  # an <input type="range">
    assert float(slider.input_value()) == pytest.approx(mean)  # the sidebar followed
    assert not page_errors, str(page_errors)
