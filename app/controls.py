"""Page aids mounted once per page: keyboard controls for animations, chart text alternatives, phone layout.

Plotly draws an animation's Play / Pause buttons and frame slider in SVG, which Tab never reaches.
:func:`page_aids` mounts one small components-v2 element (no iframe, no server round trip) whose
script watches the page and, above every plotly chart that has frames, adds native controls:
Play, Pause, Step back, Step (buttons: Tab, Enter, Space) and a frame scrubber (a range input:
arrows, Home, End). They drive the figure's own controls: the buttons click plotly's buttons, the
scrubber presses plotly's slider at the chosen frame's tick, so the browser plays the frames
exactly as the mouse would and the server never reruns. The same script names each chart for
screen readers (``role="figure"`` and an ``aria-label``: the figure's title and the caption that
follows the chart), and the stylesheet stacks side-by-side chart columns into one column below
700 px and lets wide tables and display equations scroll sideways instead of being cut off.

The script is trusted code of this file; it reads the page's own DOM and writes only text
(``textContent``, attributes), never HTML from the page or the user.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["page_aids", "NARROW_PX", "TOOLBAR_CLASS"]

NARROW_PX = 700  # below this width side-by-side chart columns stack into one
TOOLBAR_CLASS = "kl-anim-keys"
KEY = "kl_page_aids"

_CSS = f"""
.st-key-{KEY} {{ display: none; }}
.{TOOLBAR_CLASS} {{ display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; margin: 0 0 0.25rem 0; }}
.{TOOLBAR_CLASS} button {{
  font: inherit; font-size: 0.875rem; color: inherit; background: transparent; cursor: pointer;
  border: 1px solid currentColor; border-radius: 0.4rem; padding: 0.15rem 0.6rem; min-height: 2rem;
}}
.{TOOLBAR_CLASS} input[type=range] {{ flex: 1 1 8rem; min-width: 6rem; accent-color: #0072B2; }}
.{TOOLBAR_CLASS} button:focus-visible, .{TOOLBAR_CLASS} input:focus-visible {{
  outline: 3px solid #0072B2; outline-offset: 2px;
}}
.{TOOLBAR_CLASS} output {{ font-size: 0.875rem; min-width: 7rem; font-variant-numeric: tabular-nums; }}
/* tables never cut off: a wide one scrolls sideways inside its own box */
[data-testid="stTable"], [data-testid="stMarkdownContainer"] table {{
  display: block; max-width: 100%; overflow-x: auto;
}}
[data-testid="stDataFrame"] {{ max-width: 100%; }}
/* a long display equation scrolls sideways instead of running off a phone's screen */
.katex-display {{ max-width: 100%; overflow-x: auto; overflow-y: hidden; padding: 0.1rem 0; }}
@media (max-width: {NARROW_PX}px) {{
  /* one plot column: a row of columns that holds a chart stacks */
  [data-testid="stHorizontalBlock"]:has([data-testid="stPlotlyChart"]) {{ flex-direction: column; }}
  [data-testid="stHorizontalBlock"]:has([data-testid="stPlotlyChart"]) > [data-testid="stColumn"] {{
    width: 100% !important; flex: 1 1 100% !important; min-width: 100% !important;
  }}
}}
"""

_JS = r"""
const BAR = "__BAR__";

function plot(box) { return box.querySelector(".js-plotly-plot"); }
function sliderOf(gd) { return gd && gd._fullLayout && (gd._fullLayout.sliders || [])[0]; }
function frameCount(gd) {
  const frames = gd && gd._transitionData && gd._transitionData._frames;
  return frames ? frames.length : 0;
}
function prefix(slider) { return (slider.currentvalue && slider.currentvalue.prefix) || ""; }
function label(slider, i) { const s = slider.steps[i]; return s ? prefix(slider) + s.label : ""; }

function playing(gd) {
  const t = gd && gd._transitionData;
  return Boolean(t && ((t._frameQueue && t._frameQueue.length) || t._animationRaf));
}

// Pause interrupts plotly's running animation, whose promise plotly then rejects with `undefined`,
// unhandled (a mouse click on plotly's own Pause does the same): that one rejection is expected
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason === undefined && Date.now() - (window.__klPausedAt || 0) < 2000) e.preventDefault();
});

function pause(gd) {
  if (!playing(gd)) return;
  window.__klPausedAt = Date.now();
  clickButton(gd, "Pause");
}

function clickButton(gd, text) {
  for (const b of gd.querySelectorAll(".updatemenu-button")) {
    if ((b.textContent || "").trim() === text) {
      b.dispatchEvent(new MouseEvent("click", {bubbles: true}));
      return true;
    }
  }
  return false;
}

// press plotly's own slider at frame i's tick: plotly animates to that frame and moves its slider
function jump(gd, i) {
  const ticks = gd.querySelectorAll(".slider-container .slider-tick-rect");
  const rail = gd.querySelector(".slider-container .slider-rail-touch-rect");
  if (!ticks[i] || !rail) return;
  const t = ticks[i].getBoundingClientRect(), r = rail.getBoundingClientRect();
  const at = {bubbles: true, cancelable: true, clientX: t.left + t.width / 2, clientY: r.top + r.height / 2, button: 0};
  rail.dispatchEvent(new MouseEvent("mousedown", at));
  gd.dispatchEvent(new MouseEvent("mouseup", at));
}

