"""The app in a real browser: every page draws without errors, the 1-D lab reacts to its slider and animates.

Each page test also writes ``assets/screenshots/<page>.png`` (1400x900) once its charts are drawn.
Chart data is read from ``el._fullData`` (typed arrays); ``el.data`` still holds Streamlit's base64
objects, and comparing those would "change" nothing (shared/RECIPES.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
except ImportError:  # the fixtures skip these tests (or fail them in CI) with the command that installs it
    PlaywrightTimeoutError = TimeoutError

pytestmark = pytest.mark.e2e

SCREENSHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
EXCEPTION = '[data-testid="stException"]'
FIRST_CHART_TIMEOUT_MS = 30_000  # plotly.js loads lazily: the first chart draws 3-5 s after goto
RERUN_TIMEOUT_MS = 15_000
ANIMATION_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class AppPage:
    """One page of the app: where it lives, what it is called, and whether it draws a chart."""

    name: str  # screenshot file stem
    path: str  # url path under the base URL
    title: str
    has_chart: bool = True


PAGES = [
    AppPage("lab_1d", "/", "Mode covering vs mode seeking"),
    AppPage("landscape", "/landscape", "Loss landscape"),
    AppPage("family", "/family", "Divergence family"),
    AppPage("lab_2d", "/lab_2d", "2-D lab"),
    AppPage("lesson", "/lesson", "Start here: forward vs reverse KL"),
    AppPage("tokens", "/tokens", "Token lab"),
    AppPage("rl", "/rl", "Reverse KL is RL"),
    AppPage("lm", "/lm", "Language-model lab"),
    AppPage("theory", "/theory", "Theory", has_chart=False),
]

# True once every chart container on the page holds a drawn plotly plot (with its computed traces).
ALL_CHARTS_DRAWN = """() => {
    const containers = document.querySelectorAll('[data-testid="stPlotlyChart"]');
    return containers.length > 0 && Array.from(containers).every(c => {
        const el = c.querySelector('.js-plotly-plot');
        return el !== null && Array.isArray(el._fullData) && el._fullData.length > 0 && el._fullLayout !== undefined;
    });
}"""

# The y values of every trace of the first chart, as plain arrays (null where a trace has no y).
FIRST_CHART_YS = f"""() => {{
    const el = document.querySelector('{CHART}');
    return el._fullData.map(d => (d.y === undefined || d.y === null) ? null : Array.from(d.y));
}}"""


def exception_texts(page) -> list[str]:
    return page.locator(EXCEPTION).all_inner_texts()


def diagnosis(page) -> str:
    """Where the page stands, for a failure message."""
    state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
    return f"script state {state!r}, {page.locator(CHART).count()} plotly plots, exceptions {exception_texts(page)}"


def wait_until(page, what: str, condition: str, arg, timeout_ms: int, polling: str | int = "raf") -> None:
    """``page.wait_for_function`` that fails with ``what`` and the page's state instead of a bare timeout."""
    try:
        page.wait_for_function(condition, arg=arg, polling=polling, timeout=timeout_ms)
    except PlaywrightTimeoutError:
        pytest.fail(f"{what} within {timeout_ms / 1000:g} s ({diagnosis(page)})", pytrace=False)


def open_page(page, path: str, expect_chart: bool = True) -> None:
    """Go to ``path`` and wait until the script has finished and, if expected, every chart is drawn.

    Fails at once, with the exception's text, when the page shows a Streamlit exception instead of a chart.
    """
    page.goto(path)
    try:
        # A chart or an exception, whichever comes first: a broken page should not cost the full timeout.
        page.wait_for_selector(f"{CHART}, {EXCEPTION}" if expect_chart else APP_IDLE, timeout=FIRST_CHART_TIMEOUT_MS)
        page.wait_for_selector(APP_IDLE, timeout=FIRST_CHART_TIMEOUT_MS)
        shown = exception_texts(page)
        if shown:
            pytest.fail(f"{path}: Streamlit exception shown:\n{shown[0]}", pytrace=False)
        if expect_chart:
            page.wait_for_function(ALL_CHARTS_DRAWN, timeout=FIRST_CHART_TIMEOUT_MS)
    except PlaywrightTimeoutError as err:
        pytest.fail(f"{path}: {err.message.splitlines()[0]} ({diagnosis(page)})", pytrace=False)


def title_shown(page, title: str) -> bool:
    """The page names itself: as its ``st.title`` (an h1), or in the browser tab's title."""
    return any(h.strip() == title for h in page.locator("h1").all_inner_texts()) or title in page.title()


