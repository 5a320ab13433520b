"""Starting the real app and a headless chromium: shared by the browser tests and bench/bench_app.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = "app/main.py"
CHROMIUM = "/usr/bin/chromium"
# Tested on this machine kind (shared/RECIPES.md): without the background-networking flags chromium
# floods the closed network with refused connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_server(port: int, log_path: Path, cpus: set[int] | None = None) -> subprocess.Popen:
    """``streamlit run app/main.py`` from the repo root, output to ``log_path``; returns once healthy.

    ``cpus``: the CPUs the server may run on (Linux ``sched_setaffinity``, set before it starts, so every
    thread it creates inherits it); None leaves it to the scheduler.

    Raises RuntimeError (with the server's log) if it exits or is not healthy within 60 s.
    """
    command = [
        sys.executable, "-m", "streamlit", "run", APP,
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not health_ok(f"http://127.0.0.1:{port}/_stcore/health"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise RuntimeError(f"streamlit did not become healthy (exit {process.returncode}):\n{log_path.read_text()}")
        time.sleep(0.2)  # polling an HTTP endpoint: there is nothing to wait_for on
    return process


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (proc(5): fields 14 and 15, in clock ticks), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM by PID, then kill if it has not gone within 10 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def offline_context(browser, width: int = 1400, height: int = 900):
    """A browser context whose http(s) requests are aborted, and the list that records them: pages opened
    from ``file://`` in it must work with the network blocked (exports, the site, the live widget)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    requests: list[str] = []

    def block(route) -> None:
        requests.append(route.request.url)
        route.abort()

    context.route("http://**/*", block)
    context.route("https://**/*", block)
    return context, requests
