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
the replay's self-contained HTML export. Run:

    python bench/bench_live.py [--seconds 5] [--moves 40] [--replay-moves 6]

Headless chromium paces animation frames itself (about 60 Hz); this shared 2-core machine is noisy,
so treat the numbers as preliminary and compare the two paths within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from e2e.harness import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of playing to count frames over")
    parser.add_argument("--moves", type=int, default=40, help="pointer moves to time (default 40)")
    parser.add_argument("--replay-moves", type=int, default=6, help="slider moves of the replay path (0: skip)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.moves < 1 or args.replay_moves < 0:
        parser.error("--seconds must be > 0, --moves >= 1, --replay-moves >= 0")

    from kl_core.live.export import write_live

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "widget.html"
        size = write_live(path)
        live = measure_live(path, args.seconds, args.moves)
    replay = measure_replay(args.replay_moves) if args.replay_moves else None

    rows = [
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
    print("| measure | live (in the browser) | replay (server round trip) |")  # noqa: T201
    print("|---|---|---|")  # noqa: T201
    for row in rows:
        print(f"| {' | '.join(row)} |")  # noqa: T201
    print(f"\n(preliminary: shared 2-core machine, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")  # noqa: T201


if __name__ == "__main__":
    main()
