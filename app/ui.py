"""Streamlit glue: URL-backed controls, the teacher editor, sharing, errors and cached kl_core calls.

A page calls :func:`setup` first, draws its controls with :func:`control` (each bound to a field
of ``app.state``), calls the cached computations below, hands the results to ``kl_core.viz``,
and ends with :func:`finish`, which writes the state back to the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import plotly.graph_objects as go
import streamlit as st

from app import controls, model, shipped
from app import state as schema
from kl_core.budget import Plan
from kl_core.presets import PRESETS, random_teacher
from kl_core.viz import label_for

__all__ = [
    "setup",
    "control",
    "set_value",
    "objective_controls",
    "training_controls",
    "teacher_editor",
    "finish",
    "cached",
    "chart",
    "error",
    "within_budget",
]

_STATE, _HIDDEN, _EMBED = "_kl_state", "_kl_hidden", "_kl_embed"
_STREAMLIT_OWN = ("embed", "embed_options")  # query keys Streamlit owns: never set from a script
# An embed view is figure first: in every block of the page (a flex column) the children holding a chart
# (the chart itself, its row of columns, its fragment) move to the top, above the title and the text; the
# sidebar starts collapsed (app/main.py).
_EMBED_CSS = (
    "<style>[data-testid='stMain'] [data-testid='stVerticalBlock'] > *:has([data-testid='stPlotlyChart'])"
    " {order: -1}</style>"
)

# cached, plain-valued kl_core calls (the results are immutable and picklable); the default views' results
# are shipped (app/shipped.py): a first visitor does not wait for them
cached = {
    name: st.cache_data(max_entries=32, show_spinner=False)(
        shipped.served(name, getattr(model, name)) if name in shipped.NAMES else getattr(model, name)
    )
    for name in (
        *("lab_1d_runs", "summaries_1d", "lab_2d_runs", "summaries_2d"),
        *("landscape_pair", "sweep_fits", "capacity_fits"),
    )
}


@st.cache_resource(max_entries=32, show_spinner=False)
def _built(key: tuple, _build: Callable[[], go.Figure]) -> go.Figure:
    return _build()


def chart(key: tuple, build: Callable[[], go.Figure]) -> go.Figure:
    """The figure ``build()`` makes, built once per ``key`` in this server and shared by every session.

    ``key`` must hold every plain value the figure depends on (a page's cached call's arguments and its
    drawing options); ``build`` is not hashed. A warm rerun then costs no figure build. Never modify the
    returned figure (``st.plotly_chart`` and the export panel only read it).
    """
    return _built(key, build)


def setup() -> dict[str, Any]:
    """The canonical state of this session, loaded from the URL on the first run (with warnings)."""
    if _STATE not in st.session_state:
        params = st.query_params.to_dict()
        state, warnings = model.start_state(params)
        st.session_state[_STATE] = state
        st.session_state[_HIDDEN] = schema.hidden_controls(params)
        st.session_state[_EMBED] = embedded(params)
        st.session_state["_kl_warnings"] = warnings
    if st.session_state[_EMBED]:
        st.html(_EMBED_CSS)
    for w in st.session_state.pop("_kl_warnings", []):
        st.warning(w, icon="⚠️")  # Markdown built by app.state: user text only inside code spans
    controls.page_aids()  # keyboard animation controls, chart labels, phone layout (app/controls.py)
    return st.session_state[_STATE]


def embedded(params: dict[str, Any] | None = None) -> bool:
    """True in an ``?embed=true`` view (Streamlit keeps ``embed`` out of st.query_params; st.context has it)."""
    try:
        if st.context.is_embedded:
            return True
    except (AttributeError, RuntimeError):  # older streamlit, or no browser context (AppTest)
        pass
    return schema.is_embed(st.query_params.to_dict() if params is None else params)


def _key(name: str) -> str:
    return f"w_{name}"


def _to_widget(field: schema.Field, value: Any) -> Any:
    if field.kind == "multi":
        return list(value)
    if field.kind == "int":
        return int(value)
    if field.kind == "float":
        return float(value)
    return value


_SHORT_TITLES = {  # presets whose title is longer than the sidebar's select box
    "city_tokens": "Correlated city names",
    "three_tokens": "Three-token city names",
    "breakfast_next_token": "Next token: breakfast",
    "capital_next_token": "Next token: capital city",
    "correlated": "Correlated Gaussian",
}


def _format(name: str):
    field = schema.FIELDS[name]
    if field.labels:
        labels = dict(field.labels)
        return lambda value: labels.get(value, str(value))
    if name in ("objectives", "objectives2d", "left", "right", "tok_objectives"):
        return lambda kind: label_for(kind, {})
    if name in ("estimator",):
        return {
            "exact": "Exact",
            "off_policy": "MC: teacher samples",
            "on_policy_pathwise": "MC: pathwise",
            "on_policy_score": "MC: REINFORCE",
        }.get
    if name in ("student",):
        return {
            "gaussian": "Gaussian",
            "gaussian_fixed_std": "Gaussian, std held fixed",
            "mixture": "Mixture of K Gaussians",
        }.get
    if name in ("preset", "preset2d", "tok_preset", "tok_next"):
        # a name that fits the sidebar's select box (~24 characters); the full title is cut off there
        return lambda n: _SHORT_TITLES.get(n, PRESETS[n].title.split(" (")[0]) if n in PRESETS else "Custom"
    return str


def control(name: str, widget: str = "slider", container: Any = None, on_change: Any = None) -> Any:
    """Draw the widget for field ``name`` (unless hidden by ``hide=``) and return its typed value."""
    field = schema.FIELDS[name]
    state = st.session_state[_STATE]
    if name in st.session_state[_HIDDEN]:
        return state[name]
    box = container if container is not None else st.sidebar
    key = _key(name)
    # first draw, or the first run of another page: start from the canonical state. Streamlit drops the value of
    # a widget the last run did not draw, even under a key another page shares, and the slider then opens at its
    # minimum: the teacher became one mode at -10 after lab -> landscape -> lab
    if key not in st.session_state or st.session_state.get("_kl_page_changed", False):
        st.session_state[key] = _to_widget(field, state[name])
    common = {"key": key, "help": field.help or None, "on_change": on_change}
    if field.kind in ("int", "float"):
        cast = int if field.kind == "int" else float
        bounds = {"min_value": cast(field.low), "max_value": cast(field.high), "step": cast(field.step)}
        maker = box.slider if widget == "slider" else box.number_input
        value = maker(field.label, **bounds, **common)
    elif field.kind == "choice":
        value = box.selectbox(field.label, field.choices, format_func=_format(name), **common)
    elif field.kind == "multi":
        value = box.multiselect(field.label, field.choices, format_func=_format(name), **common)
        if not value:  # an empty selection keeps the last valid one
            box.caption("Pick at least one objective; showing the previous choice.")
            return state[name]
    else:
        value = box.toggle(field.label, **common)
    state[name] = tuple(value) if field.kind == "multi" else value
    return state[name]


def objective_controls(kinds: Any) -> None:
    """The parameter controls the chosen objectives need (each drawn once)."""
    kinds = set(kinds)
    if "jsd" in kinds:
        control("beta")
    if "alpha" in kinds:
        control("alpha")
    if {"skew_forward_kl", "skew_reverse_kl"} & kinds:
        control("skew")


def training_controls(estimator: bool = True) -> None:
    """Estimator (and its sample size), learning rate, steps, starts and seed."""
    if estimator:
        control("estimator", "select")
        if st.session_state[_STATE]["estimator"] != "exact":
            control("samples")
    for name in ("lr", "steps", "inits"):
        control(name)
    control("seed", "number")


def set_value(name: str, value: Any) -> None:
    """Change a control's value from a callback (e.g. a Next button), whether or not it is drawn."""
    _set(name, value)


