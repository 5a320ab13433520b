"""Benchmark: the live lab in a real headless chromium, side by side with the replay path in the same run.

Live (the exported page, from file://, default scene: forward and reverse KL x 8 starts, exact, 5 Adam
steps per frame):

* frames/s while playing (counted over ``--seconds``) and the page's own work per frame (p50 / p95);
* pointer move -> repainted frame: a mode is dragged with the mouse in ``--moves`` small steps; each
  is timed from the pointermove event's timestamp to the end of the animation frame that redrew it;
* training steps per second with all 16 students advancing together (no drawing), i.e. the steps
  per second each student gets;
* the file's size and its first frame, from navigation start.

Replay (today's 1-D lab): ``streamlit run app/main.py``, and the "Mode 1 mean" slider moved
``--replay-moves`` times (bench/bench_app.py's measure: key release -> redrawn chart), plus the size of
the replay's self-contained HTML export.

Classroom (``--sessions N``, 0 skips it): one ``streamlit run app/main.py`` and N sessions of the 1-D lab
in one chromium (one context each, so N websocket sessions). Each session's widget is paused after its
first frame (Play toggled off, before the next session opens): N pages training at 60 frames/s would
starve the 2 shared cores that also run the server, and in a class each learner's own device does that
work. A drag still repaints the paused widget on every pointer move. The sessions take turns, one
gesture of ``--gesture-ms`` each (one pointer is driven at a time), for ``--class-seconds``:

* live: a mode is dragged (pointer down, 12 moves spread over the gesture, up): the server hears
  nothing until the widget has rested for ``app.live_ui.REPORT_IDLE_MS`` after the release (a burst
  of drags is one report), then one rerun (the exact table, captions and replay figure follow);
* replay: the same gesture is one change of the "Mode 1 mean" slider (a Streamlit slider sends on
  release), then the rest of the gesture's time.

Measured per path: the server process's CPU time (utime + stime from /proc/PID/stat, before and after)
per session-minute of dragging (the summed gesture time: one learner dragging for a minute), and per
release; ``/_stcore/health`` latency p95 (polled every 0.25 s during the drags); and a 31st user's page
load (its own chromium, goto -> the widget's first training frame, and -> the replay chart) during
the drags vs the same with the server idle (before the N sessions open) and with the N sessions open
but not dragging (which tells the server's share of a slower load from the machine's). Sessions stop
opening when the machine has under 4 GB available (it is shared); the table then says how many
opened.

By default every session makes the same drags (right, then back left, by the same distance), so after the
first session's the server answers from its caches: a class on one exercise. ``--fresh`` makes session k's
drags its own length (12 moves of 2 + k/4 px, back by half of it), so that, snapped to the sidebar's steps,
every release is a teacher no session made before: each learner building their own, the worst case for the
server (the replay path's slider steps are not changed: they repeat).

``--pin`` (Linux, at least 2 CPUs) separates the server's effect on the late user from the machine's: the
server and the late user's chromium run on CPU 0, this driver and the N sessions' chromium on the others.
The late user then waits only for the server and for its own browser, as in a class where every learner
brings a device. Run:

    python bench/bench_live.py [--seconds 5] [--moves 40] [--replay-moves 6] [--sessions 10] [--fresh] [--pin]

Headless chromium paces animation frames itself (about 60 Hz); this shared 2-core machine is noisy,
so treat the numbers as preliminary and compare the two paths within one run.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from e2e.harness import CHROMIUM, CHROMIUM_ARGS, cpu_seconds, free_port, start_server, stop_server  # noqa: E402

from app.live_ui import REPORT_IDLE_MS  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def measure_live(path: Path, seconds: float, moves: int) -> dict:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_function("() => window.klLive && window.klLive.stats.firstFrameAt !== null")
            first_frame_ms = page.evaluate("() => window.klLive.stats.firstFrameAt")
            page.wait_for_timeout(500)
            # frames/s while playing
            f0, s0 = page.evaluate("() => [window.klLive.stats.frames, window.klLive.runs[0].state.t]")
            started = time.perf_counter()
            page.wait_for_timeout(int(seconds * 1000))
            f1, s1 = page.evaluate("() => [window.klLive.stats.frames, window.klLive.runs[0].state.t]")
            elapsed = time.perf_counter() - started
            frame_ms = page.evaluate("() => window.klLive.stats.frameMs.slice(-200)")
            # pointer move -> repainted frame, while training runs
            page.evaluate("() => { window.klLive.stats.moveToPaint.length = 0; }")
            box = page.locator(".kl-live-handle").first.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            for i in range(moves):
                page.mouse.move(x + 40 * ((i % 10) / 10 - 0.5), y)
                page.wait_for_timeout(20)
            page.mouse.up()
            page.wait_for_timeout(200)
            latency = page.evaluate("() => window.klLive.stats.moveToPaint.slice()")
            # training throughput without drawing
            page.evaluate("() => window.klLive.pause()")
            steps_per_s = page.evaluate(
                """() => { const t0 = performance.now(); let n = 0;
                    while (performance.now() - t0 < 2000) { window.klLive.train(20); n += 20; }
                    return n / ((performance.now() - t0) / 1000); }"""
            )
            students = page.evaluate("() => window.klLive.runs.reduce((a, r) => a + r.state.S, 0)")
        finally:
            browser.close()
    return {
        "fps": (f1 - f0) / elapsed,
        "steps_per_s_playing": (s1 - s0) / elapsed,
        "frame_ms_p50": statistics.median(frame_ms),
        "frame_ms_p95": pct(frame_ms, 0.95),
        "move_ms_p50": statistics.median(latency),
        "move_ms_p95": pct(latency, 0.95),
        "moves": len(latency),
        "steps_per_s": steps_per_s,
        "students": students,
        "first_frame_ms": first_frame_ms,
    }


def measure_replay(moves: int) -> dict:
    from bench_app import measure

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        process = start_server(port, Path(tmp) / "server.log")
        try:
            first_chart_s, results = measure(f"http://127.0.0.1:{port}", moves)
        finally:
            stop_server(process)
    seconds = [m.seconds for m in results]
    from kl_core.scenario import Scenario, scenario_figure
    from kl_core.viz import export

    html_bytes = len(export.to_html(scenario_figure(Scenario()), title="replay").encode())
    return {
        "first_chart_s": first_chart_s,
        "move_s_p50": statistics.median(seconds),
        "move_s_max": max(seconds),
        "moves": len(seconds),
        "html_bytes": html_bytes,
    }


# -- the classroom: N sessions dragging on one server --------------------------------------------------

WIDGET_TRAINED = re.compile(r"step [1-9]")  # the widget's step counter after its first training frame
REPLAY_CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'
SLIDER_LABEL = "Mode 1 mean"
LOAD_TIMEOUT_MS = 180_000


def available_gb() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 2**20


MIN_FREE_GB = 4.0  # stop opening sessions below this (the machine is shared): the table says how many opened


def open_session(browser, url: str):
    """A new context on the 1-D lab; returns (context, page, seconds to the widget's first frame,
    seconds to the replay chart). The widget is left playing."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    started = time.perf_counter()
    page.goto(url)
    page.locator(".kl-live-step").filter(has_text=WIDGET_TRAINED).first.wait_for()
    widget_s = time.perf_counter() - started
    page.wait_for_selector(REPLAY_CHART)
    chart_s = time.perf_counter() - started
    return context, page, widget_s, chart_s