@pytest.mark.parametrize("app_page", PAGES, ids=[p.name for p in PAGES])
def test_page_draws_without_errors(page, page_errors, app_page: AppPage):
    open_page(page, app_page.path, expect_chart=app_page.has_chart)

    assert exception_texts(page) == [], f"{app_page.path}: Streamlit exception shown"
    assert not page_errors, f"{app_page.path}:\n{page_errors}"
    assert title_shown(page, app_page.title), (
        f"{app_page.path}: {app_page.title!r} is neither an h1 {page.locator('h1').all_inner_texts()} "
        f"nor the tab title {page.title()!r}"
    )
    if app_page.has_chart:
        assert page.locator(CHART).count() >= 1

    page.evaluate("async () => { await document.fonts.ready; }")  # no fallback fonts in the picture
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{app_page.name}.png"))


def test_mode_1_mean_slider_moves_the_teacher_density(page, page_errors):
    open_page(page, "/")
    slider = page.get_by_role("slider", name="Mode 1 mean")
    before = page.evaluate(FIRST_CHART_YS)
    assert before[0] is not None and len(before[0]) > 1, "trace 0 (teacher density) of the first chart has no y"
    value_before = float(slider.input_value())  # the slider is an <input type="range">

    slider.focus()
    page.keyboard.press("ArrowRight")
    # Stale charts linger during a rerun: wait for the new teacher trace AND the script to be done.
    wait_until(
        page,
        "moving 'Mode 1 mean' did not redraw the first chart's teacher trace (_fullData[0].y)",
        """([selector, idle, before]) => {
            const el = document.querySelector(selector);
            if (document.querySelector(idle) === null || !el || !el._fullData || !el._fullData[0]) return false;
            const y = Array.from(el._fullData[0].y);
            return y.length !== before.length || y.some((v, i) => v !== before[i]);
        }""",
        [CHART, APP_IDLE, before[0]],
        RERUN_TIMEOUT_MS,
    )

    assert float(slider.input_value()) > value_before
    assert exception_texts(page) == []
    assert not page_errors, str(page_errors)


def test_play_advances_the_animation(page, page_errors):
    open_page(page, "/")
    play = page.locator(".updatemenu-button", has_text="Play")
    assert play.count() >= 1, "no Play button (.updatemenu-button with text 'Play') on the 1-D lab's charts"
    chart = page.locator(CHART).first
    frames = chart.evaluate("el => (el._transitionData && el._transitionData._frames || []).length")
    assert frames > 1, f"the first chart has {frames} animation frames"
    start = chart.evaluate(
        """el => ({
            active: el._fullLayout.sliders && el._fullLayout.sliders.length ? el._fullLayout.sliders[0].active : null,
            ys: el._fullData.slice(1).map(d => (d.y ? Array.from(d.y) : null)),
        })"""
    )

    play.first.click()
    # Either the figure's own slider moves on, or a student trace (any but the teacher, trace 0) changes.
    wait_until(
        page,
        "after Play neither the figure's slider (sliders[0].active) nor a student trace changed",
        """([selector, start]) => {
            const el = document.querySelector(selector);
            const sliders = el._fullLayout.sliders;
            if (sliders && sliders.length && sliders[0].active !== start.active) return true;
            return el._fullData.slice(1).some((d, k) => {
                const was = start.ys[k];
                if (!d.y || !was) return false;
                const y = Array.from(d.y);
                return y.length !== was.length || y.some((v, i) => v !== was[i]);
            });
        }""",
        [CHART, start],
        ANIMATION_TIMEOUT_MS,
    )
    assert exception_texts(page) == []
    assert not page_errors, str(page_errors)


def test_a_deep_link_on_a_fresh_server_shows_the_titled_navigation(browser, tmp_path):
    """A shared link to a sub-page is often a server's first request. With page files in a folder named
    ``pages/`` Streamlit used to run that file directly (legacy multipage): file names in the sidebar and
    ``No module named 'app'``. The pages live in ``app/views/``; this opens ``/theory`` first."""
    from .harness import free_port, start_server, stop_server

    port = free_port()
    process = start_server(port, tmp_path / "server.log")
    try:
        fresh = browser.new_page(base_url=f"http://127.0.0.1:{port}")
        fresh.goto("/theory")
        nav = fresh.locator('[data-testid="stSidebarNav"]')
        nav.wait_for(timeout=60_000)
        fresh.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
        links = [t.strip() for t in nav.locator("a").all_inner_texts()]
        assert links[:2] == ["Start here", "Mode covering vs mode seeking"], links
        assert "Language-model lab" in links and "main" not in links
        assert exception_texts(fresh) == []
        fresh.close()
    finally:
        stop_server(process)
