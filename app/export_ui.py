"""The "Export" expander of a page: HTML, PNG, SVG, GIF and MP4 of its figure, and its scenario as JSON.

A page calls :func:`export_panel` once, after its figure is drawn and before ``ui.finish()``.
Nothing is rendered on a normal rerun: the HTML is built when its download is clicked, the images
and movies when their Render button is pressed (then cached on the figure's JSON). Hidden in
``?embed=true`` views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app import model, ui
from app import state as schema
from kl_core.live import export as live
from kl_core.scenario import MAX_BYTES, Scenario
from kl_core.viz import export

__all__ = ["export_panel", "scenario_1d", "scenario_2d", "apply_scenario", "render"]

RASTER = {  # label: (format, mime type)
    "PNG": ("png", "image/png"),
    "SVG": ("svg", "image/svg+xml"),
    "GIF": ("gif", "image/gif"),
    "MP4": ("mp4", "video/mp4"),
}
_MESSAGE = "_export_message"  # (kind, text) shown once after an upload
UPLOAD_LIMIT_MB = 1  # the uploader's own limit (Streamlit counts whole megabytes; .streamlit/config.toml agrees)
REASON_CHARS = 300  # a refusal's reason (it quotes the file's values, themselves cut to 40 characters)


def scenario_1d(state: Mapping[str, Any], kinds: Sequence[str]) -> Scenario | None:
    """The 1-D lab's state as a Scenario (None if it cannot be one, which the page's own checks report)."""
    args = model.lab_1d_args(state, kinds)
    spec, preset, student, k, objectives, estimator, samples, lr, steps, inits, seed = args
    try:
        return Scenario(
            space="1d",
            preset=preset,
            teacher=spec,
            student=student,
            components=k,
            objectives=objectives,
            estimator=estimator,
            samples=samples,
            lr=lr,
            steps=steps,
            inits=inits,
            seed=seed,
            frame_ms=state["speed"],
        )
    except ValueError:
        return None


def scenario_2d(state: Mapping[str, Any], kinds: Sequence[str]) -> Scenario | None:
    """The 2-D lab's state as a Scenario (None if it cannot be one)."""
    try:
        return Scenario(
            space="2d",
            preset=state["preset2d"],
            objectives=model.objective_specs(kinds, state),
            lr=state["lr2d"],
            steps=state["steps2d"],
            inits=state["inits2d"],
            seed=state["seed"],
            frame_ms=state["speed"],
        )
    except ValueError:
        return None


def apply_scenario(scenario: Scenario) -> dict[str, Any]:
    """The 1-D lab's state fields for a scenario; ValueError if the app's controls cannot show it."""
    if scenario.space != "1d":
        raise ValueError(f"this page restores 1-D scenarios; the file holds a {scenario.space} scenario")
    kinds = [kind for kind, _ in scenario.objectives]
    if len(set(kinds)) != len(kinds):
        raise ValueError("objectives: the app shows each kind once; this scenario repeats one")
    params = {kind: dict(p) for kind, p in scenario.objectives}
    skews = {params[k]["alpha"] for k in ("skew_forward_kl", "skew_reverse_kl") if k in params}
    if len(skews) > 1:
        raise ValueError("objectives: the app uses one α for both skew KLs; this scenario has two")
    fields: dict[str, Any] = {"preset": scenario.preset, "modes": len(scenario.teacher)}
    for i, (w, m, s) in enumerate(scenario.teacher, start=1):
        fields.update({f"w{i}": w, f"m{i}": m, f"s{i}": s})
    fields.update(
        student=scenario.student,
        k=scenario.components,
        objectives=tuple(kinds),
        estimator=scenario.estimator,
        samples=scenario.samples,
        lr=scenario.lr,
        steps=scenario.steps,
        inits=scenario.inits,
        seed=scenario.seed,
        speed=scenario.frame_ms,
    )
    if "jsd" in params:
        fields["beta"] = params["jsd"]["beta"]
    if "alpha" in params:
        fields["alpha"] = params["alpha"]["alpha"]
    if skews:
        fields["skew"] = skews.pop()
    for name, value in fields.items():  # the app's own ranges, as for a URL (they match the scenario's)
        schema.FIELDS[name].parse(schema.FIELDS[name].dump(value))
    return fields


def _on_upload(key: str) -> None:
    """Restore the uploaded scenario into the page's state (a callback: widgets may still be set here)."""
    upload = st.session_state.get(key)
    if upload is None:
        return
    name = schema.quote(upload.name)  # user text: an inert code span, cut short
    if upload.size > MAX_BYTES:  # Streamlit's own limit (1 MB) has already refused anything larger
        reason = f"the file is {upload.size} bytes; a scenario file is at most {MAX_BYTES} bytes (64 KB)"
        st.session_state[_MESSAGE] = ("error", f"Could not restore {name}: {schema.quote(reason, REASON_CHARS)}")
        return
    try:
        fields = apply_scenario(Scenario.from_json(upload.getvalue()))
    except (ValueError, OverflowError, TypeError, RecursionError) as err:  # from_json raises ValueError only
        st.session_state[_MESSAGE] = ("error", f"Could not restore {name}: {schema.quote(err, REASON_CHARS)}")
        return
    for field, value in fields.items():
        ui._set(field, value)  # the canonical state and its widget alike
    st.session_state[_MESSAGE] = ("success", f"Restored the scenario from {name}.")


