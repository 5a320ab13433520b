"""Page: the language-model lab: distil a synthetic language into a tiny transformer, method against method."""

from collections.abc import Callable

import streamlit as st

from app import export_ui, lm_own_models, ui
from kl_core.lm.distill import resolve_device
from kl_core.lm.neural import ASSETS, shipped_neural_teachers
from kl_core.lm.showcase import LiveComparison, Settings, TooManyTrainings, load_comparisons
from kl_core.viz.lm import (
    METHOD_NAMES,
    comparison_caption,
    method_label,
    metrics_figure,
    modes_figure,
    samples_html,
    summary_rows,
)

JOB, RESULTS, MESSAGE = "_lm_job", "_lm_results", "_lm_message"  # session keys: the running job, finished runs
POLL_S = 1.0  # how often the results redraw while training
# one file of comparisons and one directory of neural teachers: a few entries suffice
shipped = st.cache_data(max_entries=4, show_spinner=False)(load_comparisons)  # path -> {settings key: Comparison}
neural_languages = st.cache_data(max_entries=4, show_spinner=False)(shipped_neural_teachers)


def describe(s: Settings) -> str:
    methods = " vs ".join(method_label(m, s.params[m]) for m in s.methods)
    layers = f"{s.n_layer} layer{'' if s.n_layer == 1 else 's'}"
    return (
        f"{s.language}, {s.teacher} teacher, student with context {s.context}, {layers}, width "
        f"{s.n_embd}; {methods}; {s.steps} steps, seed {s.seed}"
    )


def session_alive() -> Callable[[], bool] | None:
    """A check, safe on any thread, that this browser session is still connected (None without a server).

    The training thread asks it at every evaluation: a closed tab ends its training (kl_core.lm.showcase).
    """
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():  # AppTest: no server, no sessions to outlive
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


def start(settings: Settings, device: str) -> None:
    job = st.session_state.get(JOB)
    if job is None or job.finished:
        try:
            st.session_state[JOB] = LiveComparison(settings, device, alive=session_alive()).start()
        except TooManyTrainings as err:  # a server-wide cap: refuse with the reason
            st.session_state[MESSAGE] = f"Not started: {err}."


def stop() -> None:
    job = st.session_state.get(JOB)
    if job is not None:
        job.stop()


state = ui.setup()
st.title("Language-model lab")
st.caption(
    "A teacher language whose prompts have several valid answers (modes), distilled into a tiny causal "
    "transformer by several methods from the same initial student. Every KL is exact (all answers enumerated) "
    "except for the stories, whose KLs are Monte Carlo with standard errors."
)

st.sidebar.header("Teacher")
language = ui.control("lm_language", "select")
teacher = ui.control("lm_teacher", "select")
st.sidebar.header("Student")
for name in ("lm_context", "lm_layers", "lm_width"):
    ui.control(name)
st.sidebar.header("Methods")
methods = ui.control("lm_methods", "multiselect")
if "gkd" in methods:
    ui.control("lm_beta")
    ui.control("lm_lam")
if {"skew_forward_kl", "skew_reverse_kl"} & set(methods):
    ui.control("lm_alpha")
st.sidebar.header("Training")
ui.control("lm_steps")
ui.control("lm_seed", "number")
device = ui.control("lm_device", "select")

if teacher == "neural" and language not in neural_languages():
    st.info(f"No neural teacher is shipped for {language}; using the exact teacher.", icon="ℹ️")
    teacher = "exact"
try:
    device_name = str(resolve_device(device))
except ValueError as err:
    st.warning(f"{err}. Training runs on the CPU.", icon="⚠️")
    device, device_name = "cpu", "cpu"
params = {"gkd": {"beta": state["lm_beta"], "lam": state["lm_lam"]}} if "gkd" in methods else {}
params |= {m: {"alpha": state["lm_alpha"]} for m in ("skew_forward_kl", "skew_reverse_kl") if m in methods}
try:
    settings = Settings(
        language, teacher, state["lm_context"], state["lm_layers"], state["lm_width"], tuple(methods), params,
        state["lm_steps"], state["lm_seed"],
    )  # fmt: skip
except ValueError as err:
    ui.error(err)

try:
    assets = shipped(str(ASSETS / "comparisons.json"))
except ValueError as err:
    assets = {}
    st.warning(f"No precomputed comparisons: {err}", icon="⚠️")
