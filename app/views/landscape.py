"""Page 2, the loss landscape: two objectives over a Gaussian student's (mean, log std), with paths."""

import streamlit as st

from app import export_ui, model, ui
from kl_core import budget
from kl_core.viz import label_for, landscape_figure

state = ui.setup()
st.title("Loss landscape")
st.caption(
    "Each objective over every Gaussian student N(mean, std²) of the same teacher as the 1-D lab. "
    "Stars are global minima, diamonds local ones; lines are the optimisation paths of every start "
    "(open circle: its start, cross: its end). "
    "For the default pair: reverse KL has a minimum on each well-separated mode (which one you reach "
    "depends on where you start); forward KL has exactly one, at the teacher's mean and standard deviation. "
    "The counts under the figure are this teacher's."
)

ui.teacher_editor()
st.sidebar.header("Objectives")
left = ui.control("left", "select")
right = ui.control("right", "select")
ui.objective_controls((left, right))
ui.control("grid")
st.sidebar.header("Training (paths)")
ui.training_controls()

try:
    spec = model.teacher_spec(state)
    specs = model.objective_specs((left, right), state)
    with st.spinner("Computing the surfaces…"):
        # the budget: half for the surfaces (a coarser grid), the rest for the paths (fewer starts/steps)
        grid = budget.landscape_grid((left, right), state["grid"], budget_s=budget.BUDGET_S / 2)
        if grid != state["grid"]:
            st.info(f"Work budget: a {state['grid']}×{state['grid']} grid would take about "
                    f"{budget.seconds_landscape((left, right), state['grid']):.0f} s for these objectives; "
                    f"showing {grid}×{grid}.", icon="⏱️")  # fmt: skip
        lands = ui.cached["landscape_pair"](spec, specs[0], specs[1], grid)
        work = budget.seconds_1d(2, state["estimator"], state["samples"])
        left_s = budget.BUDGET_S - budget.seconds_landscape((left, right), grid)
        scope = "the paths (the surfaces take the rest)"
        plan = ui.within_budget(budget.plan(work, state["inits"], state["steps"], budget_s=left_s, scope=scope))
        paths = {**state, "inits": plan.inits, "steps": plan.steps}
        runs = ui.cached["lab_1d_runs"](*model.lab_1d_args(paths, (left, right), student="gaussian", k=1))
except ValueError as err:
    ui.error(err)

fig = landscape_figure(lands, runs)
st.plotly_chart(fig, key="landscape_chart", width="stretch")
cols = st.columns(2)
for col, land in zip(cols, lands):
    count, best = len(land.minima), sum(m.is_global for m in land.minima)
    # every minimum is a local one; say which are global, as the stars in the figure do
    which = "the global one" if count == 1 else f"{best} of them global"
    col.markdown(
        f"**{label_for(land.objective, land.objective_params)}**: {count} local minim{'um' if count == 1 else 'a'}, "
        f"{which}"
    )
    col.dataframe(
        [
            # + 0.0: a mean of -0.00001 printed "-0.0"
            {
                "mean": round(m.mean, 4) + 0.0,
                "std": round(m.std, 4),
                "value (nats)": round(m.value, 4),
                "global": m.is_global,
            }
            for m in land.minima
        ],
        hide_index=True,
        width="stretch",
    )
export_ui.export_panel(fig, "landscape")
ui.finish()
