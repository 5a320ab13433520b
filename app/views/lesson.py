"""Start here: the guided lesson (kl_core.lesson), one step at a time: read, predict, check, then see what happens."""

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from app import live_ui, ui
from kl_core.lesson import N_STEPS, get_step, opening, recap


@st.cache_data(show_spinner=False, max_entries=2 * N_STEPS)
def built(number: int):
    """The step's text, explanation, outcome, "before" picture and figures, computed live once per server."""
    step = get_step(number)
    extra = step.extra_figure(), step.extra_result()
    return step.text(), step.explanation(), step.result(), step.preview(), step.figure(), extra


@st.cache_data(show_spinner=False, max_entries=1)
def the_opening():
    return opening()


def links(pairs) -> None:
    for page, label in pairs:
        try:
            st.page_link(f"views/{page}.py", label=label, icon="🔎")
        except StreamlitPageNotFoundError:  # a lab that is not (yet) part of this app
            pass


state = ui.setup()
st.title("Start here: forward vs reverse KL")
st.sidebar.header("Lesson")
number = ui.control("lesson_step")
step = get_step(number)
if number == 1:
    start = the_opening()
    with st.container(border=True, key="lesson_opening"):
        st.subheader("The question that started it")
        st.markdown(f"> {start.question}")
        st.markdown(start.answer)
st.progress(number / N_STEPS, text=f"Step {number} of {N_STEPS}")
st.header(f"{number}. {step.title}")
try:
    with st.spinner("Computing this step…"):
        text, explanation, outcome, preview, figure, (extra, extra_outcome) = built(number)
except ValueError as err:
    ui.error(err)
st.markdown(text)

# predict, then check: choosing (even with the arrow keys) submits nothing; "Check" does
answers = st.session_state.setdefault("lesson_answers", {})
with st.form(f"lesson_quiz_{step.key}", border=True):
    choice = st.radio(
        f"**Predict first:** {step.question}",
        range(len(step.choices)),
        format_func=lambda i: step.choices[i],
        index=answers.get(step.key),
        key=f"lesson_answer_{step.key}",
    )
    checked = st.form_submit_button("Check", type="primary", key=f"lesson_check_{step.key}")
if checked and choice is not None:
    answers[step.key] = choice
answer = answers.get(step.key)
if answer is None:
    if checked:
        st.warning("Choose an answer first, then press Check.", icon="☝️")
    st.plotly_chart(preview, key=f"lesson_preview_{step.key}", width="stretch")
    st.caption(f"{step.preview_alt} Choose an answer and press Check to see what happens.")
else:
    if step.is_correct(answer):
        st.success(f"Right: **{step.choices[answer]}**.", icon="✅")
    else:
        st.info(f"You predicted **{step.choices[answer]}**; the answer is **{step.choices[step.answer]}**.", icon="💡")
    st.markdown(explanation)
    st.plotly_chart(figure, key=f"lesson_figure_{step.key}", width="stretch")
    st.caption(f"What happened: {outcome}.")
    live_ui.lesson_live(number)  # covering / seeking / side by side: the same fit, live in the browser
    if extra is not None:
        st.plotly_chart(extra, key=f"lesson_extra_{step.key}", width="stretch")
        st.caption(f"What the KL penalty does: {extra_outcome}.")
    links((page, f"Explore: {label}") for page, label in step.links)

if number == N_STEPS and answer is not None:
    card = recap(answers)
    with st.container(border=True, key="lesson_recap"):
        st.subheader("Recap: what you predicted, what happened")
        st.markdown(f"**{card.score}.** {card.one_line}")
        for row in card.rows:
            mark = "—" if row.correct is None else ("✅" if row.correct else "✗")
            said = "not answered" if row.predicted is None else f"you said *{row.predicted}*"
            st.markdown(f"{mark} **{row.number}. {row.title}**: {said}. What happened: {row.happened}.")
        st.markdown("**Where to go next**")
        links(card.next_steps)

previous, _, following = st.columns([1, 3, 1])
previous.button(
    "← Previous",
    on_click=ui.set_value,
    args=("lesson_step", number - 1),
    key="lesson_previous",
    disabled=number == 1,
    width="stretch",
)
following.button(
    "Next →",
    on_click=ui.set_value,
    args=("lesson_step", number + 1),
    key="lesson_next",
    disabled=number == N_STEPS,
    width="stretch",
)
ui.finish()
