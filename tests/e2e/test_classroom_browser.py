"""The app in a classroom, in a real browser: keyboard-only animation and quiz, screen-reader text, phone widths.

Also writes the screenshots of every page at 1400 px, at 390 px and in the dark theme to
``assets/screenshots/<page>_<variant>.png`` (variants ``1400``, ``390``, ``dark``), failing on any
exception element or page error. The keyboard controls are app/controls.py's: native buttons and a
range input above each animated chart, driving plotly's own (SVG) controls in the browser.
"""

from __future__ import annotations

import re

import pytest

from .test_browser import APP_IDLE, CHART, EXCEPTION, PAGES, SCREENSHOTS, open_page, wait_until

pytestmark = pytest.mark.e2e

BAR = ".kl-anim-keys"
TAB_LIMIT = 120  # Tab presses allowed to reach a control from the top of the page

# the first animated chart's frame: plotly's slider position, the step count and the current label
FRAME = """() => {
    const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
    const s = gd._fullLayout.sliders[0];
    return {active: s.active, count: s.steps.length, label: s.steps[s.active].label};
}"""
FOCUSED_NAME = "() => document.activeElement && document.activeElement.getAttribute('aria-label')"


def context_page(browser, app_url: str, page_errors, width: int, theme: str = "light"):
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=theme, base_url=app_url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda m: page_errors.record_console(m))
    page.on("pageerror", lambda e: page_errors.page.append(str(e)))
    return context, page


def tab_to(page, name: str) -> int:
    """Press Tab until the element with aria-label ``name`` has the focus; returns the presses it took."""
    for presses in range(1, TAB_LIMIT + 1):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_NAME) == name:
            return presses
    pytest.fail(f"{name!r} not reached with {TAB_LIMIT} Tab presses", pytrace=False)


@pytest.mark.parametrize("path", ["/", "/lab_2d"])
def test_keyboard_alone_plays_pauses_steps_and_scrubs_the_animation(page, page_errors, path):
    # the 1-D lab holds the live widget above its replay: Tab passes through the widget's mode handles, whose
    # key release once reported an unchanged teacher, and the rerun rebuilt the replay bar under the focus
    open_page(page, path)
    page.wait_for_selector(BAR)
    start = page.evaluate(FRAME)
    assert start["active"] == start["count"] - 1  # the figure opens on its last frame (the result)
    tab_to(page, "Play")
    page.keyboard.press("Enter")  # at the end, Play replays from the start
    wait_until(page, "Play did not start the animation", f"() => ({FRAME})().active < {start['count'] - 1}", None, 5000)
    first = page.evaluate(FRAME)["active"]
    wait_until(page, "the frame did not advance", f"() => ({FRAME})().active > {first}", None, 5000)
    page.keyboard.press("Tab")  # Play -> Pause
    assert page.evaluate(FOCUSED_NAME) == "Pause"
    page.keyboard.press("Space")
    page.wait_for_timeout(300)
    paused = page.evaluate(FRAME)
    page.wait_for_timeout(400)
    assert page.evaluate(FRAME) == paused, "Pause did not stop the animation"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_NAME) == "Step back"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_NAME) == "Step forward"
    page.keyboard.press("Enter")
    wait_until(page, "Step did not move one frame", f"() => ({FRAME})().active === {paused['active'] + 1}", None, 3000)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Step back
    wait_until(page, "Step back did not move back", f"() => ({FRAME})().active === {paused['active']}", None, 3000)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED_NAME) == "Animation frame"
    page.keyboard.press("ArrowRight")
    wait_until(page, "ArrowRight did not scrub", f"() => ({FRAME})().active === {paused['active'] + 1}", None, 3000)
    page.keyboard.press("Home")
    wait_until(page, "Home did not go to the first frame", f"() => ({FRAME})().active === 0", None, 3000)
    page.keyboard.press("End")
    wait_until(
        page, "End did not go to the last frame", f"() => ({FRAME})().active === {start['count'] - 1}", None, 3000
    )
    scrubber = page.get_by_role("slider", name="Animation frame")
    frame = page.evaluate(FRAME)
    assert scrubber.get_attribute("aria-valuetext").endswith(frame["label"])  # the frame is announced by its step
    assert page.locator(f"{BAR} output").inner_text().endswith(frame["label"])
    # the frame label plotly draws on the chart says the same
    assert frame["label"] in page.locator(f"{CHART} .slider-container").first.text_content()
    assert page.get_attribute(APP_IDLE, "data-test-script-state") == "notRunning"  # no server rerun per frame
    assert not page_errors, str(page_errors)


def test_the_quiz_waits_for_check_when_answered_with_the_keyboard(page, page_errors):
    open_page(page, "/lesson")
    radios = page.get_by_role("radio")
    assert radios.count() == 3 and not any(radios.nth(i).is_checked() for i in range(3))
    radios.first.focus()
    page.keyboard.press("ArrowDown")  # the student looks at the options...
    page.keyboard.press("ArrowDown")
    page.wait_for_timeout(800)
    assert radios.nth(2).is_checked()
    alerts = page.locator('[data-testid="stAlert"]')
    assert alerts.count() == 0, "the quiz revealed the answer before Check"
    assert page.get_by_text("What happened:").count() == 0
    page.keyboard.press("Tab")  # ...then moves to Check and presses it
    focused = page.evaluate("() => document.activeElement.innerText")
    assert focused.strip() == "Check"
    page.keyboard.press("Enter")
    page.wait_for_selector('[data-testid="stAlert"]')
    page.wait_for_selector(APP_IDLE)
    assert "Right" in alerts.first.inner_text()
    # the revealed chart is named for screen readers by its caption
    figure = page.get_by_role("figure", name=re.compile("What happened: forward KL prefers A"))
    figure.wait_for()
    assert not page.locator(EXCEPTION).count() and not page_errors, str(page_errors)


