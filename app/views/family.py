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

# -- β at the endpoints: TRL's jsd against jsd_scaled (kl_core.beta_profile); one self-contained block ---------
from kl_core.viz import beta_scale_figure  # noqa: E402  (this block's own import, kept with it)


@st.cache_data(max_entries=1, show_spinner=False)
def _beta_endpoints():
    from kl_core.beta_profile import beta_caption, beta_profile, example_note

    profile = beta_profile()
    return profile, beta_caption(profile), example_note()


beta_numbers, beta_sentence, beta_example = _beta_endpoints()
st.header("β at the endpoints")
st.caption(
    "The token-level generalized JSD of GKD (TRL's jsd) tends to 0 as β → 0 or β → 1, yet at exactly β = 0 and "
    "β = 1 it is defined as forward and reverse KL: the loss and its gradient jump there. jsd_scaled divides it by "
    f"β(1−β) and runs continuously into forward KL at β → 0 and reverse KL at β → 1. A fixed example: {beta_example}."
)
figures["Beta endpoints"] = beta_scale_figure(beta_numbers)
st.plotly_chart(figures["Beta endpoints"], key="beta_endpoints_chart", width="stretch")
st.caption(beta_sentence)
export_ui.export_panel(figures, "family")
ui.finish()
