"""The README's iframe snippet on every page, in chromium: no exception, figure first, sidebar out of the way.

Streamlit refuses to have ``embed`` set from a script (a StreamlitAPIException once broke every embedded
page); the snippet's own text (read from README.md) is pointed at the test server, a control is moved,
Play is pressed, and the page must show no exception element after those reruns.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
HOST = "https://YOUR-KL-LAB-HOST/"
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
EXCEPTION = '[data-testid="stException"]'
TIMEOUT_MS = 90_000
IFRAME_WIDTH = 800  # the case: an 800 px iframe
PAGES = {  # url_path: does the page draw a chart without a button press?
    "": True,
    "lesson": True,
    "landscape": True,
    "family": True,
    "lab_2d": True,
    "tokens": True,
    "rl": True,
    "lm": True,
    "theory": False,
}


def iframe_snippet() -> str:
    """The fenced block after ``<!-- embed:iframe -->`` in README.md."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- embed:iframe -->\s*```html\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- embed:iframe --> snippet"
    snippet = match.group(1)
    assert HOST in snippet and "embed=true" in snippet, "the README's iframe snippet lost its host or embed=true"
    return snippet


def idle(frame) -> None:
    frame.locator(APP_IDLE).wait_for(timeout=TIMEOUT_MS)


@pytest.fixture
def narrow_page(browser, app_url: str, page_errors):
    context = browser.new_context(viewport={"width": IFRAME_WIDTH + 40, "height": 1000}, base_url=app_url)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", lambda m: page_errors.record_console(m))
    page.on("pageerror", lambda e: page_errors.page.append(str(e)))
    yield page
    context.close()


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "lab" for p in PAGES])
def test_readme_iframe_snippet_works_on_every_page(narrow_page, page_errors, app_url, tmp_path, path):
    snippet = iframe_snippet().replace(HOST, f"{app_url}/{path}")
    html = f'<!doctype html><html><body style="margin: 0; width: {IFRAME_WIDTH}px">{snippet}</body></html>'
    (tmp_path / "embed.html").write_text(html, encoding="utf-8")
    page = narrow_page
    page.goto((tmp_path / "embed.html").as_uri())
    frame = page.frame_locator("iframe")
    frame.locator('[data-testid="stApp"]').wait_for(timeout=TIMEOUT_MS)
    idle(frame)
    if PAGES[path]:
        frame.locator(CHART).first.wait_for(timeout=TIMEOUT_MS)
    assert frame.locator(EXCEPTION).count() == 0, frame.locator(EXCEPTION).first.inner_text()[:500]

    # the sidebar starts collapsed: the content has the iframe's width
    sidebar = frame.locator('[data-testid="stSidebar"]')
    if sidebar.count():
        assert sidebar.get_attribute("data-collapsed") == "true"
        assert sidebar.bounding_box()["width"] < 0.1 * IFRAME_WIDTH
    main = frame.locator('[data-testid="stMain"]').bounding_box()
    assert main["width"] > 0.9 * IFRAME_WIDTH, main
    if PAGES[path]:  # figure first: the first chart is above the page's title
        chart_top = frame.locator(CHART).first.bounding_box()["y"]
        title = frame.locator("h1").first
        assert title.count() == 0 or chart_top < title.bounding_box()["y"], "the title comes before the figure"

    # move a control: open the sidebar, press → on its first slider, wait for the rerun
    frame.locator('[data-testid="stExpandSidebarButton"]').click()
    slider = frame.locator('[data-testid="stSidebar"] [role="slider"]').first
    if slider.count():
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(300)  # the slider sends its value on release; the rerun then starts
        idle(frame)
    assert frame.locator(EXCEPTION).count() == 0, frame.locator(EXCEPTION).first.inner_text()[:500]

    # press Play on the first animation, if the page has one
    play = frame.locator(".updatemenu-button").first
    if PAGES[path] and play.count():
        play.click()
        page.wait_for_timeout(500)
    idle(frame)
    assert frame.locator(EXCEPTION).count() == 0, frame.locator(EXCEPTION).first.inner_text()[:500]
    assert frame.locator('[data-testid="stAlertContentError"]').count() == 0
    assert not page_errors, str(page_errors)