function sync(bar) {
  const gd = bar.__gd, slider = sliderOf(gd);
  if (!slider) return;
  const n = slider.steps.length, i = Math.min(slider.active || 0, n - 1);
  const range = bar.querySelector("input");
  range.max = String(n - 1);
  if (document.activeElement !== range || range.value !== String(i)) range.value = String(i);
  const text = label(slider, i), out = bar.querySelector("output");
  if (range.getAttribute("aria-valuetext") !== text) range.setAttribute("aria-valuetext", text);
  // only a real change is written: rewriting the same text is a childList mutation, which would
  // wake the observer below, which would sync again: a loop at the frame rate on an idle page
  if (out.textContent !== text) out.textContent = text;
}

function makeBar(box) {
  const bar = document.createElement("div");
  bar.className = BAR;
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Animation controls");
  const add = (tag, text, name, act) => {
    const el = document.createElement(tag);
    if (tag === "button") { el.type = "button"; el.textContent = text; el.addEventListener("click", act); }
    if (name) el.setAttribute("aria-label", name);
    bar.appendChild(el);
    return el;
  };
  const gd = () => bar.__gd;
  const active = () => (sliderOf(gd()) || {}).active || 0;
  const count = () => (sliderOf(gd()) || {steps: []}).steps.length;
  add("button", "▶ Play", "Play", () => {
    if (active() < count() - 1) { clickButton(gd(), "Play"); return; }
    jump(gd(), 0);  // at the end: replay from the start, once the jump has been drawn
    setTimeout(() => clickButton(gd(), "Play"), 50);
  });
  add("button", "Pause", "Pause", () => pause(gd()));
  add("button", "◀ Step back", "Step back", () => { pause(gd()); jump(gd(), Math.max(active() - 1, 0)); });
  add("button", "Step ▶", "Step forward", () => {
    pause(gd());
    jump(gd(), Math.min(active() + 1, count() - 1));
  });
  const range = add("input", "", "Animation frame");
  range.type = "range"; range.min = "0"; range.step = "1";
  range.addEventListener("input", () => { pause(gd()); jump(gd(), Number(range.value)); });
  const out = add("output", "", null);
  out.setAttribute("aria-hidden", "true");  // the range's aria-valuetext already says it
  return bar;
}

// the chart's text alternative: its titles, then the caption or text that directly follows it
function describe(chart, box) {
  const gd = plot(chart);
  const titles = gd ? [...gd.querySelectorAll(".gtitle, .annotation-text")] : [];
  const title = titles.map(t => t.textContent.trim()).filter(Boolean).slice(0, 6).join("; ");
  const after = [];
  let next = box.nextElementSibling;
  for (let k = 0; next && k < 3; k++, next = next.nextElementSibling) {
    if (next.querySelector('[data-testid="stPlotlyChart"], input, button, table')) break;
    const text = next.querySelector('[data-testid="stCaption"], [data-testid="stMarkdown"], [data-testid="stHeading"]');
    if (!text) break;
    after.push(text.textContent.trim());
  }
  const text = [title, after.join(" ")].filter(Boolean).join(". ").slice(0, 1200) || "Chart";
  chart.setAttribute("role", "figure");
  if (chart.getAttribute("aria-label") !== text) chart.setAttribute("aria-label", text);
}

function enhance(chart) {
  const box = chart.closest(".stElementContainer") || chart.parentElement;
  describe(chart, box);
  const gd = plot(chart);
  let bar = box.querySelector(":scope > ." + BAR);
  if (!gd || frameCount(gd) < 2 || !sliderOf(gd)) { if (bar) bar.remove(); return; }
  if (!bar) { bar = makeBar(box); box.insertBefore(bar, box.firstChild); }
  bar.__gd = gd;
  if (!gd.__klWired) {
    gd.__klWired = true;
    gd.on("plotly_animatingframe", () => requestAnimationFrame(() => sync(bar)));
    gd.on("plotly_sliderchange", () => sync(bar));
  }
  sync(bar);
}

function scan() {
  window.__klQueued = false;
  document.querySelectorAll('[data-testid="stPlotlyChart"]').forEach(enhance);
  // a bar whose element container no longer holds an animated chart goes
  document.querySelectorAll("." + BAR).forEach(bar => {
    const box = bar.parentElement, gd = box && plot(box);
    if (!gd || frameCount(gd) < 2) bar.remove();
  });
}

export default function () {
  const schedule = () => {
    if (!window.__klQueued) { window.__klQueued = true; requestAnimationFrame(scan); }
  };
  if (!window.__klObserver) {
    // mutations inside our own bars (the frame label) are ours: they need no new scan
    const outside = r => !(r.target instanceof Element && r.target.closest("." + BAR));
    window.__klObserver = new MutationObserver(records => { if (records.some(outside)) schedule(); });
    window.__klObserver.observe(document.body, {childList: true, subtree: true});
  }
  schedule();
}
""".replace("__BAR__", TOOLBAR_CLASS)

_component = st.components.v2.component("kl_lab.page_aids", css=_CSS, js=_JS, isolate_styles=False)


def page_aids() -> None:
    """Mount the page's aids (keyboard animation controls, chart labels, narrow layout): once per page run."""
    _component(key=KEY)
