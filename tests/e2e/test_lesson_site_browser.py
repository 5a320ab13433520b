"""The guided lesson in a real browser: the static site from file:// (no server, no network) and the app's page.

The site is built once (three of the steps, to keep it quick) into a temporary directory and opened
with file:// URLs: its figures must draw from the shared plotly.min.js beside the pages, and Play
must advance the animation. Chart data is read from ``el._fullData`` (typed arrays). The side-by-side
step's live widget starts when the answer opens and trains from file:// with every http(s) request
blocked; in the app, the same step's widget trains once the answer is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kl_core.lesson import STEPS
from kl_core.site import build_site, page_name

from .harness import offline_context

pytestmark = pytest.mark.e2e

CHART = ".js-plotly-plot"
APP_CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 30_000
SITE_STEPS = [s for s in STEPS if s.key in ("distillation", "both", "tokens")]

# the y values of the first chart's trace picked by a JS predicate, as a plain array
TRACE_Y = """([selector, role]) => {
    const el = document.querySelector(selector);
    if (!el || !el._fullData) return null;
    const t = el._fullData.find(
        d => d.meta && d.meta.role === role && (d.meta.start === undefined || d.meta.start === 0));
    return t ? Array.from(t.y) : null;
}"""
CHART_DRAWN = """(selector) => {
    const el = document.querySelector(selector);
    return el !== null && Array.isArray(el._fullData) && el._fullData.length > 0
        && el.querySelector('.main-svg') !== null;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lesson_site")
    build_site(out, steps=SITE_STEPS, hero="both")
    return out


@pytest.fixture
def file_page(browser, page_errors):
    """A page with no base URL (file:// only), its errors recorded like the app pages'."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", page_errors.record_console)
    page.on("pageerror", lambda e: page_errors.page.append(str(e)))
    yield page
    context.close()


def play_and_check_it_advances(page, role: str) -> None:
    page.wait_for_function(CHART_DRAWN, arg=CHART)
    before = page.evaluate(TRACE_Y, [CHART, role])
    assert before, f"no {role} trace drawn"
    page.locator(f"{CHART} .updatemenu-button").first.click()  # Play
    page.wait_for_function(
        "([selector, role, before]) => { const y = (" + TRACE_Y + ")([selector, role]);"
        " return y !== null && y.some((v, i) => Math.abs(v - before[i]) > 1e-6); }",
        arg=[CHART, role, before],
    )


def test_site_index_draws_from_file_and_play_advances(file_page, page_errors, site):
    assert (site / "plotly.min.js").is_file()
    file_page.goto((site / "index.html").as_uri())
    assert file_page.locator("h1").inner_text().startswith("Forward vs reverse KL")
    play_and_check_it_advances(file_page, "student")
    assert file_page.locator("ol.steps li").count() == len(SITE_STEPS)
    assert not page_errors, str(page_errors)


def test_site_step_page_plays_and_reveals_the_answer(file_page, page_errors, site):
    number = SITE_STEPS.index(next(s for s in SITE_STEPS if s.key == "tokens")) + 1
    step = SITE_STEPS[number - 1]
    file_page.goto((site / page_name(number, step.key)).as_uri())
    play_and_check_it_advances(file_page, "student")  # the bars move from the uniform start
    details = file_page.locator(".question details")
    assert details.get_attribute("open") is None
    wrong = (step.answer + 1) % len(step.choices)
    file_page.locator(f".question input[value='{wrong}']").check()
    assert file_page.locator(".feedback").inner_text() == "Not quite."
    assert details.get_attribute("open") is not None
    file_page.locator(f".question input[value='{step.answer}']").check()
    assert file_page.locator(".feedback").inner_text() == "Right."
    assert "New Angeles" in details.inner_text()
    assert not page_errors, str(page_errors)


def test_app_lesson_answer_reveals_the_fit_and_next_moves_on(page, page_errors):
    page.goto("/lesson?lesson_step=3")
    page.wait_for_selector(APP_IDLE)
    page.wait_for_function(CHART_DRAWN, arg=APP_CHART)
    page.get_by_text("On the right bump, narrow").click()
    page.get_by_role("button", name="Check").click()  # choosing alone reveals nothing (issue 10)
    page.get_by_text("Right: On the right bump, narrow.", exact=True).wait_for()
    page.wait_for_selector(APP_IDLE)
    page.wait_for_function(CHART_DRAWN, arg=APP_CHART)
    # the revealed figure is the fit: start 0's student peaks on the right bump, at +2.98
    x_at_peak = page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const t = el._fullData.find(d => d.meta && d.meta.role === 'student' && d.meta.start === 0);
            const y = Array.from(t.y), x = Array.from(t.x);
            return x[y.indexOf(Math.max(...y))];
        }""",
        APP_CHART,
    )
    assert x_at_peak == pytest.approx(2.98, abs=0.15)
    page.get_by_role("button", name="Next →").click()
    page.get_by_role("heading", name="4. Side by side: the start decides").wait_for()
    page.wait_for_selector(APP_IDLE)
    assert "lesson_step=4" in page.url
    assert not page_errors, str(page_errors)