results = st.session_state.setdefault(RESULTS, {})
job = st.session_state.get(JOB)
if job is not None and job.finished:  # keep what it trained, then forget the job
    snapshot = job.snapshot()
    if snapshot.methods:
        results[job.settings.key()] = snapshot
    if job.error:
        st.session_state[MESSAGE] = f"Training ended early: {job.error}"
    del st.session_state[JOB]
    job = None
running = job is not None
if MESSAGE in st.session_state:
    st.error(st.session_state.pop(MESSAGE))

cols = st.columns([1, 1, 5])
cols[0].button("Train", key="lm_train", type="primary", disabled=running, on_click=start, args=(settings, device))
cols[1].button("Stop", key="lm_stop", disabled=not running, on_click=stop)
cols[2].caption(
    f"Trains every method on {device_name} in the background and redraws every {POLL_S:g} s; the other "
    "controls stay live. The same settings and seed give the same numbers."
)


@st.fragment(run_every=POLL_S if running else None)
def show() -> None:
    live = st.session_state.get(JOB)
    if running and (live is None or live.finished):
        st.rerun(scope="app")  # done: a full run stores the result and stops polling
    key = settings.key()
    if live is not None:
        comparison = live.snapshot()
        where = "starting"
        if comparison.methods:
            name, r = next(reversed(comparison.methods.items()))
            where = f"{method_label(name, r.params)}: step {r.steps} of {r.requested_steps}"
        stopping = ", stopping" if live.stopping else ""
        st.info(f"Training {describe(live.settings)} ({where}{stopping})…", icon="⏳")
    elif key in results:
        comparison = results[key]
        stopped = [method_label(n, r.params) for n, r in comparison.methods.items() if r.steps < r.requested_steps]
        st.caption(f"Trained in this session: {describe(comparison.settings)}.")
        if stopped or len(comparison.methods) < len(settings.methods):
            st.caption(f"Stopped early ({', '.join(stopped) or 'before the last method'}): showing what was done.")
    elif key in assets:
        comparison = assets[key]
        st.caption(f"Precomputed: {describe(comparison.settings)} ({comparison.note}). Press Train to run it live.")
    else:
        reference = Settings(language, teacher)
        comparison = assets.get(reference.key())
        if comparison is None:
            st.info("These settings have not been trained yet: press Train.", icon="ℹ️")
            return
        st.info(
            "These settings have not been trained yet: press Train. Meanwhile, the precomputed comparison for "
            f"{describe(reference)}.",
            icon="ℹ️",
        )
    if not comparison.methods:
        st.caption("Evaluating the initial student…")
        return
    st.markdown(comparison_caption(comparison))
    curves = metrics_figure(comparison)
    st.plotly_chart(curves, key="lm_metrics_chart", width="stretch")
    st.dataframe(summary_rows(comparison), hide_index=True, width="stretch")
    st.subheader("Modes: the final students against the teacher")
    modes = modes_figure(comparison)
    st.plotly_chart(modes, key="lm_modes_chart", width="stretch")
    st.subheader("Sampled answers")
    st.caption(
        "Each method's answers at its last evaluation, a few per prompt: coloured by the teacher mode they belong "
        "to (shade and [name]), struck through when the teacher never gives them (modes mixed)."
    )
    for col, (name, record) in zip(st.columns(len(comparison.methods)), comparison.methods.items()):
        col.markdown(f"**{method_label(name, record.params)}**")
        col.markdown(samples_html(record), unsafe_allow_html=True)
    if live is None:
        export_ui.export_panel({"Metric curves": curves, "Modes": modes}, "lm")


show()
with st.expander("The methods"):
    st.markdown(
        "\n".join(
            f"- **{METHOD_NAMES[m]}**: {desc}"
            for m, desc in (
                ("sft", "maximum likelihood on teacher samples (sequence-level forward KL, Monte Carlo)."),
                ("forward_kl", "token-level KL(T‖S) over the whole vocabulary on teacher samples (mode-covering)."),
                ("reverse_kl", "token-level KL(S‖T) on the student's own samples (on-policy, mode-seeking)."),
                ("on_policy_sampled", "REINFORCE with reward log T − log S of the sampled tokens only."),
                ("gkd", "generalized JSD(β) per token; student samples with probability λ (Agarwal et al. 2024)."),
                ("skew_forward_kl", "KL(T ‖ αT + (1−α)S) per token on teacher samples (DistiLLM, Ko et al. 2024)."),
                ("skew_reverse_kl", "KL(S ‖ αS + (1−α)T) per token on student samples (DistiLLM)."),
            )
        )
    )
lm_own_models.section()  # your own checkpoints (app/lm_own_models.py; off unless KL_LAB_LOCAL_MODELS=1)
ui.finish()
