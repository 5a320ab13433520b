"""Hostile URLs in chromium: no exception element, no <img>/<a> made from user text, no request off 127.0.0.1.

A sample of the AppTest fuzzer's URLs (tests/test_app_fuzz.py, same payloads, own seed) spread over every
page, opened in one real browser: the DOM is checked for elements built from the payloads and every
network request the page makes is recorded (a shared link must not make visitors load anything from
another host).
"""

from __future__ import annotations

import random
from urllib.parse import urlencode, urlparse

import pytest
from test_app_fuzz import HOSTILE, PAGE_KEYS, PAYLOADS, hostile_url

pytestmark = pytest.mark.e2e

APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
TIMEOUT_MS = 90_000
URL_PATHS = {"lab_1d": "", **{p: p for p in PAGE_KEYS if p != "lab_1d"}}
N_URLS = 54  # 6 per page
LOCAL_SCHEMES = ("data", "blob", "about")


def urls() -> list[str]:
    rng = random.Random(2026)
    out = []
    pages = list(URL_PATHS)
    for i in range(N_URLS):
        page = pages[i % len(pages)]
        params = hostile_url(rng, PAGE_KEYS[page])
        if i < len(pages):  # the first URL of every page carries every payload at once
            params = {"m3": PAYLOADS[0], "w2": PAYLOADS[1], "zzz": PAYLOADS[3], PAYLOADS[10]: "1", **params}
        flat = [(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])]
        out.append(f"/{URL_PATHS[page]}?{urlencode(flat)}")
    return out


URLS = urls()


def test_hostile_urls_in_chromium(page, page_errors, app_url):
    assert len(URLS) >= 50 and any(h in u for u in URLS for h in ("nan", "inf")) and HOSTILE
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    failures = []
    for url in URLS:
        requests.clear()
        page.goto(url)
        page.wait_for_selector('[data-testid="stApp"]', timeout=TIMEOUT_MS)
        page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)
        page.wait_for_timeout(200)  # late image loads of a rendered payload would show up here
        found = page.evaluate(
            """() => ({
                exceptions: [...document.querySelectorAll('[data-testid="stException"]')]
                    .map(e => e.innerText.slice(0, 1500)),
                errors: [...document.querySelectorAll('[data-testid="stAlertContentError"]')].map(e => e.innerText),
                imgs: [...document.querySelectorAll('img')].map(i => i.getAttribute('src') || '')
                    .filter(s => /MARK|evil|^https?:/.test(s)),
                links: [...document.querySelectorAll('a')].map(a => a.getAttribute('href') || '')
                    .filter(h => /MARK|evil|javascript:/.test(h)),
                scripts: [...document.querySelectorAll('script')].filter(s => /MARK/.test(s.textContent)).length,
                bold: [...document.querySelectorAll('strong, b, h1, h2, h3')].filter(e => /MARK/.test(e.textContent))
                    .length,
            })"""
        )
        off_host = [
            r for r in requests if urlparse(r).scheme not in LOCAL_SCHEMES and urlparse(r).hostname != "127.0.0.1"
        ]
        bad = {k: v for k, v in found.items() if v} | ({"requests": off_host} if off_host else {})
        if bad:
            failures.append((url[:200], bad))
    assert not failures, failures[:5]
    assert not page_errors, str(page_errors)


def test_the_scenario_uploader_states_and_enforces_its_limit(page, page_errors, tmp_path):
    """The drop zone says 64 KB (not Streamlit's 200MB); 70 KB is refused by the app, 2 MB by Streamlit itself."""
    page.goto("/")
    page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot', timeout=TIMEOUT_MS)
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT_MS)
    panel = page.locator('[data-testid="stExpander"]', has=page.locator("summary", has_text="Export"))
    panel.locator("summary").click()
    uploader = panel.locator('[data-testid="stFileUploader"]')
    uploader.wait_for(timeout=TIMEOUT_MS)
    shown = panel.inner_text()
    assert "64 KB" in shown and "200MB" not in shown and "200 MB" not in shown, shown
    files = panel.locator('input[type="file"]')

    padded = tmp_path / "padded.json"
    padded.write_text('{"version": 1}' + " " * 70_000)
    files.set_input_files(str(padded))
    message = panel.locator('[data-testid="stAlertContentError"]')
    message.wait_for(timeout=TIMEOUT_MS)
    assert "a scenario file is at most 65536 bytes (64 KB)" in message.inner_text()

    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 * 1024 * 1024))
    files.set_input_files(str(big))
    page.wait_for_timeout(1000)
    assert "1.0MB or smaller" in panel.inner_text() or "too large" in panel.inner_text().lower()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not page_errors, str(page_errors)