def _page_title(name: str, label: str) -> str:
    """A page's export title without a scenario, e.g. "KL Lab: landscape" or "KL Lab: rl, PPO policy"."""
    page = name.replace("_", " ")
    return f"KL Lab: {page}" if label == "figure" else f"KL Lab: {page}, {label}"


@st.cache_data(max_entries=16, show_spinner=False)
def _render_cached(fig_json: str, fmt: str, width: int, fps: float, title: str | None, caption: str | None) -> bytes:
    import json

    fig = json.loads(fig_json)
    options: dict[str, Any] = {"width": width, "title": title, "caption": caption}
    if fmt in ("gif", "mp4"):
        options["fps"] = fps
    return export.export(fig, fmt, **options)


def render(
    fig: go.Figure, fmt: str, width: int, fps: float, title: str | None = None, caption: str | None = None
) -> bytes:
    """``fig`` as a PNG/SVG/GIF/MP4 file's bytes with its title and caption, cached on the JSON and the options."""
    return _render_cached(fig.to_json(), fmt, width, fps, title, caption)


def export_panel(fig: go.Figure | Mapping[str, go.Figure], name: str, scenario: Scenario | None = None) -> None:
    """An "Export" expander for the page's figure (or a {label: figure} choice) and its scenario.

    With a 1-D ``scenario`` it also offers a scenario upload that restores the page's controls.
    """
    if ui.embedded():
        return
    figures = dict(fig) if isinstance(fig, Mapping) else {"figure": fig}
    with st.expander("Export"):
        label = next(iter(figures))
        if len(figures) > 1:
            label = st.selectbox("Figure", list(figures), key=f"export_{name}_figure")
        chosen = figures[label]
        stem = name if len(figures) == 1 else f"{name}_{label.lower().replace(' ', '_')}"
        # the file's title and settings caption: from the scenario when the page has one
        title, caption = export.scenario_labels(scenario) if scenario is not None else (_page_title(name, label), None)
        st.download_button(
            "HTML (interactive, plays offline)",
            data=lambda: export.to_html(chosen, title=title, caption=caption),
            file_name=f"{stem}.html",
            mime="text/html",
            on_click="ignore",
            key=f"export_{name}_html",
        )
        cols = st.columns([2, 1, 1])
        kind = cols[0].radio("Image or movie", list(RASTER), horizontal=True, key=f"export_{name}_format")
        width = cols[1].number_input("Width (px)", 160, 3840, export.DEFAULT_WIDTH, 16, key=f"export_{name}_width")
        fps = cols[2].number_input("Frames/s", 1, 30, 12, 1, key=f"export_{name}_fps", disabled=kind in ("PNG", "SVG"))
        fmt, mime = RASTER[kind]
        st.caption(
            "PNG and SVG show the figure as displayed (the fitted students); GIF and MP4 every frame. "
            "Rendering takes a few seconds for a still and about 0.5-1.5 s per frame for a movie "
            "(40 frames: 20-60 s)."
        )
        if st.button(f"Render {kind}", key=f"export_{name}_render"):
            try:
                with st.spinner(f"Rendering {kind}…"):
                    data = render(chosen, fmt, int(width), float(fps), title, caption)
            except (ValueError, RuntimeError) as err:
                st.error(f"Could not render {kind}: {err}")
            else:
                st.download_button(
                    f"Download {kind} ({len(data) / 1e6:.2f} MB)",
                    data=data,
                    file_name=f"{stem}.{fmt}",
                    mime=mime,
                    on_click="ignore",
                    key=f"export_{name}_download",
                    type="primary",
                )
        if scenario is not None:
            st.divider()
            st.download_button(
                "Scenario (JSON)",
                data=scenario.to_json(),
                file_name=f"{name}_scenario.json",
                mime="application/json",
                on_click="ignore",
                key=f"export_{name}_json",
            )
            if scenario.space == "1d":
                st.download_button(
                    "Live lab (HTML, trains in the browser)",
                    data=lambda: live.live_html(scenario, title=f"KL Lab: {name} (live)"),
                    file_name=f"{name}_live.html",
                    mime="text/html",
                    on_click="ignore",
                    key=f"export_{name}_live",
                )
                key = f"export_{name}_upload"
                st.file_uploader(
                    "Restore a scenario (JSON)",
                    type=["json"],
                    key=key,
                    on_change=_on_upload,
                    args=(key,),
                    max_upload_size=UPLOAD_LIMIT_MB,
                    help=f"A scenario file saved by this page: JSON, at most {MAX_BYTES // 1024} KB.",
                )
                # Streamlit's drop zone states its own limit in whole megabytes; the real limit is 64 KB
                st.html(
                    f"<style>.st-key-{key} [data-testid='stFileUploaderDropzoneInstructions'] small "
                    "{display: none}</style>"
                )
                st.caption(f"JSON, at most {MAX_BYTES // 1024} KB.")
            message = st.session_state.pop(_MESSAGE, None)
            if message is not None:
                (st.error if message[0] == "error" else st.success)(message[1])
