"""The "Start here" page (app/views/lesson.py), headless: every step, URL deep links, answering, recap, bad URLs."""

from pathlib import Path

import pytest
from spec_tools import assert_clean, figures
from streamlit.testing.v1 import AppTest

from kl_core.lesson import N_STEPS, STEPS, opening, recap

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGE = "views/lesson.py"


def lesson(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.switch_page(PAGE).run()  # straight to the lesson, as a link to /lesson?... opens it


def step_header(at: AppTest) -> str:
    return next(h.value for h in at.header if h.value[:1].isdigit())


def answer(at: AppTest, step, choice: int) -> AppTest:
    """Choose in the radio group (nothing happens yet), then press Check."""
    at.radio(key=f"lesson_answer_{step.key}").set_value(choice)
    return at.button(key=f"lesson_check_{step.key}").click().run()


def test_walk_through_every_step_answering_each_question():
    at = lesson()
    assert_clean(at)
    assert at.title[0].value.startswith("Start here")
    for number, step in enumerate(STEPS, start=1):
        assert step_header(at) == f"{number}. {step.title}"
        assert at.get("progress")[0].proto.text == f"Step {number} of {N_STEPS}"
        assert step.text() in [m.value for m in at.markdown]
        radio = at.radio(key=f"lesson_answer_{step.key}")
        assert radio.value is None  # nothing preselected: predict first
        (preview,) = figures(at)
        assert not preview.get("frames")  # the starting point only
        assert f"{step.preview_alt} Choose an answer and press Check to see what happens." in [
            c.value for c in at.caption
        ]
        answer(at, step, step.answer)
        assert_clean(at)
        assert [s.value for s in at.success] == [f"Right: **{step.choices[step.answer]}**."]
        assert step.explanation() in [m.value for m in at.markdown]
        assert f"What happened: {step.result()}." in [c.value for c in at.caption]
        figs = figures(at)
        assert len(figs) == (2 if step.draw_extra else 1)
        if step.draw_extra:
            assert f"What the KL penalty does: {step.extra_result()}." in [c.value for c in at.caption]
        fig = figs[0]
        assert fig["data"] and (step.draw_preview is not None or len(fig["frames"]) >= 5)
        if number < N_STEPS:
            at.button(key="lesson_next").click().run()
            assert_clean(at)
            assert at.query_params["lesson_step"] == str(number + 1)
    assert at.button(key="lesson_next").disabled
    # the recap card closes the lesson: every prediction right, the one-line answer, where to go next
    card = recap({s.key: s.answer for s in STEPS})
    recap_text = " ".join(m.value for m in at.markdown)
    assert f"**{card.score}.** {card.one_line}" in recap_text
    assert all(f"What happened: {row.happened}." in recap_text for row in card.rows)
    assert "Recap: what you predicted, what happened" in [h.value for h in at.subheader]
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
    answer(at, step, wrong)
    assert_clean(at)
    assert not at.success
    assert at.info[0].value == (
        f"You predicted **{step.choices[wrong]}**; the answer is **{step.choices[step.answer]}**."
    )
    assert "mean +2.98, std 1.02" in " ".join(m.value for m in at.markdown)


def test_choosing_without_check_reveals_nothing_and_check_without_a_choice_asks_for_one():
    at = lesson({"lesson_step": "2"})
    step = STEPS[1]
    at.radio(key=f"lesson_answer_{step.key}").set_value(step.answer).run()  # a rerun, but the form holds it
    assert_clean(at)
    assert not at.success and not at.info and step.explanation() not in [m.value for m in at.markdown]
    at = lesson({"lesson_step": "2"})
    at.button(key=f"lesson_check_{step.key}").click().run()
    assert_clean(at)
    assert [w.value for w in at.warning] == ["Choose an answer first, then press Check."]
    assert not at.success and len(figures(at)) == 1


def test_step_1_opens_with_the_question_that_started_it():
    at = lesson()
    start = opening()
    assert start.answer in [m.value for m in at.markdown]
    assert "The question that started it" in [h.value for h in at.subheader]
    assert f"> {start.question}" in [m.value for m in at.markdown]
    at = lesson({"lesson_step": "2"})
    assert start.answer not in [m.value for m in at.markdown]


def test_the_recap_lists_a_wrong_prediction_and_unanswered_steps():
    at = lesson({"lesson_step": str(N_STEPS)})
    last = STEPS[-1]
    wrong = (last.answer + 1) % len(last.choices)
    answer(at, last, wrong)
    assert_clean(at)
    card = recap({last.key: wrong})
    text = " ".join(m.value for m in at.markdown)
    assert card.score == f"0 of {N_STEPS} predictions right (1 answered)" and f"**{card.score}.**" in text
    assert f"✗ **{N_STEPS}. {last.title}**: you said *{last.choices[wrong]}*." in text
    assert f"— **1. {STEPS[0].title}**: not answered." in text


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
