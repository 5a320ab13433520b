"""Page 1, the 1-D lab: one teacher, one student, forward vs reverse KL (or any kinds) side by side."""

from dataclasses import replace

import streamlit as st

from app import export_ui, live_ui, model, ui
from kl_core import budget
from kl_core.viz import animation_1d, caption, results_rows


@st.cache_resource(max_entries=16, show_spinner=False)
def _replay_figure(args: tuple, frame_ms: int, _teacher, _runs):
    """The replay animation, built once per fit (``args`` fix the teacher and the runs) and frame time.

    Shared by every session (cache_resource: no copy): st.plotly_chart and the exports only read it. A
    release of the live widget to a teacher seen before (a learner dragging a mode back and forth, or a
    class on the same exercise) then costs no figure build."""
    return animation_1d(_teacher, _runs, n_frames=40, frame_ms=frame_ms)


state = ui.setup()
st.title("Mode covering vs mode seeking")
st.caption(
    "The grey teacher stays fixed while the students train. Each panel trains the same student from the "
    "same starts under one objective: **forward KL** must cover everything the teacher likes, **reverse KL** "
    "must avoid everything the teacher forbids. Press ▶ in the figure to watch training; scrub with its slider."
)

ui.teacher_editor()
st.sidebar.header("Student and training")
ui.control("student", "select")
if state["student"] == "mixture":
    ui.control("k")
kinds = ui.control("objectives", "multiselect")
ui.objective_controls(kinds)
ui.training_controls()
ui.control("speed")
live_ui.live_lab(state, kinds)  # the hero: trains in the browser; reports the teacher after a release

try:
    spec = model.teacher_spec(state)
    teacher = model.teacher_from_spec(spec)
    components = state["k"] if state["student"] == "mixture" else 1
    work = budget.seconds_1d(len(kinds), state["estimator"], state["samples"], components)
    plan = ui.within_budget(budget.plan(work, state["inits"], state["steps"]))
    args = model.lab_1d_args({**state, "inits": plan.inits, "steps": plan.steps}, kinds)
    with st.spinner("Training…"):
        runs = ui.cached["lab_1d_runs"](*args)
except ValueError as err:
    ui.error(err)
# starts whose objective is infinite at the start, or whose student degenerated, are left out and named
for note in [f"{run.display_label}: {run.trajectory.drop_note()}" for run in runs if run.trajectory.dropped.any()]:
    st.info(note)  # a note, not a warning: warnings mean a URL value fell back to its default
try:
    runs = [replace(run, trajectory=run.trajectory.kept_only()) for run in runs]
except ValueError as err:
    ui.error(err)

# the figure goes out first: the browser draws it while the summaries below are computed
fig = _replay_figure(args, state["speed"], teacher, runs)
st.plotly_chart(fig, key="lab_1d_chart", width="stretch")
summaries = ui.cached["summaries_1d"](args, runs)

st.subheader("Where the students ended")
for run, summary in zip(runs, summaries):
    st.markdown(f"- {caption(teacher, run, summaries=summary)}")
for run, summary in zip(runs, summaries):
    with st.expander(f"Final students: {run.display_label}", expanded=len(runs) <= 2):
        st.dataframe(results_rows(teacher, run, summaries=summary), hide_index=True, width="stretch")
export_ui.export_panel(fig, "lab_1d", scenario=export_ui.scenario_1d(state, kinds))
ui.finish()