def test_charts_carry_their_caption_as_text_alternative(page, page_errors):
    open_page(page, "/")
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    wait_until(
        page, "the chart got no aria-label", "() => !!document.querySelector('[role=figure][aria-label]')", None, 5000
    )
    label = chart.get_attribute("aria-label")
    caption = (
        page.locator('[data-testid="stMarkdown"]')
        .filter(has_text=re.compile(r"forward KL: .*starts"))
        .first.inner_text()
    )
    assert chart.get_attribute("role") == "figure" and "Where the students ended" in label
    assert caption.strip()[:40] in label
    # and it is in the accessibility tree, where a screen reader reads it
    assert page.get_by_role("figure", name=re.compile("Where the students ended")).count() == 1
    assert not page_errors, str(page_errors)


@pytest.mark.parametrize("width", [390, 650, 820])
def test_rl_parts_are_tabs_charts_stack_and_tables_fit_on_phone_and_tablet(browser, app_url, page_errors, width):
    context, page = context_page(browser, app_url, page_errors, width)
    try:
        open_page(page, "/rl")
        tab = page.get_by_role("tab", name="3. KL estimators k1, k2, k3")
        tab.click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('h2')].some(h => h.innerText.startsWith('3. The KL estimators'))"
        )
        page.wait_for_selector(APP_IDLE)
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot').length == 2"
        )
        assert "rl_part=estimators" in page.url
        boxes = [c.bounding_box() for c in page.locator('[data-testid="stPlotlyChart"]').all()]
        if width < 700:  # one plot column: the two side-by-side charts stack
            assert abs(boxes[0]["x"] - boxes[1]["x"]) < 2 and boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 2
        else:
            assert boxes[1]["x"] > boxes[0]["x"] + 50  # room for two: side by side
        for box in boxes:
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        # no table is cut off: each fits the viewport (a wide one scrolls inside its own box)
        tables = page.locator('[data-testid="stDataFrame"], [data-testid="stTable"]').all()
        assert tables
        for table in tables:
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, box
        overflow = page.evaluate("() => document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page scrolls sideways by {overflow} px at {width} px"
        assert not page.locator(EXCEPTION).count() and not page_errors, str(page_errors)
    finally:
        context.close()


def test_theory_equations_scroll_instead_of_running_off_a_phone(browser, app_url, page_errors):
    context, page = context_page(browser, app_url, page_errors, 390)
    try:
        open_page(page, "/theory", expect_chart=False)
        page.wait_for_selector(".katex-display")
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('.katex-display')].map(e => {
                const r = e.getBoundingClientRect(), style = getComputedStyle(e);
                return {right: r.right, wide: e.scrollWidth > e.clientWidth + 1, scrolls: style.overflowX === 'auto'};
            })"""
        )
        assert boxes and all(b["right"] <= 391 for b in boxes), boxes
        assert any(b["wide"] for b in boxes) and all(b["scrolls"] for b in boxes if b["wide"])
        assert not page_errors, str(page_errors)
    finally:
        context.close()


VARIANTS = [("1400", 1400, "light"), ("390", 390, "light"), ("dark", 1400, "dark")]
MAX_SHOT_PX = 8000  # the tallest screenshot: longer pages are cut there
# Streamlit scrolls its main section, not the document: a "full page" screenshot is the viewport only,
# so the viewport is grown to the content's height first
CONTENT_HEIGHT = """() => Math.max(window.innerHeight, ...[...document.querySelectorAll(
    '[data-testid="stMain"], [data-testid="stSidebarContent"]')]
    .filter(e => e.getBoundingClientRect().right > 0).map(e => e.scrollHeight))"""  # a collapsed sidebar is off-screen


@pytest.mark.parametrize("variant, width, theme", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_screenshots_of_every_page(browser, app_url, page_errors, variant, width, theme):
    context, page = context_page(browser, app_url, page_errors, width, theme)
    shown = []
    try:
        for app_page in PAGES:
            page.set_viewport_size({"width": width, "height": 900})
            open_page(page, app_page.path, expect_chart=app_page.has_chart)
            page.wait_for_timeout(1000)  # plotly finishes drawing (and the aids their bars) after the script
            page.set_viewport_size({"width": width, "height": min(page.evaluate(CONTENT_HEIGHT), MAX_SHOT_PX)})
            page.wait_for_timeout(700)
            page.screenshot(path=str(SCREENSHOTS / f"{app_page.name}_{variant}.png"), full_page=True)
            shown += [f"{app_page.path}: {t}" for t in page.locator(EXCEPTION).all_inner_texts()]
    finally:
        context.close()
    assert not shown, shown
    assert not page_errors, str(page_errors)
