"""Page 4, the 2-D lab: Gaussian students against a ring, a correlated Gaussian and three clusters."""

import streamlit as st

from app import export_ui, model, ui
from kl_core.presets import PRESETS
from kl_core.viz import animation_2d, caption, results_rows

state = ui.setup()
st.title("2-D lab")

st.sidebar.header("Teacher")
preset = ui.control("preset2d", "select")
st.caption(PRESETS[preset].lesson)
st.sidebar.header("Training")
kinds = ui.control("objectives2d", "multiselect")
ui.objective_controls(kinds)
ui.control("steps2d")
ui.control("inits2d")
ui.control("lr2d")
ui.control("seed", "number")
ui.control("speed")

try:
    args, plan = model.lab_2d_call(state)
    ui.within_budget(plan)
    with st.spinner("Training…"):
        runs = ui.cached["lab_2d_runs"](*args)
except ValueError as err:
    ui.error(err)
# starts whose objective is infinite at the start, or whose student degenerated, are left out and named
for note in [f"{run.display_label}: {run.trajectory.drop_note()}" for run in runs if run.trajectory.dropped.any()]:
    st.info(note)  # a note, not a warning: warnings mean a URL value fell back to its default
try:
    runs = model.kept_runs(runs)
except ValueError as err:
    ui.error(err)

teacher = PRESETS[preset].teacher
fig = ui.chart(("lab_2d", args, state["speed"]), lambda: animation_2d(teacher, runs, frame_ms=state["speed"]))
st.plotly_chart(fig, key="lab_2d_chart", width="stretch")  # drawn while the summaries are computed
summaries = ui.cached["summaries_2d"](args, runs)
for run, summary in zip(runs, summaries):
    st.markdown(f"- {caption(teacher, run, summaries=summary)}")
for run, summary in zip(runs, summaries):
    with st.expander(f"Final students: {run.display_label}"):
        st.dataframe(results_rows(teacher, run, summaries=summary), hide_index=True, width="stretch")
export_ui.export_panel(fig, "lab_2d", scenario=export_ui.scenario_2d(state, kinds))
ui.finish()
