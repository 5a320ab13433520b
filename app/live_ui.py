"""The 1-D lab's hero: the live widget (kl_core/live) as a Streamlit component that trains in the browser.

The browser trains every start of every objective itself (``engine.js``); the server sends the
scene once per rerun and hears back only after a drag or a key press is released and the widget
has been left alone for a second (a burst of drags is one report). Then the teacher is snapped
to the sidebar's steps (weight 0.05, mean and std 0.1), written into the page's state, and the
rerun recomputes the exact table and captions with kl_core; the URL follows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from app import export_ui, ui
from kl_core.live.export import bundle_js, scene_from_scenario, widget_css
from kl_core.live.lesson import lesson_scene

__all__ = ["live_lab", "lesson_live", "teacher_from_release"]

KEY = "live_lab"
_APPLIED = "_live_lab_applied"

# Mount glue (components v2): one widget per host element. A new scene whose student family,
# objectives and training settings are unchanged only replaces the teacher (training goes on), so
# the rerun caused by the widget's own report (which makes the preset "custom") does not restart it.
#
# The report is debounced: a release (or a key press, a click on empty space, New starts) is held
# until the learner has let go and left the widget alone for REPORT_IDLE_MS; a pointer or key going
# down inside the widget postpones it, so a burst of drags is one report and one rerun, with the
# last teacher. While a report is held or on its way, a scene with an older teacher (a rerun for
# another reason) does not pull the modes back. A held report is sent at once if the widget is
# unmounted (the page's objectives changed) or the page is being hidden.
REPORT_IDLE_MS = 1000
_MOUNT_JS = """
const REPORT_IDLE_MS = __REPORT_IDLE_MS__;
const instances = new WeakMap();
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const scene = data && data.scene;
  if (!scene) return;
  const sig = JSON.stringify({ ...scene, teacher: null, starts: null, student: { ...scene.student, start: null } });
  const teacher = JSON.stringify(scene.teacher);
  let inst = instances.get(parentElement);
  if (!inst || inst.sig !== sig) {
    if (inst) inst.close();
    let host = parentElement.querySelector(".kl-live-host");
    if (!host) {
      host = document.createElement("div");
      host.className = "kl-live-host";
      parentElement.appendChild(host);
    }
    const box = { lastSent: 0, pending: null, timer: 0, down: new Set() };
    const send = () => {
      clearTimeout(box.timer);
      box.timer = 0;
      const ev = box.pending;
      if (!ev) return;
      box.pending = null;
      // increasing across remounts and reloads, so Python never takes a new release for an old one
      box.lastSent = Math.max(box.lastSent + 1, Math.round((performance.timeOrigin + performance.now()) * 1000));
      setStateValue("release", { teacher: ev.teacher, start: ev.start, token: box.lastSent });
    };
    const hold = () => { clearTimeout(box.timer); box.timer = 0; };
    const arm = () => {
      hold();
      if (box.pending && box.down.size === 0) box.timer = setTimeout(send, REPORT_IDLE_MS);
    };
    const onDown = (ev) => { box.down.add(ev.pointerId); hold(); };
    const onUp = (ev) => { if (box.down.delete(ev.pointerId)) arm(); };
    const onHide = () => { if (document.visibilityState === "hidden") send(); };
    // pointers go down on the widget and may come up anywhere (composed events reach the document)
    const listeners = [
      [host, "pointerdown", onDown], [document, "pointerup", onUp], [document, "pointercancel", onUp],
      [host, "keydown", hold], [host, "keyup", arm], [document, "visibilitychange", onHide],
    ];
    const report = data.report !== false;
    if (report) for (const [target, name, fn] of listeners) target.addEventListener(name, fn, true);
    const ctl = mount(host, scene, {
      onChange: report ? (ev) => { box.pending = ev; arm(); } : null,
    });
    const close = () => {
      send();
      if (report) for (const [target, name, fn] of listeners) target.removeEventListener(name, fn, true);
      ctl.destroy();
    };
    inst = { ctl, sig, teacher, box, close };
    instances.set(parentElement, inst);
  } else if (inst.teacher !== teacher && !inst.box.pending && !(inst.box.lastSent > (data.applied || 0))) {
    // (a scene answering an older release while a newer one is held or on its way would pull the mode back)
    inst.ctl.setTeacher(scene.teacher, scene.starts);  // training goes on; Reset then uses the table's starts
    inst.teacher = teacher;
  }
  return () => {
    const current = instances.get(parentElement);
    if (current) current.close();
    instances.delete(parentElement);
  };
}
""".replace("__REPORT_IDLE_MS__", str(REPORT_IDLE_MS))


@st.cache_resource
def _component():
    return st.components.v2.component(
        "kl_lab_live", html="", css=widget_css(), js=bundle_js() + _MOUNT_JS, isolate_styles=True
    )


def _snap(value: float, step: float, low: float, high: float) -> float:
    return round(min(max(round(value / step) * step, low), high), 4)


def teacher_from_release(release: Any) -> tuple[tuple[float, float, float], ...] | None:
    """The teacher a release reports, snapped to the sidebar's steps and ranges; None if malformed."""
    if not isinstance(release, Mapping) or not isinstance(release.get("teacher"), Mapping):
        return None
    t = release["teacher"]
    try:
        w, m, s = (list(map(float, t[k])) for k in ("weights", "means", "stds"))
    except (KeyError, TypeError, ValueError):
        return None
    if not (1 <= len(w) == len(m) == len(s) <= 6) or not all(math.isfinite(v) for v in (*w, *m, *s)):
        return None
    return tuple(
        (_snap(a, 0.05, 0.05, 1.0), _snap(b, 0.1, -10.0, 10.0), _snap(c, 0.1, 0.2, 4.0)) for a, b, c in zip(w, m, s)
    )