def _set(name: str, value: Any) -> None:
    """Change a field from a callback: the canonical state and its widget alike."""
    st.session_state[_STATE][name] = value
    st.session_state[_key(name)] = _to_widget(schema.FIELDS[name], value)


def _apply_teacher(spec: model.TeacherSpec) -> None:
    for name, value in model.teacher_fields(spec).items():
        _set(name, value)


def _on_preset() -> None:
    name = st.session_state[_key("preset")]
    st.session_state[_STATE]["preset"] = name
    if name in PRESETS:
        _apply_teacher(model.spec_from_teacher(PRESETS[name].teacher))


def _on_teacher_edit() -> None:
    _set("preset", "custom")


def _on_randomise() -> None:
    state = st.session_state[_STATE]
    seed = int(st.session_state.get(_key("teacher_seed"), state["teacher_seed"]))
    _apply_teacher(model.spec_from_teacher(random_teacher(state["modes"], seed)))
    _set("teacher_seed", (seed + 1) % 10_000)
    _set("preset", "custom")


def teacher_editor() -> dict[str, Any]:
    """Preset picker, number of modes, each mode's weight/mean/std, and a seeded randomiser."""
    state = st.session_state[_STATE]
    st.sidebar.header("Teacher")
    control("preset", "select", on_change=_on_preset)
    control("modes", on_change=_on_teacher_edit)
    for i in range(1, state["modes"] + 1):
        with st.sidebar.expander(f"Mode {i}", expanded=i <= 2):
            for c in "wms":
                control(f"{c}{i}", container=st, on_change=_on_teacher_edit)
    if "teacher_seed" not in st.session_state[_HIDDEN]:
        cols = st.sidebar.columns([1, 1], vertical_alignment="bottom")
        control("teacher_seed", "number", container=cols[0])
        cols[1].button("Randomise", on_click=_on_randomise, help="A random teacher from this seed", width="stretch")
    return state


def within_budget(plan: Plan) -> Plan:
    """Show the plan's note when the page's work budget cut its starts or steps (kl_core.budget); return it."""
    note = plan.note()
    if note:
        st.info(note, icon="⏱️")
    return plan


def error(err: Exception) -> None:
    """Bad input in the page's combination of values: a clear message, never a traceback."""
    st.error(f"This combination cannot be computed: {err}")
    st.stop()


def finish() -> None:
    """Write the state back to the URL (only non-defaults) and offer a link to share it."""
    state = st.session_state[_STATE]
    keep = {}
    if st.session_state[_HIDDEN]:
        keep["hide"] = ",".join(sorted(st.session_state[_HIDDEN]))
    # ``embed`` is never written back: Streamlit keeps it in the browser's URL itself and refuses to have it
    # set programmatically (StreamlitAPIException); it is not in st.query_params either
    query = schema.to_query(state, keep)
    if state["preset"] in PRESETS:  # the preset's name says it all: no mode fields in the link
        query = {k: v for k, v in query.items() if k not in schema.teacher_fields(schema.MAX_MODES) + ["modes"]}
    current = {k: v for k, v in st.query_params.to_dict().items() if k not in _STREAMLIT_OWN}
    if query != current:
        st.query_params.from_dict(query)
    if st.session_state[_EMBED]:
        return
    with st.sidebar.expander("Share these settings"):
        base = _base_url()
        st.code(f"{base}?{urlencode(query)}" if query else base, language=None)
        st.caption("Add `hide=lr,steps` to hide controls for a class, `embed=true` for a clean embed.")


def _base_url() -> str:
    try:
        url = st.context.url or ""
    except Exception:  # older streamlit or no browser context (tests): a relative link still works
        url = ""
    return url.split("?")[0]
