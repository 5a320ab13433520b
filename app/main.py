"""KL Lab, the Streamlit app: page configuration and navigation only."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `app.*` importable from the pages


def _embedded() -> bool:
    """An ``?embed=true`` view (an iframe): the figure first, the sidebar collapsed behind its toggle."""
    try:
        return bool(st.context.is_embedded)
    except (AttributeError, RuntimeError):  # no browser context (AppTest)
        return str(st.query_params.get("embed", "")).lower() in ("1", "true", "yes")


st.set_page_config(
    page_title="KL Lab: forward vs reverse KL",
    page_icon="🔀",
    layout="wide",
    initial_sidebar_state="collapsed" if _embedded() else "auto",
)

PAGES = Path(__file__).parent / "views"  # not "pages/": Streamlit would treat it as legacy multipage
navigation = st.navigation(
    [
        st.Page(PAGES / "lesson.py", title="Start here", url_path="lesson"),
        st.Page(PAGES / "lab_1d.py", title="Mode covering vs mode seeking", url_path="lab", default=True),
        st.Page(PAGES / "landscape.py", title="Loss landscape", url_path="landscape"),
        st.Page(PAGES / "family.py", title="Divergence family", url_path="family"),
        st.Page(PAGES / "lab_2d.py", title="2-D lab", url_path="lab_2d"),
        st.Page(PAGES / "tokens.py", title="Token lab", url_path="tokens"),
        st.Page(PAGES / "rl.py", title="Reverse KL is RL", url_path="rl"),
        st.Page(PAGES / "lm.py", title="Language-model lab", url_path="lm"),
        st.Page(PAGES / "theory.py", title="Theory", url_path="theory"),
    ]
)
# the page this run draws: on a change of page every control starts again from the canonical state (app/ui.py)
st.session_state["_kl_page_changed"] = st.session_state.get("_kl_page") != navigation.url_path
st.session_state["_kl_page"] = navigation.url_path
navigation.run()
