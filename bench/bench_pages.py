"""Benchmark: the server work of every page, cold, warm and after one moved control, in Streamlit's AppTest.

One process runs every page of ``app/main.py`` headless (no browser: only the script's own work, as the
server does it) and times ``AppTest.run()``:

* **cold**: the page's default view with every cache empty: ``st.cache_data`` and ``st.cache_resource``
  cleared, and every ``functools`` cache of ``kl_core`` and ``app``. Target: at most 1.0 s.
* **warm**: the same view rerun with unchanged inputs (what a reconnecting browser or a widget that changes
  nothing costs). Target: at most 0.2 s.
* **interaction**: one control moved to a value not seen before (a cache miss), then rerun. Target: at most
  0.5 s on the landscape, family, 2-D, token and RL pages; the other pages are reported without one.

What is not page work is timed apart: the process's imports (streamlit, the app, kl_core, plotly, pandas,
torch: every module a page imports), and one first run of every page, which pays the costs a process pays
once (plotly's validators, lazily imported modules, Streamlit's component scan, compiling each script: AppTest
would recompile them on every run, a server does not). The measured runs come
after. Each number is the median of ``--repeat`` runs, the fastest in brackets (cold runs clear the caches
each time).

This shared 2-core machine has stretches when it runs up to twice as slow. To tell such a stretch from a
slower page, a fixed reference computation (a 1-D fit and a numpy workload) is timed in this process before
and after the pages and just before each page's runs (its own column). Run:

    python bench/bench_pages.py [--repeat 3] [--pages family,lab_2d]
"""

from __future__ import annotations

import argparse
import ast
import functools
import gc
import importlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "app" / "main.py"
VIEWS = ROOT / "app" / "views"
COLD_S, WARM_S, INTERACTION_S = 1.0, 0.2, 0.5  # the targets (seconds of server work)


@dataclass(frozen=True)
class Page:
    name: str  # the file under app/views/ (without .py)
    control: str | None  # what the interaction moves, in words (None: the page has no control to move)
    move: Callable | None  # AppTest -> None: moves that control to a fresh value
    interaction_target: bool  # whether the 0.5 s target applies to its interaction


def _slider(key: str, delta: float) -> Callable:
    def move(at) -> None:
        widget = at.slider(key=key)
        widget.set_value(round(widget.value + delta, 6))

    return move


def _click(key: str) -> Callable:
    return lambda at: at.button(key=key).click()


def _select_value(key: str):
    """selectbox options are labels in AppTest; set_value wants a value: pick the first other choice."""

    def move(at) -> None:
        widget = at.selectbox(key=key)
        from app import state as schema

        choices = schema.FIELDS[key.removeprefix("w_")].choices
        widget.set_value(next(c for c in choices if c != widget.value))

    return move


PAGES = [
    Page("lesson", "Next → (step 2)", _click("lesson_next"), False),
    Page("lab_1d", "Mode 1 mean +0.1", _slider("w_m1", 0.1), False),
    Page("landscape", "Mode 1 mean +0.1", _slider("w_m1", 0.1), True),
    Page("family", "Mode 1 mean +0.1", _slider("w_m1", 0.1), True),
    Page("lab_2d", "Learning rate (2-D) +0.005", _slider("w_lr2d", 0.005), True),
    Page("tokens", "Learning rate (tokens) +0.01", _slider("w_tok_lr", 0.01), True),
    Page("rl", "Samples per gradient step +2", _slider("w_rl_samples", 2), True),
    Page("lm", "Language: the next one", _select_value("w_lm_language"), False),
    Page("theory", None, None, False),
]


# -- what is not page work ---------------------------------------------------------------------------------