LATE_CPUS: set[int] | None = None  # --pin: the CPUs of the server and the late user's chromium


def user_31(url: str, out: dict) -> None:
    """A late user's page load in its own chromium (run in a thread: sync Playwright, one per thread)."""
    before = os.sched_getaffinity(0)  # this thread's (the main thread runs the first two loads itself)
    try:
        if LATE_CPUS is not None:  # this thread's affinity: the driver and chromium it starts inherit it
            os.sched_setaffinity(0, LATE_CPUS)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                _, _, out["widget_s"], out["chart_s"] = open_session(browser, url)
            finally:
                browser.close()
    except Exception as err:  # noqa: BLE001 (reported in the table, not lost in a thread)
        out["error"] = repr(err)
    finally:
        os.sched_setaffinity(0, before)  # else the sessions the main thread opens next would share CPU 0


def poll_health(url: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
            out.append(time.perf_counter() - started)
        except OSError:
            out.append(float("inf"))
        stop.wait(0.25)


def handle_box(page) -> dict:
    """The first teacher handle's box (the widget redraws its handles when a rerun moves the teacher)."""
    for _ in range(50):
        box = page.locator(".kl-live-handle").first.bounding_box()
        if box is not None:
            return box
        page.wait_for_timeout(100)
    raise RuntimeError("the live widget's first handle has no box after 5 s")


def live_gesture(page, turn: int, gesture_s: float, session: int | None = None) -> None:
    """Drag the first mode right (even turns) or back left, 12 moves of 4 px; with ``session`` (--fresh)
    12 moves of 2 + session/4 px, and back by half of that, so no two sessions' teachers coincide."""
    box = handle_box(page)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    right = turn % 2 == 0  # right, then back left: the mode stays in view
    step = 4.0 if session is None else (2.0 + session / 4) * (1.0 if right else 0.5)
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 13):
        page.mouse.move(x + (1 if right else -1) * step * k, y)
        page.wait_for_timeout(gesture_s * 1000 / 13)
    page.mouse.up()


