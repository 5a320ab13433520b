"""The "Start here" page (app/views/lesson.py), headless: every step, URL deep links, answering, bad URLs."""

from pathlib import Path

import pytest
from spec_tools import assert_clean, figures
from streamlit.testing.v1 import AppTest

from kl_core.lesson import N_STEPS, STEPS

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGE = "views/lesson.py"


def lesson(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.switch_page(PAGE).run()  # straight to the lesson, as a link to /lesson?... opens it


def step_header(at: AppTest) -> str:
    return next(h.value for h in at.header if h.value[:1].isdigit())


def test_walk_through_every_step_answering_each_question():
    at = lesson()
    assert_clean(at)
    assert at.title[0].value.startswith("Start here")
    for number, step in enumerate(STEPS, start=1):
        assert step_header(at) == f"{number}. {step.title}"
        assert at.get("progress")[0].proto.text == f"Step {number} of {N_STEPS}"
        assert at.markdown[0].value == step.text()
        radio = at.radio(key=f"lesson_answer_{step.key}")
        assert radio.value is None  # nothing preselected: predict first
        (preview,) = figures(at)
        assert not preview.get("frames")  # the starting point only
        radio.set_value(step.answer).run()
        assert_clean(at)
        assert [s.value for s in at.success] == ["Right."]
        assert step.explanation() in [m.value for m in at.markdown]
        (fig,) = figures(at)
        assert fig["data"] and (step.draw_preview is not None or len(fig["frames"]) >= 5)
        if number < N_STEPS:
            at.button(key="lesson_next").click().run()
            assert_clean(at)
            assert at.query_params["lesson_step"] == str(number + 1)
    assert at.button(key="lesson_next").disabled
    # back one step: the answer given there is remembered
    at.button(key="lesson_previous").click().run()
    assert at.radio(key=f"lesson_answer_{STEPS[-2].key}").value == STEPS[-2].answer


@pytest.mark.parametrize("number", [3, N_STEPS])
def test_a_url_opens_its_step(number):
    at = lesson({"lesson_step": str(number)})
    assert_clean(at)
    assert step_header(at) == f"{number}. {STEPS[number - 1].title}"
    assert at.slider(key="w_lesson_step").value == number


def test_a_wrong_answer_shows_the_right_one_and_the_quoted_numbers():
    at = lesson({"lesson_step": "3"})
    step = STEPS[2]
    wrong = (step.answer + 1) % len(step.choices)
    at.radio(key="lesson_answer_reverse").set_value(wrong).run()
    assert_clean(at)
    assert not at.success
    assert at.info[0].value == f"Not quite: the answer is **{step.choices[step.answer]}**."
    assert "mean +2.98, std 1.02" in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("bad", ["0", "99", "two"])
def test_a_bad_step_falls_back_to_step_1_with_a_warning(bad):
    at = lesson({"lesson_step": bad})
    assert_clean(at)
    assert any("lesson_step" in w.value for w in at.warning)
    assert step_header(at) == f"1. {STEPS[0].title}"


def test_hide_removes_the_step_picker_but_next_still_works():
    at = lesson({"lesson_step": "2", "hide": "lesson_step"})
    assert_clean(at)
    assert not [s for s in at.slider if s.key == "w_lesson_step"]
    at.button(key="lesson_next").click().run()
    assert_clean(at)
    assert step_header(at) == f"3. {STEPS[2].title}"
    assert at.query_params["lesson_step"] == "3" and at.query_params["hide"] == "lesson_step"
