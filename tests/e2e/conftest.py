"""Fixtures for the real-browser tests: a Streamlit server, a headless chromium, and a page that records errors.

The browser is Debian's chromium (never a downloaded one) driven by the sync Playwright API.
Outside CI a missing chromium or playwright skips these tests with the command that enables them;
in CI (``CI=true``) it fails them, so a broken install cannot pass as green.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # playwright may be missing: the fixtures then skip or fail with a hint
    from playwright.sync_api import ConsoleMessage

from .harness import APP, CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, free_port, start_server, stop_server

VIEWPORT = {"width": 1400, "height": 900}
ENABLE_HINT = "apt-get install -y chromium && pip install playwright  (never `playwright install`)"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: drives the real app in a headless chromium (slow, needs chromium)")


def _missing_requirements() -> list[str]:
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"chromium executable at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright")
    return missing


@pytest.fixture(scope="session")
def browser_requirements() -> None:
    """Skip (locally) or fail (CI=true) when chromium or playwright is missing."""
    missing = _missing_requirements()
    if not missing:
        return
    message = f"browser tests need {' and '.join(missing)}; enable them with: {ENABLE_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def app_url(browser_requirements: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of ``streamlit run app/main.py``, started once per session."""
    if not (REPO_ROOT / APP).is_file():
        pytest.fail(f"{APP} does not exist under {REPO_ROOT}", pytrace=False)
    port = free_port()
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    try:
        process = start_server(port, log_path)
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def browser(browser_requirements: None):
    """One headless Debian chromium for the session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Streamlit's frontend probes the server first under the page's own path when a sub-page is opened
# directly, gets 404 there, then uses the root (streamlit/streamlit#7074, open). Those two 404s are
# Streamlit's, not the app's: they are the only console errors tolerated.
_KNOWN_SUBPAGE_PROBE = re.compile(r"^https?://[^/]+/[^/_][^/]*/_stcore/(health|host-config)$")


def _is_known_subpage_probe(message: ConsoleMessage) -> bool:
    return "404" in message.text and bool(_KNOWN_SUBPAGE_PROBE.match(message.location.get("url", "")))


@dataclass
class PageErrors:
    """What went wrong in the page: console messages of type "error" and uncaught exceptions."""

    console: list[str] = field(default_factory=list)
    page: list[str] = field(default_factory=list)

    def record_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not _is_known_subpage_probe(message):
            where = message.location.get("url", "")
            self.console.append(f"{message.text} ({where})" if where else message.text)

    def __bool__(self) -> bool:
        return bool(self.console or self.page)

    def __str__(self) -> str:
        lines = [f"console error: {m}" for m in self.console] + [f"page error: {m}" for m in self.page]
        return "\n".join(lines)


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser, app_url: str, page_errors: PageErrors):
    """A fresh 1400x900 page (own context) whose console errors and page errors land in ``page_errors``."""
    context = browser.new_context(viewport=VIEWPORT, base_url=app_url)
    new_page = context.new_page()
    new_page.set_default_timeout(30_000)
    new_page.on("console", lambda m: page_errors.record_console(m))
    new_page.on("pageerror", lambda e: page_errors.page.append(str(e)))
    yield new_page
    context.close()
