"""Page 3, the divergence family: from covering to seeking along α or β, and student capacity."""

import streamlit as st

from app import export_ui, model, ui
from kl_core.presets import PRESETS
from kl_core.viz import capacity_figure, sweep_figure

state = ui.setup()
st.title("Divergence family")
intro = st.empty()  # filled once the sweep is known: its slider runs in opposite directions for α and β

ui.teacher_editor()
st.sidebar.header("Sweep")
sweep = ui.control("sweep", "select")
intro.caption(
    "Between forward and reverse KL lies a continuum. The α-divergence goes from reverse KL (α → 0) to "
    "forward KL (α → 1) and beyond; the generalized JSD of GKD goes from forward (β = 0) to reverse "
    "(β = 1). "
    + (
        "Scrub the slider to watch the fitted Gaussian widen from seeking (α = −0.5) to covering (α = 1.5)."
        if sweep == "alpha"
        else "Scrub the slider to watch the fitted Gaussian narrow from covering (β = 0) to seeking (β = 1)."
    )
)
ui.control("points")
ui.training_controls(estimator=False)
ui.control("kmax")

try:
    teacher = model.teacher_from_spec(model.teacher_spec(state))
    sweep_args, capacity_args, plan = model.family_calls(state)
    ui.within_budget(plan)
    with st.spinner("Fitting the family…"):
        fits, notes = ui.cached["sweep_fits"](*sweep_args)
except ValueError as err:
    ui.error(err)

figures = {"Sweep": ui.chart(("sweep", sweep_args), lambda: sweep_figure(teacher, fits, sweep))} if fits else {}
if fits:
    st.plotly_chart(figures["Sweep"], key="sweep_chart", width="stretch")
for note in notes:
    st.info(f"Skipped {note}")

st.header("Student capacity")
st.caption(
    "A mixture student with K components against a five-mode teacher. With too few components forward "
    "KL smears them over the gaps; reverse KL drops modes. Only when K reaches the teacher's five "
    "would both agree."
)
with st.spinner("Fitting mixtures…"):
    cap = ui.cached["capacity_fits"](*capacity_args)
figures["Capacity"] = ui.chart(
    ("capacity", capacity_args), lambda: capacity_figure(PRESETS[model.CAPACITY_TEACHER].teacher, cap)
)
st.plotly_chart(figures["Capacity"], key="capacity_chart", width="stretch")
export_ui.export_panel(figures, "family")
ui.finish()