def replay_gesture(page, turn: int, gesture_s: float, session: int | None = None) -> None:
    started = time.perf_counter()
    slider = page.get_by_role("slider", name=SLIDER_LABEL)
    slider.focus()
    page.keyboard.press("ArrowRight" if turn % 2 == 0 else "ArrowLeft")
    page.wait_for_timeout(max(0.0, gesture_s - (time.perf_counter() - started)) * 1000)


def drive(
    pages,
    gesture,
    url: str,
    pid: int,
    seconds: float,
    gesture_s: float,
    settle_s: float = 0.0,
    fresh: bool = False,
    late_cpu_s: float = 0.0,
) -> dict:
    """Gestures round-robin over the sessions for ``seconds`` (and until the 31st user has loaded), then
    ``settle_s`` more (the last reports, held by the widget's debounce, reach the server). The server's CPU
    over that time, less ``late_cpu_s`` (the late user's own page load, measured with the server idle), is
    what the drags cost."""
    stop, health = threading.Event(), []
    poller = threading.Thread(target=poll_health, args=(f"{url}/_stcore/health", stop, health), daemon=True)
    late: dict = {}
    loader = threading.Thread(target=user_31, args=(url, late), daemon=True)
    cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
    poller.start()
    gestures, dragging_s = 0, 0.0
    while time.perf_counter() - wall0 < seconds or loader.ident is None or loader.is_alive():
        if gestures == len(pages):  # every session has dragged once: the late user arrives
            loader.start()
        index = gestures % len(pages)
        started = time.perf_counter()
        gesture(pages[index], gestures // len(pages), gesture_s, index if fresh else None)
        dragging_s += time.perf_counter() - started
        gestures += 1
    time.sleep(settle_s)
    wall, cpu = time.perf_counter() - wall0, max(0.0, cpu_seconds(pid) - cpu0 - late_cpu_s)
    stop.set()
    poller.join()
    return {
        "gestures": gestures,
        "dragging_min": dragging_s / 60,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_per_session_min": cpu / (dragging_s / 60),
        "cpu_ms_per_release": 1000 * cpu / gestures,
        "health_p50": statistics.median(health),
        "health_p95": pct(health, 0.95),
        "health_n": len(health),
        "late": late,
    }


def measure_classroom(sessions: int, seconds: float, gesture_s: float, fresh: bool = False, pin: bool = False) -> dict:
    global LATE_CPUS
    server_cpus = None
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least 2 CPUs")
        server_cpus = LATE_CPUS = {cpus[0]}
        os.sched_setaffinity(0, set(cpus[1:]))  # this driver, and the sessions' chromium started below
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        process = start_server(port, Path(tmp) / "server.log", cpus=server_cpus)
        url = f"http://127.0.0.1:{port}"
        try:
            warm, idle, still = {}, {}, {}
            user_31(url, warm)  # the first load computes and caches the default page: not a user's number
            cpu0 = cpu_seconds(process.pid)
            user_31(url, idle)
            late_cpu_s = cpu_seconds(process.pid) - cpu0  # a late user's own load: not the drags' cost
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    opened = []
                    while len(opened) < sessions and available_gb() > MIN_FREE_GB:
                        opened.append(open_session(browser, url))
                        opened[-1][1].locator(".kl-live-play").first.click()  # paused (see the module docstring)
                        print(f"session {len(opened)}/{sessions} open ({opened[-1][2]:.1f} s)", file=sys.stderr)  # noqa: T201
                    pages = [page for _, page, _, _ in opened]
                    time.sleep(2.0)  # the last loads' reruns settle before the clock starts
                    # the N sessions open (paused, no drags): the late user's reference (its own thread, as in drive)
                    reference = threading.Thread(target=user_31, args=(url, still), daemon=True)
                    reference.start()
                    reference.join()
                    settle = REPORT_IDLE_MS / 1000 + 2.0
                    live = drive(pages, live_gesture, url, process.pid, seconds, gesture_s, settle, fresh, late_cpu_s)
                    time.sleep(2.0)
                    replay = drive(pages, replay_gesture, url, process.pid, seconds, gesture_s, late_cpu_s=late_cpu_s)
                finally:
                    browser.close()
        finally:
            stop_server(process)
    return {
        "sessions": len(opened),
        "asked": sessions,
        "fresh": fresh,
        "pin": pin,
        "open_widget_s": statistics.median(o[2] for o in opened),
        "idle": idle,
        "late_cpu_s": late_cpu_s,
        "still": still,
        "live": live,
        "replay": replay,
    }


def classroom_rows(c: dict) -> list[tuple[str, str, str]]:
    live, replay, idle, still = c["live"], c["replay"], c["idle"], c["still"]

    def late(d: dict, key: str) -> str:
        return f"{d[key]:.1f} s" if key in d else f"failed: {d.get('error', '?')[:60]}"

    short = "" if c["sessions"] == c["asked"] else f" (of {c['asked']} asked: memory ran short)"
    short += "; live: every release a new teacher (--fresh)" if c["fresh"] else "; the same drags in every session"
    short += "; server and user N + 1 on CPU 0 (--pin)" if c["pin"] else ""
    return [
        (
            f"{c['sessions']} sessions{short}: server CPU per session-minute of dragging",
            f"{live['cpu_per_session_min']:.1f} s ({live['gestures']} drags, {live['dragging_min']:.1f} session-min)",
            f"{replay['cpu_per_session_min']:.1f} s ({replay['gestures']} slider changes)",
        ),
        (
            f"server CPU per release (one rerun each; the late user's own load, {c['late_cpu_s']:.2f} s, not counted)",
            f"{live['cpu_ms_per_release']:.0f} ms (0 while the pointer moves: nothing is sent)",
            f"{replay['cpu_ms_per_release']:.0f} ms",
        ),
        (
            "`/_stcore/health` p50 / p95 during the drags",
            f"{live['health_p50'] * 1000:.0f} / {live['health_p95'] * 1000:.0f} ms ({live['health_n']} polls)",
            f"{replay['health_p50'] * 1000:.0f} / {replay['health_p95'] * 1000:.0f} ms ({replay['health_n']} polls)",
        ),
        (
            f"user {c['sessions'] + 1}: load -> widget's first frame (server idle: {late(idle, 'widget_s')}; "
            f"the {c['sessions']} sessions open, not dragging: {late(still, 'widget_s')})",
            late(live["late"], "widget_s"),
            late(replay["late"], "widget_s"),
        ),
        (
            f"user {c['sessions'] + 1}: load -> replay chart (server idle: {late(idle, 'chart_s')}; "
            f"sessions open, not dragging: {late(still, 'chart_s')})",
            late(live["late"], "chart_s"),
            late(replay["late"], "chart_s"),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of playing to count frames over")
    parser.add_argument("--moves", type=int, default=40, help="pointer moves to time (default 40)")
    parser.add_argument("--replay-moves", type=int, default=6, help="slider moves of the replay path (0: skip)")
    parser.add_argument("--sessions", type=int, default=10, help="classroom: browser sessions (0: skip; target 30)")
    parser.add_argument("--class-seconds", type=float, default=60.0, help="classroom: seconds of drags per path")
    parser.add_argument("--gesture-ms", type=float, default=1000.0, help="classroom: one drag's duration")
    parser.add_argument("--only-classroom", action="store_true", help="skip the single-user measures")
    parser.add_argument("--fresh", action="store_true", help="classroom: every release a teacher not seen before")
    parser.add_argument("--pin", action="store_true", help="classroom: server + late user on CPU 0, sessions elsewhere")
    args = parser.parse_args()
    if args.seconds <= 0 or args.moves < 1 or args.replay_moves < 0:
        parser.error("--seconds must be > 0, --moves >= 1, --replay-moves >= 0")
    if not 0 <= args.sessions <= 60 or args.class_seconds <= 0 or not 100 <= args.gesture_ms <= 10_000:
        parser.error("--sessions must be in [0, 60], --class-seconds > 0, --gesture-ms in [100, 10000]")

    from kl_core.live.export import write_live

    rows: list[tuple[str, str, str]] = []
    if not args.only_classroom:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "widget.html"
            size = write_live(path)
            live = measure_live(path, args.seconds, args.moves)
        replay = measure_replay(args.replay_moves) if args.replay_moves else None
        rows += single_user_rows(live, replay, size)
    if args.sessions:
        classroom = measure_classroom(args.sessions, args.class_seconds, args.gesture_ms / 1000, args.fresh, args.pin)
        rows += classroom_rows(classroom)
    print("| measure | live (in the browser) | replay (server round trip) |")  # noqa: T201
    print("|---|---|---|")  # noqa: T201
    for row in rows:
        print(f"| {' | '.join(row)} |")  # noqa: T201
    load = os.getloadavg()
    print(  # noqa: T201
        f"\n(preliminary: shared 2-core machine, load average {load[0]:.1f} at the end, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})"
    )


def single_user_rows(live: dict, replay: dict | None, size: int) -> list[tuple[str, str, str]]:
    return [
        ("frames/s while training (5 steps/frame)", f"{live['fps']:.0f}", "(plays a precomputed animation)"),
        ("work per frame p50 / p95", f"{live['frame_ms_p50']:.1f} / {live['frame_ms_p95']:.1f} ms", ""),
        (
            "drag -> repainted frame p50 / p95",
            f"{live['move_ms_p50']:.0f} / {live['move_ms_p95']:.0f} ms ({live['moves']} moves)",
            (
                f"slider release -> chart p50 {replay['move_s_p50'] * 1000:.0f} ms, "
                f"max {replay['move_s_max'] * 1000:.0f} ms ({replay['moves']} moves)"
            )
            if replay
            else "skipped",
        ),
        (
            "training steps/s per student",
            f"{live['steps_per_s']:.0f} (all {live['students']} together; "
            f"{live['steps_per_s_playing']:.0f} while drawing)",
            "",
        ),
        ("standalone file", f"{size / 1e3:.0f} KB", f"{replay['html_bytes'] / 1e6:.1f} MB" if replay else "skipped"),
        (
            "first frame",
            f"{live['first_frame_ms']:.0f} ms from file://",
            f"first chart {replay['first_chart_s']:.1f} s from the server" if replay else "skipped",
        ),
    ]


if __name__ == "__main__":
    main()
