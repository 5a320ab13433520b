"""The LM lab's background training: it ends with its session, and a server runs at most MAX_LIVE at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kl_core.lm import showcase
from kl_core.lm.showcase import LiveComparison, Settings, TooManyTrainings

PAGE = str(Path(__file__).resolve().parents[1] / "app" / "views" / "lm.py")
LONG = Settings(methods=("reverse_kl",), steps=2000)  # minutes if nothing stopped it


def wait_for_progress(job: LiveComparison, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not job.snapshot().methods and not job.finished:
        assert time.monotonic() < deadline, "no evaluation within a minute"
        time.sleep(0.05)  # polling a background thread's state: nothing to wait on


def test_a_session_that_ends_stops_its_training():
    connected = threading.Event()
    connected.set()
    job = LiveComparison(LONG, "cpu", alive=connected.is_set).start()
    try:
        wait_for_progress(job)
        connected.clear()  # the browser tab is closed: the session is no longer active
        assert job.join(60), "the training kept running after its session ended"
        assert job.abandoned and job.stopping and job.error is None
        (record,) = job.snapshot().methods.values()
        assert record.steps < LONG.steps
    finally:
        job.stop()
        job.join(60)
    assert showcase.live_count() == 0


def test_a_failing_liveness_check_counts_as_gone():
    def broken() -> bool:
        raise RuntimeError("no runtime")

    job = LiveComparison(LONG, "cpu", alive=broken).start()
    assert job.join(60) and job.abandoned


def test_at_most_max_live_trainings_run_at_once(monkeypatch):
    monkeypatch.setattr(showcase, "MAX_LIVE", 1)
    first = LiveComparison(LONG, "cpu").start()
    try:
        with pytest.raises(TooManyTrainings, match=r"1 trainings are already running on this server \(at most 1"):
            LiveComparison(LONG, "cpu").start()
        assert showcase.live_count() == 1
    finally:
        first.stop()
        assert first.join(60)
    assert showcase.live_count() == 0  # a finished training frees its place
    second = LiveComparison(Settings(methods=("sft",), steps=5), "cpu").start()
    assert second.join(60) and second.error is None


def test_the_page_refuses_a_training_beyond_the_cap_with_a_message(monkeypatch):
    monkeypatch.setattr(showcase, "MAX_LIVE", 1)
    other = LiveComparison(LONG, "cpu").start()  # another session's training holds the only place
    try:
        at = AppTest.from_file(PAGE, default_timeout=60)
        at.query_params["lm_steps"] = "10"
        at.run()
        at.button(key="lm_train").click().run()
        assert not at.exception
        assert "_lm_job" not in at.session_state
        (error,) = at.error
        assert error.value.startswith("Not started: 1 trainings are already running on this server (at most 1")
    finally:
        other.stop()
        other.join(60)
