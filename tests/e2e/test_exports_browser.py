"""Exports in a real browser: the standalone HTML and the embed snippet play offline; the app's Export panel.

The HTML files are opened from file:// with every http(s) request blocked (and recorded), so a file
that needed the network would fail here. Data is read from ``el._fullData`` (typed arrays).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kl_core.scenario import Scenario, scenario_figure
from kl_core.viz import export

from .harness import offline_context

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
except ImportError:  # the fixtures skip these tests (or fail them in CI)
    PlaywrightTimeoutError = TimeoutError

pytestmark = pytest.mark.e2e

PLOT = ".js-plotly-plot"
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
TIMEOUT_MS = 60_000  # the first page load computes the default fits (slow on a busy 2-core machine)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet(marker: str) -> str:
    """The fenced block right after ``<!-- embed:marker -->`` in README.md: the tests use the README's own text."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"<!-- embed:{marker} -->")
    block = text[text.index("```html\n", start) + len("```html\n") :]
    return block[: block.index("```")]


# The "Embed in an explainer page" snippet of the README: plotly.js from a local file, then the div.
EXPLAINER_PAGE = (
    readme_snippet("page")
    .replace("{", "{{")
    .replace("}", "}}")
    .replace("<!-- the contents of fit.div.html -->", "{div}")
)
assert "{div}" in EXPLAINER_PAGE, "the README's explainer page lost its placeholder comment"

# True once the plot is drawn; then the y arrays of the traces the frames animate.
DRAWN = "el => Array.isArray(el._fullData) && el._fullData.length > 0 && el._fullLayout !== undefined"
ANIMATED_YS = """el => {
    const traces = el._transitionData._frames[0].traces;
    return traces.map(i => Array.from(el._fullData[i].y));
}"""
CHANGED = """([selector, before]) => {
    const el = document.querySelector(selector);
    const traces = el._transitionData._frames[0].traces;
    return traces.some((i, k) => {
        const y = Array.from(el._fullData[i].y);
        return y.length !== before[k].length || y.some((v, j) => v !== before[k][j]);
    });
}"""


@pytest.fixture(scope="module")
def fig():
    return scenario_figure(Scenario(steps=50, inits=2), n_frames=10)


@pytest.fixture
def offline_page(browser):
    """A page whose http(s) requests are aborted and recorded; console errors recorded too."""
    context, requests = offline_context(browser, 1200)
    errors: list[str] = []
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, requests, errors
    context.close()


def press_play_and_see_data_advance(page) -> None:
    page.wait_for_selector(PLOT)
    plot = page.locator(PLOT).first
    page.wait_for_function(f"() => {{ const el = document.querySelector('{PLOT}'); return el && ({DRAWN})(el); }}")
    assert plot.evaluate("el => el._transitionData._frames.length") == 10
    before = plot.evaluate(ANIMATED_YS)
    page.locator(".updatemenu-button", has_text="Play").first.click()
    try:
        page.wait_for_function(CHANGED, arg=[PLOT, before], polling="raf", timeout=10_000)
    except PlaywrightTimeoutError:
        pytest.fail("after Play no animated trace changed within 10 s", pytrace=False)


def test_exported_html_plays_offline_from_a_file(offline_page, fig, tmp_path: Path):
    page, requests, errors = offline_page
    path = tmp_path / "fit.html"
    path.write_text(export.to_html(fig, title="KL Lab"), encoding="utf-8")
    page.goto(path.as_uri())
    press_play_and_see_data_advance(page)
    assert requests == [] and errors == []


def test_embed_snippet_plays_in_an_explainer_page(offline_page, fig, tmp_path: Path):
    import plotly.offline

    page, requests, errors = offline_page
    (tmp_path / "plotly.min.js").write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
    (tmp_path / "explainer.html").write_text(EXPLAINER_PAGE.format(div=export.to_div(fig)), encoding="utf-8")
    page.goto((tmp_path / "explainer.html").as_uri())
    assert page.locator("h1").inner_text() == "Why reverse KL seeks modes"
    press_play_and_see_data_advance(page)
    assert requests == [] and errors == []


def wait_idle_with_chart(page) -> None:
    page.wait_for_selector(CHART, timeout=TIMEOUT_MS)
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)


def export_expander(page):
    return page.locator('[data-testid="stExpander"]', has=page.locator("summary", has_text="Export"))


# The README's iframe snippet, pointed at the running app.
IFRAME_PAGE = (
    "<!doctype html>\n<html><body>\n<h1>Forward vs reverse KL</h1>\n"
    + readme_snippet("iframe").replace("https://YOUR-KL-LAB-HOST", "{app_url}")
    + "</body></html>\n"
)
assert "{app_url}" in IFRAME_PAGE, "the README's iframe snippet lost its host placeholder"


def test_app_export_panel_restores_a_scenario_and_hides_when_embedded(page, page_errors, app_url, tmp_path: Path):
    (tmp_path / "iframe.html").write_text(IFRAME_PAGE.format(app_url=app_url), encoding="utf-8")
    page.goto((tmp_path / "iframe.html").as_uri())
    frame = page.frame_locator("iframe")
    frame.locator(CHART).first.wait_for(timeout=TIMEOUT_MS)
    frame.locator(APP_IDLE).wait_for(timeout=TIMEOUT_MS)
    assert frame.locator("h1", has_text="Mode covering vs mode seeking").count() == 1
    assert frame.locator('[data-testid="stExpander"] summary', has_text="Export").count() == 0, (
        "the Export panel shows in an embed view"
    )

    page.goto("/")
    wait_idle_with_chart(page)
    panel = export_expander(page)
    assert panel.count() == 1
    panel.locator("summary").click()
    uploader = panel.locator('input[type="file"]')

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "training": {"lr": 7}}))
    uploader.set_input_files(str(bad))
    message = panel.locator('[data-testid="stAlertContentError"]')
    message.wait_for(timeout=TIMEOUT_MS)
    assert "training.lr must be in [0.005, 0.5], got 7" in message.inner_text()

    good = tmp_path / "good.json"
    scenario = Scenario(preset="three_modes", objectives=(("jsd", (("beta", 0.3),)),), steps=100, inits=3, seed=7)
    good.write_text(scenario.to_json())
    uploader.set_input_files(str(good))
    try:  # the state is restored, the page reruns and writes it to the URL
        page.wait_for_function(
            "() => ['preset=three_modes', 'objectives=jsd', 'beta=0.3', 'steps=100', 'inits=3', 'seed=7']"
            ".every(p => window.location.search.includes(p))",
            timeout=TIMEOUT_MS,
        )
    except PlaywrightTimeoutError:
        pytest.fail(f"the restored scenario did not reach the URL: {page.url}", pytrace=False)
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)
    titles = page.locator(CHART).first.evaluate("el => el._fullLayout.annotations.map(a => a.text)")
    assert "JSD (β=0.3)" in titles and "forward KL" not in titles
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page_errors, str(page_errors)