def _on_release() -> None:
    value = st.session_state.get(KEY)
    release = value.get("release") if isinstance(value, Mapping) else getattr(value, "release", None)
    spec = teacher_from_release(release)
    if spec is None or st.session_state.get(_APPLIED) == release.get("token"):
        return
    st.session_state[_APPLIED] = release.get("token")
    ui.set_value("modes", len(spec))
    for i, (w, m, s) in enumerate(spec, start=1):
        for name, value in ((f"w{i}", w), (f"m{i}", m), (f"s{i}", s)):
            ui.set_value(name, value)
    ui.set_value("preset", "custom")


def live_lab(state: Mapping[str, Any], kinds: Sequence[str]) -> None:
    """The live widget for the page's teacher, student and objectives (nothing if they cannot be a scenario)."""
    scenario = export_ui.scenario_1d(state, kinds)
    if scenario is None:
        return
    try:
        scene = scene_from_scenario(scenario, autoplay=True)
    except ValueError:  # e.g. every start infinite (alpha outside [0, 1]): the exact fit below says why
        return
    applied = st.session_state.get(_APPLIED) or 0  # the token of the last release applied
    _component()(key=KEY, data={"scene": scene, "applied": applied}, on_release_change=_on_release)
    st.caption(
        "Live: this trains in your browser, every start at once. Drag the grey modes; a second after you "
        "let go, the sidebar, the link and the exact results below follow. Those train every start from its "
        "beginning on the new teacher, while the live panels keep training from where the students are: "
        "after a big change a mode-seeking student (reverse KL) can sit on another mode, because where it "
        "ends depends on where it starts. **Reset** trains the panels from the table's starts."
    )


@st.cache_data(show_spinner=False, max_entries=8)
def _lesson_scene(number: int) -> dict | None:
    from kl_core.lesson import get_step

    return lesson_scene(get_step(number))


def lesson_live(number: int) -> bool:
    """The live widget of lesson step ``number`` (its teacher, starts and objectives, p/q notation), if it
    has one; it stays in the browser (nothing is reported back). Returns whether it was drawn."""
    scene = _lesson_scene(number)
    if scene is None:
        return False
    _component()(key=f"lesson_live_{number}", data={"scene": scene, "report": False})
    st.caption(
        "Now play with it: this trains in your browser, every start at once. Drag a grey bump of p "
        "(left/right, up/down, its side handle for the width) and watch q re-fit; click empty space to "
        "start q there."
    )
    return True
