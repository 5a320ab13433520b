"""Benchmark: how long the app takes from a slider release to the redrawn chart, in a real headless chromium.

Starts ``streamlit run app/main.py`` on a free port, opens the default page (the 1-D lab) and moves the
"Mode 1 mean" slider ``--moves`` times. Each move is timed in the browser's own clock, from the
key's ``keyup`` event to the first animation frame at which the first chart's teacher trace
(``_fullData[0].y``) differs from before AND the script has finished (``notRunning``). Run:

    python bench/bench_app.py [--moves 12]
    python bench/bench_app.py --concurrent 10 [--rounds 3] [--pin]

The moves follow the pattern +step, -page, +step, +page (arrow keys and PageUp/PageDown), so the
direction alternates and the value stays near its default, yet each move lands on a value not seen
before in this run, so no move is a cache hit of an earlier one (for this slider, step 0.1 and page
2.0, that holds for the first 40 moves; a revisited value is flagged). Needs Debian's chromium at
/usr/bin/chromium and ``pip install playwright`` (never ``playwright install``).

Concurrent mode (``--concurrent N``): N browser sessions (one chromium context each) on one server,
each on its own page and control (the 1-D lab, loss landscape, divergence family, 2-D lab, token lab,
RL page, lesson, then second controls of some; see ``CONCURRENT``). Each session moves its control
``--rounds`` times; in a round every session presses its key at (nearly) the same moment, and each
is timed in its own page, from its keyup to the first animation frame at which one of its charts
shows new data and its script has finished. The single-session time of the same page and the same
moves comes first, in the same run: one session at a time on a fresh server; then the N sessions on
another fresh server, so both phases compute the same values from cold caches. Printed: one row per
session (page, single-session median, concurrent median, ratio) and the median ratio (target <= 3),
and the server's own CPU time (utime + stime from /proc) over each phase.

``--spread S`` (concurrent mode): in each round the sessions press at seeded random moments within S seconds
instead of all at once (a class whose learners move their controls within a few seconds of each other);
each move is still timed from its own keyup.

``--pin`` (concurrent mode, Linux, at least 2 CPUs) runs the server on CPU 0 and this driver, playwright and
every chromium process on the others, in both phases. In a class each learner's browser runs on its own
device; on this 2-core machine without ``--pin`` the N renderers share the server's cores, so a concurrent
move also waits for N - 1 other pages' plotly draws. Pinned, the server has one core to itself (a Streamlit
server's scripts share one GIL; numpy releases it in its loops) and the browsers share the rest: the ratio
then measures what the server's queue adds, with the browsers' own slowdown still counted against it.

This shared 2-core machine runs some stretches up to twice as slow as others. To tell such a
stretch from a slower app, the bench also times a fixed reference computation, the page's default
fits (``app.model.lab_1d_runs`` on the default state), in its own process before and after the moves.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from e2e.harness import CHROMIUM, CHROMIUM_ARGS, cpu_seconds, free_port, start_server, stop_server  # noqa: E402

SLIDER_LABEL = "Mode 1 mean"
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
KEYS = ["ArrowRight", "PageDown", "ArrowRight", "PageUp"]  # +step, -page, +step, +page: fresh values
FIRST_CHART_TIMEOUT_MS = 60_000
MOVE_TIMEOUT_MS = 30_000

# Remember when the last key went up, in the page's clock (event.timeStamp is performance.now()-based),
# and when the script last started and stopped running, to split each move into script time and the rest.
RECORD_EVENTS = """() => {
    document.addEventListener('keyup', e => { window.__benchKeyup = e.timeStamp; }, true);
    const app = document.querySelector('[data-testid="stApp"]');
    window.__benchScript = [];
    new MutationObserver(() => {
        window.__benchScript.push([app.getAttribute('data-test-script-state'), performance.now()]);
    }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""

# Seconds the script ran after the key went up: from its first "running" to the last "notRunning".
SCRIPT_SECONDS = """() => {
    const after = window.__benchScript.filter(([, t]) => t >= window.__benchKeyup);
    const start = after.find(([state]) => state === 'running');
    const end = after.filter(([state]) => state === 'notRunning').pop();
    return start && end ? (end[1] - start[1]) / 1000 : null;
}"""

# The first chart's teacher density, as a plain array.
TEACHER_Y = f"() => Array.from(document.querySelector('{CHART}')._fullData[0].y)"

# performance.now() at the first frame where the teacher trace changed and the script is done, else false.
REDRAWN_AT = f"""(before) => {{
    if (document.querySelector('{APP_IDLE}') === null) return false;
    const el = document.querySelector('{CHART}');
    if (!el || !el._fullData || !el._fullData[0]) return false;
    const y = el._fullData[0].y;
    const changed = y.length !== before.length || Array.prototype.some.call(y, (v, i) => v !== before[i]);
    return changed ? performance.now() : false;
}}"""


@dataclass(frozen=True)
class Move:
    key: str  # the key pressed and released
    value: float  # the slider's value after the move
    seconds: float  # key release -> redrawn chart
    script_seconds: float | None  # of which the script was running (None: no running state was seen)
    revisited: bool  # the value was seen earlier in this run, so the app may answer from its cache


def measure(base_url: str, moves: int) -> tuple[float, list[Move]]:
    """(seconds from goto to the first drawn chart and idle script, one Move per slider move)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            started = time.perf_counter()
            page.goto(base_url)
            page.wait_for_selector(CHART, timeout=FIRST_CHART_TIMEOUT_MS)
            page.wait_for_selector(APP_IDLE, timeout=FIRST_CHART_TIMEOUT_MS)
            first_chart_s = time.perf_counter() - started
            exception = page.locator('[data-testid="stException"]')
            if exception.count():
                raise RuntimeError(f"the app shows an exception:\n{exception.first.inner_text()}")
            page.evaluate(RECORD_EVENTS)

            slider = page.get_by_role("slider", name=SLIDER_LABEL)
            seen = {float(slider.input_value())}
            results = []
            for i in range(moves):
                key = KEYS[i % len(KEYS)]
                before = page.evaluate(TEACHER_Y)
                slider.focus()
                page.keyboard.down(key)
                page.keyboard.up(key)
                drawn_at = page.wait_for_function(REDRAWN_AT, arg=before, polling="raf", timeout=MOVE_TIMEOUT_MS)
                seconds = (drawn_at.json_value() - page.evaluate("() => window.__benchKeyup")) / 1000
                value = float(slider.input_value())
                script_seconds = page.evaluate(SCRIPT_SECONDS)
                results.append(Move(key, value, seconds, script_seconds, revisited=value in seen))
                seen.add(value)
            return first_chart_s, results
        finally:
            browser.close()


# -- concurrent sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageMove:
    path: str  # the page's url path ("" is the default page, the 1-D lab)
    label: str  # the slider moved
    key: str  # the key pressed on it (each press lands on a value not seen before on that page)


CONCURRENT = (
    PageMove("", "Mode 1 mean", "ArrowLeft"),
    PageMove("landscape", "Mode 1 mean", "ArrowLeft"),
    PageMove("family", "Mode 1 mean", "ArrowLeft"),
    PageMove("lab_2d", "Learning rate (2-D)", "ArrowLeft"),
    PageMove("tokens", "Learning rate (tokens)", "ArrowLeft"),
    PageMove("rl", "Learning rate", "ArrowLeft"),
    PageMove("lesson", "Lesson step", "ArrowRight"),
    PageMove("", "Mode 2 std", "ArrowLeft"),
    PageMove("family", "Values in the sweep", "ArrowLeft"),
    PageMove("landscape", "Grid points per axis", "ArrowLeft"),
    PageMove("tokens", "Temperature", "ArrowLeft"),
)  # not the language-model lab: its charts change only when a training job (the Train button) ends
LOAD_TIMEOUT_MS = 300_000
CONCURRENT_MOVE_TIMEOUT_S = 300.0

# A signature of every chart's drawn data (each trace's x, y and z: length and sum), as a string.
SIGNATURE = """() => {
    const sig = [];
    for (const el of document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')) {
        for (const t of (el._fullData || [])) {
            for (const k of ['x', 'y', 'z']) {
                const v = t[k];
                if (!v || typeof v.length !== 'number') continue;
                let s = 0, n = 0;
                for (let i = 0; i < v.length; i++) {
                    const row = v[i];
                    if (row !== null && typeof row === 'object' && typeof row.length === 'number') {
                        for (let j = 0; j < row.length; j++) if (Number.isFinite(row[j])) { s += row[j]; n++; }
                    } else if (Number.isFinite(row)) { s += row; n++; }
                }
                sig.push(`${k}${v.length}:${n}:${s.toPrecision(12)}`);
            }
        }
        sig.push('|');
    }
    return sig.join(',');
}"""

# In the page: from now on, every animation frame, record performance.now() once a chart shows data other
# than ``before`` and the script is not running (window.__benchDrawnAt); keyup times land in __benchKeyup.
ARM = f"""(before) => {{
    const signature = {SIGNATURE};
    window.__benchDrawnAt = null;
    if (!window.__benchKeys) {{
        window.__benchKeys = true;
        document.addEventListener('keyup', e => {{ window.__benchKeyup = e.timeStamp; }}, true);
    }}
    const tick = () => {{
        if (document.querySelector('{APP_IDLE}') !== null && signature() !== before) {{
            window.__benchDrawnAt = performance.now();
            return;
        }}
        requestAnimationFrame(tick);
    }};
    requestAnimationFrame(tick);
}}"""


def open_move_page(browser, base_url: str, spec: PageMove):
    """A new context (own session) on the spec's page, loaded (a chart drawn, the script idle)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    page.goto(f"{base_url}/{spec.path}")
    page.wait_for_selector(CHART)
    page.wait_for_selector(APP_IDLE)
    exception = page.locator('[data-testid="stException"]')
    if exception.count():
        raise RuntimeError(f"/{spec.path} shows an exception:\n{exception.first.inner_text()}")
    return context, page


def press(page, spec: PageMove) -> None:
    """Arm the redraw recorder and press the spec's key on its slider (returns at once)."""
    page.evaluate(ARM, page.evaluate(SIGNATURE))
    page.get_by_role("slider", name=spec.label).focus()
    page.keyboard.down(spec.key)
    page.keyboard.up(spec.key)


def drawn_seconds(page, deadline: float) -> float | None:
    """Seconds from the last keyup to the redrawn chart, in the page's clock (None: no redraw by ``deadline``)."""
    try:
        page.wait_for_function(
            "() => window.__benchDrawnAt !== null", timeout=max(1.0, deadline - time.perf_counter()) * 1000
        )
    except Exception:  # noqa: BLE001 (playwright's TimeoutError: the control did not redraw a chart)
        return None
    return page.evaluate("() => (window.__benchDrawnAt - window.__benchKeyup) / 1000")


def single_sessions(base_url: str, specs, rounds: int, pid: int) -> tuple[list[list[float | None]], list[float]]:
    """Each spec's moves with no other session on the server (one after the other); also the server's CPU
    seconds over each spec's moves (its page load not counted)."""
    out, cpu = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for spec in specs:
                context, page = open_move_page(browser, base_url, spec)
                times, cpu0 = [], cpu_seconds(pid)
                for _ in range(rounds):
                    press(page, spec)
                    times.append(drawn_seconds(page, time.perf_counter() + CONCURRENT_MOVE_TIMEOUT_S))
                cpu.append(cpu_seconds(pid) - cpu0)
                context.close()
                out.append(times)
        finally:
            browser.close()
    return out, cpu


def concurrent_sessions(
    base_url: str, specs, rounds: int, pid: int, spread_s: float = 0.0
) -> tuple[list[list[float | None]], float]:
    """All specs' sessions open together; in each round every session presses its key (all at once, or with
    ``spread_s`` at seeded uniform random moments within that many seconds), then all are awaited. Also the
    server's CPU seconds over the rounds (page loads not counted)."""
    rng = random.Random(0)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = [open_move_page(browser, base_url, spec)[1] for spec in specs]
            time.sleep(2.0)  # the last loads settle
            out: list[list[float | None]] = [[] for _ in specs]
            cpu0 = cpu_seconds(pid)
            for _ in range(rounds):
                at = sorted((rng.uniform(0.0, spread_s), i) for i in range(len(specs)))
                started = time.perf_counter()
                for offset, i in at:
                    time.sleep(max(0.0, started + offset - time.perf_counter()))
                    press(pages[i], specs[i])
                deadline = time.perf_counter() + CONCURRENT_MOVE_TIMEOUT_S
                for times, page in zip(out, pages):
                    times.append(drawn_seconds(page, deadline))
            return out, cpu_seconds(pid) - cpu0
        finally:
            browser.close()


def _median(times: list[float | None]) -> float | None:
    done = [t for t in times if t is not None]
    return statistics.median(done) if len(done) == len(times) else None


def with_server(tmp: Path, name: str, work, cpus: set[int] | None = None):
    """``work(base_url, pid)`` against a fresh ``streamlit run`` (its log printed if it fails)."""
    port = free_port()
    log_path = tmp / f"{name}.log"
    server = start_server(port, log_path, cpus=cpus)
    try:
        return work(f"http://127.0.0.1:{port}", server.pid)
    except Exception:
        print(f"streamlit's output:\n{log_path.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        stop_server(server)


def main_concurrent(sessions: int, rounds: int, pin: bool = False, spread_s: float = 0.0) -> None:
    specs = [CONCURRENT[i % len(CONCURRENT)] for i in range(sessions)]
    server_cpus = None
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least 2 CPUs")
        server_cpus = {cpus[0]}
        os.sched_setaffinity(0, set(cpus[1:]))  # playwright's driver and chromium, started below, inherit it
    reference_before = reference_seconds()
    with tempfile.TemporaryDirectory(prefix="bench_app_") as tmp:
        single, cpu_single = with_server(
            Path(tmp), "single", lambda url, pid: single_sessions(url, specs, rounds, pid), server_cpus
        )
        load_single = os.getloadavg()[0]
        phase = lambda url, pid: concurrent_sessions(url, specs, rounds, pid, spread_s)  # noqa: E731
        together, cpu_together = with_server(Path(tmp), "concurrent", phase, server_cpus)
        load_together = os.getloadavg()[0]
    reference_after = reference_seconds()

    def fmt(t: float | None) -> str:
        return "no redraw" if t is None else f"{t:.2f} s"

    print(
        f"| page (control moved, {rounds} moves) | single session | server CPU per move (single) "
        f"| {sessions} sessions at once | ratio |"
    )
    print("|---|---:|---:|---:|---:|")
    ratios = []
    for spec, one, many, cpu in zip(specs, single, together, cpu_single):
        a, b = _median(one), _median(many)
        ratio = b / a if a and b else None
        if ratio is not None:
            ratios.append(ratio)
        name = f"/{spec.path} ({spec.label})"
        print(f"| {name} | {fmt(a)} | {cpu / rounds:.2f} s | {fmt(b)} | {'' if ratio is None else f'{ratio:.1f}x'} |")
    if ratios:
        print(f"median ratio over {len(ratios)} sessions: {statistics.median(ratios):.1f}x (target <= 3x)")
    where = f"server on CPU {min(server_cpus)}, browsers on the others" if pin else "server and browsers unpinned"
    when = f"pressed at random moments within {spread_s:g} s" if spread_s else "pressed at once"
    print(f"(each round: the {sessions} sessions' keys {when})")
    print(
        f"server CPU over the {len(specs) * rounds} moves ({where}): {sum(cpu_single):.2f} s one session at a time, "
        f"{cpu_together:.2f} s with {sessions} at once ({cpu_together / rounds:.2f} s per round of {sessions} moves)"
    )
    print(
        f"reference (the default 1-D fits, in this process): {reference_before:.3f} s before, "
        f"{reference_after:.3f} s after; load average {load_single:.1f} after the single-session phase, "
        f"{load_together:.1f} after the concurrent one"
    )


def reference_seconds(repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of the default page's fits in this process (the machine's speed now)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from app import model
    from app import state as schema

    state, _ = schema.parse({})
    args = model.lab_1d_args(state, state["objectives"])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.lab_1d_runs(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12, help="slider moves to time (at least 1; default 12)")
    parser.add_argument("--concurrent", type=int, default=0, help="sessions at once, each on its own page (0: off)")
    parser.add_argument("--rounds", type=int, default=3, help="concurrent mode: moves per session (default 3)")
    parser.add_argument("--pin", action="store_true", help="concurrent mode: server on CPU 0, browsers on the rest")
    parser.add_argument(
        "--spread", type=float, default=0.0, help="concurrent mode: press within this many seconds (default 0: at once)"
    )
    args = parser.parse_args()
    if args.moves < 1:
        parser.error("--moves must be at least 1")
    if not 0 <= args.concurrent <= 30 or not 1 <= args.rounds <= 20 or not 0 <= args.spread <= 60:
        parser.error("--concurrent must be in [0, 30], --rounds in [1, 20] and --spread in [0, 60]")
    if args.concurrent:
        main_concurrent(args.concurrent, args.rounds, pin=args.pin, spread_s=args.spread)
        return

    reference_before = reference_seconds()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench_app_") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        server = start_server(port, log_path)
        try:
            first_chart_s, results = measure(f"http://127.0.0.1:{port}", args.moves)
        except Exception:
            print(f"streamlit's output:\n{log_path.read_text()[-4000:]}", file=sys.stderr)
            raise
        finally:
            stop_server(server)
    reference_after = reference_seconds()

    print(f"first chart after goto (cold server): {first_chart_s:.2f} s")
    for i, move in enumerate(results, start=1):
        note = "  (revisited value: may be a cache hit)" if move.revisited else ""
        script = "?" if move.script_seconds is None else f"{move.script_seconds:.3f} s"
        where = f"{SLIDER_LABEL} = {move.value:6.2f}"
        print(f"move {i:2d}  {move.key:<10}  {where}  {move.seconds:.3f} s (script {script}){note}")
    times = [move.seconds for move in results]
    median, low, high = statistics.median(times), min(times), max(times)
    what = "app: slider release -> redrawn chart"
    print(f"{what} over {len(times)} moves: median {median:.3f} s, min {low:.3f} s, max {high:.3f} s")
    scripts = [move.script_seconds for move in results if move.script_seconds is not None]
    if scripts:
        print(f"  of which the script ran (median): {statistics.median(scripts):.3f} s")
    print(
        f"reference (the default fits, in this process): {reference_before:.3f} s before the moves, "
        f"{reference_after:.3f} s after"
    )
    print(
        f"| {what} | {len(times)} moves | {median:.3f} s | {low:.3f} s | {high:.3f} s "
        f"| {reference_before:.2f} / {reference_after:.2f} s |"
    )


if __name__ == "__main__":
    main()
