"""Page: the token lab: a factorised student against correlated token answers, and decoding one position."""

import numpy as np
import pandas as pd
import streamlit as st

from app import export_ui, model, ui
from app.state import quote
from kl_core import budget, token_lab
from kl_core.distributions import Categorical
from kl_core.presets import PRESETS
from kl_core.viz import Run
from kl_core.viz.tokens import answer_rows, decoding_caption, decoding_figure, joint_animation, token_caption

fit_joint = st.cache_data(max_entries=32, show_spinner=False)(token_lab.fit_joint)
decoding_sweep = st.cache_data(max_entries=32, show_spinner=False)(token_lab.decoding_sweep)
TEMPERATURES = np.round(np.linspace(0.1, 3.0, 59), 4)  # the sweep's grid; the current value is added to it

state = ui.setup()
exports = {}  # label -> figure, for the Export panel
st.title("Token lab")
st.caption(
    "The student is a product of independent per-position distributions: like a student language model "
    "that cannot carry the teacher's correlations between tokens."
)

st.sidebar.header("Joint teacher")
preset = ui.control("tok_preset", "select")
st.sidebar.header("Training")
kinds = ui.control("tok_objectives", "multiselect")
ui.objective_controls(kinds)
if "akl" in kinds:
    ui.control("tok_mu")
for name in ("tok_steps", "tok_inits", "tok_lr"):
    ui.control(name)
ui.control("tok_seed", "number")
ui.control("tok_start")
ui.control("speed")
st.sidebar.header("Decoding one position")
next_preset = ui.control("tok_next", "select")
for name in ("tok_temp", "tok_topk", "tok_topp"):
    ui.control(name)
ui.control("tok_decode", "select")

st.header("Correlated answers over token positions")
table, labels, problem = None, None, None
if preset == "custom":
    base = PRESETS["city_tokens"]
    labels = base.labels
    st.caption(
        "Edit the joint probabilities (rows: first token, columns: second token). Cells are normalised for "
        f"you; cells below {token_lab.INVALID_BELOW:g} count as invalid combinations."
    )
    start_table = pd.DataFrame(np.round(base.teacher.probs, 3), index=list(labels[0]), columns=list(labels[1]))
    edited = st.data_editor(start_table, key="tok_table", width="stretch")
    try:
        table, notes = token_lab.joint_table(edited.to_numpy(dtype=object))
        for note in notes:
            st.info(note, icon="ℹ️")
    except ValueError as err:  # it may quote a cell: an inert code span
        problem = f"This table cannot be used: {quote(err, 300)}"
else:
    table, labels = PRESETS[preset].teacher.probs, PRESETS[preset].labels
    st.caption(PRESETS[preset].lesson)

specs = tuple(
    (kind, (("mu", float(state["tok_mu"])),) if kind == "akl" else params)
    for kind, params in model.objective_specs(kinds, state)
)
plan = ui.within_budget(budget.plan(budget.seconds_tokens(len(specs)), state["tok_inits"], state["tok_steps"]))
if table is not None:
    try:
        with st.spinner("Training…"):
            trajectories = fit_joint(table, specs, plan.steps, state["tok_lr"], plan.inits, state["tok_seed"])
    except ValueError as err:
        problem = f"This combination cannot be computed: {err}"
if problem:
    st.error(problem)
else:
    teacher = Categorical(probs=table)
    runs = [Run(kind, dict(params), traj) for (kind, params), traj in zip(specs, trajectories)]
    start = min(state["tok_start"], plan.inits - 1)
    if start != state["tok_start"]:
        count = plan.inits
        st.caption(f"There {'is 1 start' if count == 1 else f'are {count} starts'}: showing start {start}.")
    fit_args = (specs, plan.steps, state["tok_lr"], plan.inits, state["tok_seed"])
    figure = ui.chart(  # everything the figure depends on: the table, its labels, the fits, the start, the speed
        ("tokens_joint", table, labels, fit_args, start, state["speed"]),
        lambda: joint_animation(teacher, runs, labels, start=start, frame_ms=state["speed"]),
    )
    exports["Joint distributions"] = figure
    st.plotly_chart(figure, key="tok_joint_chart", width="stretch")
    for run in runs:
        st.markdown(f"- {token_caption(teacher, run, labels)}")
    st.subheader("Final students, per objective and start")
    st.dataframe(answer_rows(teacher, runs, labels), hide_index=True, width="stretch")

st.header("One position: temperature, top-k and top-p")
pair = PRESETS[next_preset]
st.caption(pair.lesson)
sweep_specs = tuple(dict.fromkeys((("forward_kl", ()), ("reverse_kl", ())) + specs))
temperatures = tuple(np.union1d(TEMPERATURES, [state["tok_temp"]]))
try:
    sweep = decoding_sweep(
        pair.teacher.probs,
        np.exp(pair.student.log_probs),
        sweep_specs,
        temperatures,
        state["tok_topk"],
        state["tok_topp"],
        state["tok_decode"],
    )
except ValueError as err:
    ui.error(err)
tokens = pair.labels[0]
decoding = (next_preset, sweep_specs, temperatures, state["tok_topk"], state["tok_topp"], state["tok_decode"])
exports["Temperature sweep"] = ui.chart(  # the preset fixes the pair; the rest is the sweep's arguments
    ("tokens_decoding", decoding, state["tok_temp"]), lambda: decoding_figure(sweep, tokens, state["tok_temp"])
)
st.plotly_chart(exports["Temperature sweep"], key="tok_decode_chart", width="stretch")
st.markdown(decoding_caption(sweep, tokens, state["tok_temp"]))
export_ui.export_panel(exports, "tokens")
ui.finish()