def test_site_live_widget_trains_from_file_with_the_network_blocked(browser, page_errors, site):
    context, requests = offline_context(browser)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("console", page_errors.record_console)
    page.on("pageerror", lambda e: page_errors.page.append(str(e)))
    number = SITE_STEPS.index(next(s for s in SITE_STEPS if s.key == "both")) + 1
    page.goto((site / page_name(number, "both")).as_uri())
    page.wait_for_function(CHART_DRAWN, arg=CHART)
    assert page.evaluate("() => window.klLive === undefined")  # predict first: nothing trains yet
    page.locator(".question input[value='1']").check()  # choosing opens the answer, and the widget starts
    page.wait_for_function("() => window.klLive && window.klLive.playing && window.klLive.runs.length === 2")
    page.wait_for_function("() => window.klLive.runs[0].state.t >= 50")
    assert page.locator("#kl-live-both .kl-live-read").first.inner_text().startswith("best start: KL(p‖q)")
    # a drag of the first mode moves it, and training goes on under the moved teacher
    handle = page.locator("#kl-live-both .kl-live-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = page.evaluate("() => window.klLive.teacher.means[0]")
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x - 10 * i, y)
    page.mouse.up()
    assert page.evaluate("() => window.klLive.teacher.means[0]") < before - 1.5
    t0 = page.evaluate("() => window.klLive.runs[0].state.t")
    page.wait_for_function("(t0) => window.klLive.runs[0].state.t >= t0 + 100", arg=t0)
    context.close()
    assert requests == [], requests
    assert not page_errors, str(page_errors)


def test_app_lesson_live_widget_trains_after_the_answer(page, page_errors):
    page.goto("/lesson?lesson_step=4")
    page.wait_for_selector(APP_IDLE)
    assert page.locator(".kl-live-host").count() == 0  # predict first
    step = next(s for s in STEPS if s.key == "both")
    page.get_by_text(step.choices[step.answer]).click()
    page.get_by_role("button", name="Check").click()
    page.wait_for_selector(".kl-live-host .kl-live-step", timeout=TIMEOUT_MS)
    page.wait_for_selector(APP_IDLE)
    counter = page.locator(".kl-live-host .kl-live-step").element_handle()  # (inside the component's shadow root)
    reached = "([el, t]) => Number(el.textContent.match(/\\d+/)[0]) >= t"
    page.wait_for_function(reached, arg=[counter, 50])  # it trains: the step counter advances
    first = int(counter.inner_text().split()[-1])
    page.wait_for_function(reached, arg=[counter, first + 50])
    assert page.locator(".kl-live-host .kl-live-card").count() == 3  # forward, reverse and the losses
    assert page.locator(".kl-live-host .kl-live-read").first.inner_text().startswith("best start: KL(p‖q)")
    assert not page_errors, str(page_errors)
