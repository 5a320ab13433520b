"""The LM page's "Your own models" section: distil two local checkpoints on a prompt file (local runs only).

The section reads **server-side paths**, so it is off unless the app runs on your own machine with
``KL_LAB_LOCAL_MODELS=1`` in its environment (``KL_LAB_LOCAL_MODELS=1 streamlit run app/main.py``); a
public deployment leaves the variable unset and shows only how to switch it on and the command line.
Every path typed in is hostile input: length- and character-checked, resolved, required to be a folder
(checkpoints) or a file (prompts); messages are plain text, escaped once where they are shown. The work
is ``kl_core.lm.hf_distill``'s.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import streamlit as st

from kl_core.cli_args import short

__all__ = ["ENV", "enabled", "check_path", "md_escape", "section", "LIMITS"]

ENV = "KL_LAB_LOCAL_MODELS"
LIMITS = {"steps": (1, 200), "length": (1, 32), "batch_size": (1, 32), "seed": (0, 2**31 - 1)}
EVAL_SAMPLES = 8
RESULT = "lm_own_result"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~:&])")


def enabled() -> bool:
    """True when the app may read server-side paths (``KL_LAB_LOCAL_MODELS=1``)."""
    return os.environ.get(ENV, "") == "1"


def md_escape(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters, one line, every Markdown/HTML character backslash-escaped."""
    text = str(text)
    cut = text[:limit] + ("…" if len(text) > limit else "")
    cut = "".join(c if c.isprintable() else "?" for c in cut)
    return _MD_SPECIAL.sub(r"\\\1", cut)


def check_path(label: str, text: str, kind: str) -> Path:
    """``text`` as an existing folder (``kind="dir"``) or file (``"file"``); ValueError naming ``label``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{label}: enter a path")
    if len(text) > 4096 or any(not c.isprintable() for c in text):
        raise ValueError(f"{label}: a path of at most 4096 printable characters, got {short(text)}")
    try:
        path = Path(text.strip()).expanduser().resolve()
        ok = path.is_dir() if kind == "dir" else path.is_file()
    except (OSError, RuntimeError, ValueError):
        ok = False
    if not ok:
        what = "a folder (a saved Hugging Face checkpoint)" if kind == "dir" else "a prompt file"
        raise ValueError(f"{label}: {short(text, 60)} is not {what} on this machine")
    return path


def _run(teacher: str, student: str, prompts: str, methods: list[str], numbers: dict[str, int]) -> dict[str, Any]:
    from kl_core.lm.hf import load_pair, read_prompts
    from kl_core.lm.hf_distill import compare_hf, final_rows, verdict

    t_dir = check_path("Teacher folder", teacher, "dir")
    s_dir = check_path("Student folder", student, "dir")
    p_file = check_path("Prompt file", prompts, "file")
    if not methods:
        raise ValueError("Methods: choose at least one")
    for key, (low, high) in LIMITS.items():
        if not (isinstance(numbers[key], int) and low <= numbers[key] <= high):
            raise ValueError(f"{key} must be an integer in [{low}, {high}]")
    pair = load_pair(t_dir, s_dir)
    groups = read_prompts(p_file, pair.tokenizer, context=pair.context, length=numbers["length"])
    eval_every = max(1, numbers["steps"] // 4)
    results = compare_hf(
        pair, groups, methods, length=numbers["length"], steps=numbers["steps"], batch_size=numbers["batch_size"],
        seed=numbers["seed"], eval_every=eval_every, eval_samples=EVAL_SAMPLES, device="cpu",
    )  # fmt: skip
    history = [
        {"method": name, **{k: v for k, v in e.as_dict().items() if k != "exact"}}
        for name, r in results.items()
        for e in r.history
    ]
    samples = [
        {"method": name, "prompt": groups.texts[p][:200], "answer": text[:200]}
        for name, r in results.items()
        for p, text in list(zip(r.sample_prompt, r.sample_text))[:: max(1, len(r.sample_text) // 8)]
    ]
    return {
        "curves": {name: [e.as_dict() for e in r.history] for name, r in results.items()},
        "params": {name: r.params for name, r in results.items()},
        "rows": final_rows(results),
        "verdict": verdict(results),
        "history": history,
        "samples": samples,
        "device": next(iter(results.values())).device,
        "n_prompts": groups.n_prompts,
    }


def section() -> None:
    """Draw the section (one call from app/views/lm.py)."""
    from kl_core.lm.methods import METHODS

    st.subheader("Your own models")
    if not enabled():
        st.caption(
            "Distil your own Hugging Face teacher into your own student on your prompts. This reads folders on the "
            "server, so it is off here; run the app locally with `KL_LAB_LOCAL_MODELS=1 streamlit run app/main.py`, "
            "or use the command line: `kl-lab distill --teacher DIR --student DIR --prompts FILE`."
        )
        return
    st.caption(
        "Two local checkpoint folders (saved with `save_pretrained`; the tokenizer in the teacher's folder, the "
        'same vocabulary in both) and a prompt file (one prompt per line, or JSON lines with a "prompt"). '
        "Runs on the CPU here, in this session; the command line has no such limits."
    )
    cols = st.columns(3)
    teacher = cols[0].text_input("Teacher folder", key="lm_own_teacher", max_chars=4096)
    student = cols[1].text_input("Student folder", key="lm_own_student", max_chars=4096)
    prompts = cols[2].text_input("Prompt file", key="lm_own_prompts", max_chars=4096)
    methods = st.multiselect(
        "Methods", list(METHODS), default=["forward_kl", "reverse_kl"], key="lm_own_methods", max_selections=7
    )
    cols = st.columns(4)
    numbers = {
        key: int(col.number_input(label, min_value=lo, max_value=hi, value=default, step=1, key=f"lm_own_{key}"))
        for col, (key, label, default) in zip(
            cols,
            (("steps", "Steps", 40), ("length", "Answer tokens", 8), ("batch_size", "Batch", 8), ("seed", "Seed", 0)),
        )
        for lo, hi in [LIMITS[key]]
    }
    if st.button("Distil my models", key="lm_own_run", type="primary"):
        try:
            with st.spinner("Training every method on the CPU…"):
                st.session_state[RESULT] = _run(teacher, student, prompts, methods, numbers)
        except ValueError as err:
            st.session_state.pop(RESULT, None)
            st.error(md_escape(str(err), 300))
        except Exception as err:  # a checkpoint that loads but cannot run: one line, no traceback
            st.session_state.pop(RESULT, None)
            st.error(md_escape(f"These models could not be distilled: {type(err).__name__}: {err}", 300))
    result = st.session_state.get(RESULT)
    if result is None:
        return
    st.markdown(md_escape(result["verdict"], 1000))
    st.caption(
        f"{result['n_prompts']} prompt(s), device {result['device']}; KLs by Monte Carlo (± one standard error), "
        "validity: share of answers the teacher finds at least as likely per token as the least likely 5% of its own."
    )
    from kl_core.viz.lm_own import own_metrics_figure

    st.plotly_chart(own_metrics_figure(result["curves"], result["params"]), key="lm_own_chart", width="stretch")
    st.dataframe(result["rows"], hide_index=True, width="stretch", key="lm_own_table")
    with st.expander("Every evaluation"):
        st.dataframe(result["history"], hide_index=True, width="stretch", key="lm_own_history")
    st.caption("Sampled answers (the students' last evaluation; shown as plain text)")
    st.dataframe(result["samples"], hide_index=True, width="stretch", key="lm_own_samples")