def import_everything() -> float:
    """Import streamlit's AppTest and every module a page imports (read from the pages' source); seconds."""
    started = time.perf_counter()
    importlib.import_module("streamlit.testing.v1")
    for path in [MAIN, *sorted(VIEWS.glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                try:
                    importlib.import_module(name)
                except ImportError:  # "from x import function": a name, not a module
                    pass
    return time.perf_counter() - started


def clear_caches() -> None:
    """Empty st.cache_data, st.cache_resource and every functools cache in kl_core and app."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    for name, module in list(sys.modules.items()):
        if not (name.split(".")[0] in ("kl_core", "app") and module is not None):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()
    gc.collect()


# -- the reference ----------------------------------------------------------------------------------------


def reference_seconds(repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of a fixed workload: a 1-D fit (8 starts x 300 steps) and numpy sums."""
    import numpy as np

    import kl_core as kc

    teacher = kc.GaussianMixture([0.5, 0.5], [-3.0, 3.0], [1.0, 1.0])
    data = np.random.default_rng(0).standard_normal((400, 2048))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        kc.fit(teacher, kc.Gaussian(0.5, 1.0), "reverse_kl", steps=300, lr=0.05, inits=8, seed=0)
        for _ in range(20):
            np.exp(data).sum()
        times.append(time.perf_counter() - started)
    return min(times)


# -- the pages ----------------------------------------------------------------------------------------------


class Session:
    """Fresh AppTests of the app, opened on a page, that share what a server does once (the component scan)."""

    def __init__(self) -> None:
        import streamlit.testing.v1.app_test as app_test
        from streamlit.testing.v1 import AppTest

        # a server compiles each script once (its ScriptCache lives as long as the server); AppTest makes a new
        # cache for every run, so each run would recompile main.py and the page (with Streamlit's magic)
        script_cache = app_test.ScriptCache()
        app_test.ScriptCache = lambda: script_cache
        self.AppTest = AppTest
        started = time.perf_counter()
        first = AppTest.from_file(str(MAIN), default_timeout=600)
        first.run()  # the default page; registers the pages (their url paths) and scans the components
        self.startup_s = time.perf_counter() - started
        self.pages, self.components = first._registered_pages, first._bidi_component_manager

    def open(self, page: str):
        at = self.AppTest.from_file(str(MAIN), default_timeout=600)
        at._bidi_component_manager = self.components  # AppTest scans installed components per instance
        if page != "lab_1d":  # the default page
            at._registered_pages = self.pages  # so switch_page finds st.navigation's url-path hashes
            at.switch_page(f"views/{page}.py")
        return at


def timed_run(at) -> float:
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"the page shows an exception: {at.exception[0].value}")
    return seconds


@dataclass
class Result:
    page: Page
    cold: list[float]
    warm: list[float]
    interaction: list[float]
    reference: float  # the reference workload just before this page's runs


def measure(session: Session, page: Page, repeat: int) -> Result:
    reference = reference_seconds(repeats=2)
    colds, warms, moves = [], [], []
    for i in range(repeat):
        clear_caches()
        at = session.open(page.name)
        colds.append(timed_run(at))
        warms.append(timed_run(at))
        if page.move is not None:
            for _ in range(i + 1):  # the i-th repeat moves i + 1 times from the default: a fresh value each time
                page.move(at)
            moves.append(timed_run(at))
    return Result(page, colds, warms, moves, reference)


def verdict(seconds: list[float], target: float | None) -> str:
    """The median (the fastest run in brackets), and whether the median meets the target."""
    if not seconds:
        return "—"
    median = statistics.median(seconds)
    text = f"{median:.2f} s" + (f" ({min(seconds):.2f})" if len(seconds) > 1 else "")
    return text if target is None else f"{text} {'✅' if median <= target else '❌'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median is shown")
    parser.add_argument("--pages", default=",".join(p.name for p in PAGES), help="comma-separated page names")
    args = parser.parse_args()
    chosen = [p for p in PAGES if p.name in args.pages.split(",")]
    if args.repeat < 1 or not chosen:
        parser.error(f"--repeat must be at least 1 and --pages name some of {[p.name for p in PAGES]}")
    sys.path.insert(0, str(ROOT))
    logging.disable(logging.WARNING)  # AppTest's "no runtime" warnings

    imports_s = import_everything()
    reference_before = reference_seconds()
    session = Session()
    started = time.perf_counter()
    for page in chosen:  # one first run of each page: what a process pays once
        clear_caches()
        timed_run(session.open(page.name))
    first_runs_s = time.perf_counter() - started
    results = [measure(session, page, args.repeat) for page in chosen]
    reference_after = reference_seconds()

    print(
        f"process imports: {imports_s:.2f} s; AppTest start-up (first run of the default page, component "
        f"scan): {session.startup_s:.2f} s; one first run of every page chosen (the costs a process pays once): "
        f"{first_runs_s:.2f} s. None of these is counted below."
    )
    print(f"reference workload: {reference_before:.3f} s before the pages, {reference_after:.3f} s after")
    print(f"median of {args.repeat} runs each (the fastest in brackets); targets, on the median: cold ≤ {COLD_S} s, "
          f"warm ≤ {WARM_S} s, interaction ≤ {INTERACTION_S} s (✅ met, ❌ not met)\n")  # fmt: skip
    print("| page | cold (caches empty) | warm rerun | interaction | control moved | reference just before |")
    print("|---|---:|---:|---:|---|---:|")
    for r in results:
        target = INTERACTION_S if r.page.interaction_target else None
        print(
            f"| {r.page.name} | {verdict(r.cold, COLD_S)} | {verdict(r.warm, WARM_S)} "
            f"| {verdict(r.interaction, target)} | {r.page.control or '(no control)'} | {r.reference:.3f} s |"
        )
    print(f"\nreference before / after: {reference_before:.3f} / {reference_after:.3f} s")


if __name__ == "__main__":
    main()
