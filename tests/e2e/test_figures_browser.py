"""Figures in a real browser: no two titles overlap at desktop, tablet and phone widths, and figure text is readable.

Issue 10: with three or more objectives (and with two on a phone) the 1-D lab's middle-row titles
ran into one unreadable line, and "x" axis titles ran into the next row's title (family page, RL
estimators). Here every title the plots draw (``.gtitle``, annotations: subplot titles and row
labels, axis titles ``.xtitle``/``.x2title``/..., ``.ytitle``/...) is measured with
``getBoundingClientRect`` in chromium (tests/e2e/figure_boxes.js), at 1400, 820 and 390 px, and no
two of one chart may overlap. The second test reads the colour chromium actually paints each text
with (Streamlit's theme applied) and checks WCAG AA contrast against the page, light and dark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kl_core.viz.theme import contrast_ratio

from .test_browser import open_page

pytestmark = pytest.mark.e2e

BOXES_JS = (Path(__file__).parent / "figure_boxes.js").read_text()
WIDTHS = (1400, 820, 390)
FIVE = "forward_kl,reverse_kl,jsd,tv,skew_forward_kl"
VIEWS = {  # what to open: the 1-D lab with 2 and 5 objectives, the family page, the RL estimators part
    "lab, 2 objectives": "/?objectives=forward_kl,reverse_kl",
    "lab, 5 objectives": f"/?objectives={FIVE}",
    "family": "/family",
    "rl estimators": "/rl?rl_part=estimators",
}

# every text a chart paints, with the colour chromium computed for it (theme applied); the
# buttons' labels sit on their own light button, the hidden slider ticks are transparent
TEXT_COLOURS_JS = """() => {
    const out = [];
    document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg text').forEach(el => {
        if (!el.textContent.trim() || el.closest('.updatemenu-container')) return;
        const r = el.getBoundingClientRect();
        const style = getComputedStyle(el);
        if (r.width === 0 || style.visibility === 'hidden' || style.display === 'none') return;
        out.push({text: el.textContent.trim().slice(0, 40), cls: el.getAttribute('class') || '',
                  fill: style.fill, opacity: parseFloat(style.fillOpacity) * parseFloat(style.opacity)});
    });
    const app = getComputedStyle(document.querySelector('[data-testid="stApp"]')).backgroundColor;
    return {texts: out, background: app};
}"""


def _context(browser, app_url: str, width: int, scheme: str = "light"):
    context = browser.new_context(
        viewport={"width": width, "height": 900}, base_url=app_url, color_scheme=scheme, device_scale_factor=1
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    return context, page


def low_contrast(page, name: str) -> list[str]:
    """Texts of the page's charts painted below WCAG AA's 4.5:1 against the page's own background."""
    painted = page.evaluate(TEXT_COLOURS_JS)
    background = _rgb(painted["background"])
    assert len(painted["texts"]) > 20, f"{name}: the chart texts were not found"
    low = []
    for t in painted["texts"]:
        if t["opacity"] == 0 or t["fill"] in ("none", "rgba(0, 0, 0, 0)"):
            continue  # the slider's hidden tick labels
        ratio = contrast_ratio(_rgb(t["fill"]), background)
        if ratio < 4.5:
            low.append(f"{name}: {t['cls']} {t['text']!r} {t['fill']} on {background}: {ratio:.2f}:1")
    return low


@pytest.mark.parametrize("width", WIDTHS)
def test_no_two_titles_overlap(browser, app_url, width):
    """Every view at this width; at 1400 px the text colours as painted are checked on the way (light theme)."""
    context, page = _context(browser, app_url, width)
    try:
        problems = []
        for name, path in VIEWS.items():
            open_page(page, path)
            measured = page.evaluate(BOXES_JS)
            assert measured["boxes"], f"{name}: no titles measured"  # the selectors still find the titles
            problems += [f"{name} at {width} px: {o}" for o in measured["overlaps"]]
            if width == WIDTHS[0]:
                problems += low_contrast(page, name)
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def _rgb(css: str) -> str:
    """A computed CSS colour ("rgb(r, g, b)" / "rgba(r, g, b, a)") as the contrast helper's notation."""
    return css.replace(" ", "")


def test_figure_text_meets_wcag_aa_on_the_dark_theme(browser, app_url):
    context, page = _context(browser, app_url, 1400, "dark")
    try:
        open_page(page, VIEWS["lab, 2 objectives"])
        background = _rgb(page.evaluate(TEXT_COLOURS_JS)["background"])
        assert contrast_ratio(background, "#000000") < 2.0, background  # Streamlit followed the dark scheme
        low = low_contrast(page, "lab, dark")
        assert not low, "\n".join(low[:20])
    finally:
        context.close()
