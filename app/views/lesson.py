"""Start here: the guided lesson (kl_core.lesson), one step at a time: read, predict, then see what happens."""

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from app import ui
from kl_core.lesson import N_STEPS, get_step


@st.cache_data(show_spinner=False, max_entries=2 * N_STEPS)
def built(number: int):
    """The step's text, explanation, "before" picture and figure, computed live once per server."""
    step = get_step(number)
    return step.text(), step.explanation(), step.preview(), step.figure()


state = ui.setup()
st.title("Start here: forward vs reverse KL")
st.sidebar.header("Lesson")
number = ui.control("lesson_step")
step = get_step(number)
st.progress(number / N_STEPS, text=f"Step {number} of {N_STEPS}")
st.header(f"{number}. {step.title}")
try:
    with st.spinner("Computing this step…"):
        text, explanation, preview, figure = built(number)
except ValueError as err:
    ui.error(err)
st.markdown(text)

# predict, then reveal: no answer is preselected; the answers given survive moving between steps
answers = st.session_state.setdefault("lesson_answers", {})
choice = st.radio(
    f"**Predict first:** {step.question}",
    range(len(step.choices)),
    format_func=lambda i: step.choices[i],
    index=answers.get(step.key),
    key=f"lesson_answer_{step.key}",
)
if choice is None:
    st.caption("Choose an answer to see what happens. The picture shows the starting point.")
    st.plotly_chart(preview, key=f"lesson_preview_{step.key}", width="stretch")
else:
    answers[step.key] = choice
    if step.is_correct(choice):
        st.success("Right.", icon="✅")
    else:
        st.info(f"Not quite: the answer is **{step.choices[step.answer]}**.", icon="💡")
    st.markdown(explanation)
    st.plotly_chart(figure, key=f"lesson_figure_{step.key}", width="stretch")
    for page, label in step.links:
        try:
            st.page_link(f"views/{page}.py", label=f"Explore: {label}", icon="🔎")
        except StreamlitPageNotFoundError:  # a lab that is not (yet) part of this app
            pass

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
