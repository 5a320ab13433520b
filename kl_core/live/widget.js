// widget.js: the live lab widget: drag the teacher's modes while every start trains in the browser.
//
// The UI only draws and dispatches; all maths is engine.js (kc.fit's step) and minima.js. One
// panel per objective shows the teacher (grey), every start's student (the objective's colour; the
// best start bold), dashed optima for a Gaussian student under forward / reverse KL, and below it the
// pointwise integrand of the best start ("where the penalty comes from"); one panel holds the loss
// curves of all starts. Direct manipulation: drag a mode left/right (mean) and up/down (weight), its
// side handle or the wheel for its width; click an empty spot to put the student's start there.
// Keyboard: Tab to a mode handle; arrows move it (Shift: faster), +/- its width, Delete removes it;
// Space plays / pauses. Pointer events, so touch and pen work alike.
//
// mount(root, scene, {onChange}) -> controller. onChange({teacher, start, ...}) fires on release.

import * as E from "./engine.js";
import { gaussianMinima } from "./minima.js";

/** kl_core/viz/colors.py ROLE_COLORS (a test keeps the two equal). */
export const ROLE_COLORS = {
  teacher: "#999999",
  forward_kl: "#0072B2",
  reverse_kl: "#D55E00",
  jsd: "#009E73",
  jsd_scaled: "#44AA99",
  alpha: "#CC79A7",
  skew_forward_kl: "#56B4E9",
  skew_reverse_kl: "#E69F00",
  tv: "#882255",
  akl: "#117733",
};

const NAMES = {
  forward_kl: "forward KL",
  reverse_kl: "reverse KL",
  jsd: "JSD",
  jsd_scaled: "scaled JSD",
  alpha: "α-divergence",
  skew_forward_kl: "skew forward KL",
  skew_reverse_kl: "skew reverse KL",
  tv: "total variation",
};
const SYMBOLS = { beta: "β", alpha: "α" };

// the app's control ranges (kl_core.scenario.RANGES)
export const LIMITS = { weight: [0.05, 1.0], mean: [-10.0, 10.0], std: [0.2, 4.0], modes: [1, 6] };
const LOW_DENSITY = 0.05; // kl_core.metrics.LOW_DENSITY: the teacher's "gap" is below 5% of its peak
const HISTORY = 3000; // loss points kept per start (older ones are thinned)
const LOSS_EVERY = 3; // while playing, the loss curves are redrawn every 3rd frame (20 times a second)
const INTEGRAND_H = 56; // css px of the integrand strip, drawn under the plot on the same canvases
const CAPTION_H = 16; // css px between the plot and the integrand strip: the strip's caption (text)
const TEXT_EVERY = 6; // while playing, the numbers in text are rewritten every 6th frame (10 a second)
const STILL = 5e-4; // a start moved by less than this (mean, log std, logit) is not redrawn: a few hundredths of a pixel
const LOSS_H = 118; // css px of the loss plot (its axis label is text below it)

export const DEFAULT_SCENE = {
  teacher: { weights: [0.5, 0.5], means: [-3.0, 3.0], stds: [1.0, 1.0] },
  student: { family: "gaussian", components: 1, start: { mean: 1.8, std: 0.95 } },
  objectives: [
    { kind: "forward_kl", params: {} },
    { kind: "reverse_kl", params: {} },
  ],
  inits: 8,
  seed: 0,
  lr: 0.05,
  optimizer: "adam",
  stepsPerFrame: 5,
  autoplay: true,
  view: [-10, 10],
  notation: ["T", "S"], // (teacher, student) letters of the readouts; the lesson's are ["p", "q"]
};

const clamp = (v, [lo, hi]) => Math.min(Math.max(v, lo), hi);
const fmt = (v, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : "∞");

/** A human label of an objective (kl_core.viz.colors.label_for). */
export function labelFor(kind, params = {}) {
  const par = E.resolveObjective(kind, params).par;
  const parts = Object.entries(par).map(([k, v]) => `${SYMBOLS[k] || k}=${+v.toFixed(4)}`);
  return parts.length ? `${NAMES[kind]} (${parts.join(", ")})` : NAMES[kind];
}

function el(tag, attrs = {}, parent = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  if (parent) parent.appendChild(e);
  return e;
}

/** Start 0 of each family: a Gaussian, or K components spread over the start's centre (presets.starting_student). */
function startStudent(student) {
  const { mean, std } = student.start;
  const K = student.family === "mixture" ? student.components : 1;
  if (K === 1) return { weights: [1], means: [mean], stds: [std] };
  const means = Array.from({ length: K }, (_, k) => mean + std * (-0.8 + (1.6 * k) / (K - 1)));
  return { weights: new Array(K).fill(1 / K), means, stds: new Array(K).fill(Math.max(0.4 * std, 0.2)) };
}

/** Log density of a {weights, means, stds} mixture at x (log space: far tails stay finite). */
const HALF_LOG_2PI_W = 0.5 * Math.log(2 * Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
function logTerm(m, k, x) {
  const z = (x - m.means[k]) / m.stds[k];
  return Math.log(m.weights[k]) - 0.5 * z * z - Math.log(m.stds[k]) - HALF_LOG_2PI_W;
}
function logDensity(m, x) {
  const K = m.means.length;
  if (K === 1) return logTerm(m, 0, x);
  let top = -Infinity;
  for (let k = 0; k < K; k++) top = Math.max(top, logTerm(m, k, x));
  if (top === -Infinity) return top;
  let s = 0;
  for (let k = 0; k < K; k++) s += Math.exp(logTerm(m, k, x) - top);
  return top + Math.log(s);
}

/** Density of a {weights, means, stds} mixture at x. */
function density(m, x) {
  let p = 0;
  for (let k = 0; k < m.means.length; k++) {
    const z = (x - m.means[k]) / m.stds[k];
    p += (m.weights[k] * Math.exp(-0.5 * z * z) * INV_SQRT_2PI) / m.stds[k];
  }
  return p;
}

function normalised(t) {
  const total = t.weights.reduce((a, b) => a + b, 0);
  return { weights: t.weights.map((w) => w / total), means: t.means, stds: t.stds };
}

/**
 * The dropped starts of a fit, grouped by reason, in one short paragraph (the engine's reasons are
 * kc.fit's words): "2 of 8 starts left out (not drawn). Starts 1 and 4: ...". "" when none was dropped.
 */
export function dropSummary(state) {
  if (state.error) return `No start is drawn: ${state.error}.`;
  const groups = new Map();
  for (let s = 0; s < state.S; s++) {
    if (state.alive[s]) continue;
    if (!groups.has(state.reasons[s])) groups.set(state.reasons[s], []);
    groups.get(state.reasons[s]).push(s);
  }
  if (!groups.size) return "";
  const n = [...groups.values()].reduce((a, g) => a + g.length, 0);
  const list = (g) => (g.length === 1 ? `Start ${g[0]}` : `Starts ${g.slice(0, -1).join(", ")} and ${g[g.length - 1]}`);
  const parts = [...groups].map(([why, g]) => `${list(g)}: ${why}.`);
  return `${n} of ${state.S} starts left out (not drawn). ${parts.join(" ")}`;
}

/** A loss history of S starts in typed arrays: at most cap rows, halved (every other row, and the last) when full. */
function makeHistory(S, cap = HISTORY) {
  return { S, cap, n: 0, steps: new Float64Array(cap + 1), loss: new Float64Array((cap + 1) * S) };
}
function pushHistory(h, t, loss) {
  h.steps[h.n] = t;
  h.loss.set(loss, h.n * h.S);
  h.n += 1;
  if (h.n > h.cap) {
    let j = 0;
    for (let i = 0; i < h.n; i++) {
      if (i % 2 !== 0 && i !== h.n - 1) continue;
      h.steps[j] = h.steps[i];
      h.loss.copyWithin(j * h.S, i * h.S, (i + 1) * h.S);
      j += 1;
    }
    h.n = j;
  }
}

/**
 * Mount the widget into root (an element). scene: DEFAULT_SCENE's shape (any field may be left out).
 * Returns {play, pause, toggle, step, reset, restart, setTeacher, state, stats, destroy}.
 *
 * Drawing: each objective's plot is two stacked canvases, the background (axis, teacher, optima)
 * repainted only when the teacher, the optima, the scale or the size change, the students on top
 * repainted only when a student moved; sizes come from a ResizeObserver (no layout read while
 * drawing) and no DOM node is rebuilt while the mode count stays the same. The widget never moves
 * the keyboard focus itself, except back to a mode handle when the focused one is deleted by key.
 */
export function mount(root, sceneIn = {}, { onChange = null } = {}) {
  const scene = JSON.parse(JSON.stringify({ ...DEFAULT_SCENE, ...sceneIn }));
  scene.student = { ...DEFAULT_SCENE.student, ...(sceneIn.student || {}) };
  const colors = { ...ROLE_COLORS, ...(scene.colors || {}) };
  const [P, Q] = Array.isArray(scene.notation) && scene.notation.length === 2 ? scene.notation.map(String) : DEFAULT_SCENE.notation;
  const reduced = typeof matchMedia === "function" && matchMedia("(prefers-reduced-motion: reduce)").matches;
  const ui = { playing: false, spf: clamp(Math.round(scene.stepsPerFrame), [1, 50]), dragging: null, focusMode: 0 };
  const stats = { frames: 0, frameMs: [], drawMs: [], moveToPaint: [], pendingMove: null, stepsDone: 0, firstFrameAt: null, reports: 0, layers: { bg: 0, fg: 0, loss: 0 } };
  let teacher = {
    weights: scene.teacher.weights.slice(),
    means: scene.teacher.means.slice(),
    stds: scene.teacher.stds.slice(),
  };
  let runs = [];
  let minimaStale = true;
  let teacherVersion = 0; // bumped on every change of the teacher (the background layers follow)
  let minimaVersion = 0;
  let lastReported = JSON.stringify(teacher); // what Python last heard (or sent): a release reports only a change

  // -- layout -----------------------------------------------------------------------------------
  root.classList.add("kl-live");
  root.innerHTML = "";
  const bar = el("div", { class: "kl-live-bar", role: "toolbar", "aria-label": "Training controls" }, root);
  const playBtn = el("button", { type: "button", class: "kl-live-play", "aria-pressed": "false", text: "▶ Play" }, bar);
  const stepBtn = el("button", { type: "button", text: "Step", title: "one frame of steps" }, bar);
  const resetBtn = el("button", { type: "button", text: "Reset", title: "back to the starts" }, bar);
  const restartBtn = el("button", { type: "button", text: "New starts", title: "random restarts (next seed)" }, bar);
  const spfLabel = el("label", { class: "kl-live-spf" }, bar);
  el("span", { text: "steps/frame " }, spfLabel);
  const spfInput = el("input", { type: "range", min: "1", max: "50", step: "1", value: String(ui.spf), "aria-label": "Steps per frame" }, spfLabel);
  const spfOut = el("output", { text: String(ui.spf) }, spfLabel);
  const addBtn = el("button", { type: "button", text: "+ mode", title: "add a teacher mode" }, bar);
  const removeBtn = el("button", { type: "button", text: "− mode", title: "remove the selected mode" }, bar);
  const stepOut = el("span", { class: "kl-live-step", "aria-live": "off", text: "step 0" }, bar);
  const hint = el("p", { class: "kl-live-hint" }, root);
  hint.textContent = "Drag a grey mode: left/right moves it, up/down changes its weight, its side handle (or the wheel) its width. Click empty space to start the student there. Tab to a mode, then arrows, +/−, Space.";
  const grid = el("div", { class: "kl-live-panels" }, root);
  const lossCard = el("div", { class: "kl-live-card kl-live-loss" }, root);
  el("div", { class: "kl-live-title", text: "Loss of every start (step on the x axis)" }, lossCard);
  const lossCanvas = el("canvas", { class: "kl-live-losscanvas", role: "img", "aria-label": "Loss curves" }, lossCard);
  lossCanvas.style.height = `${LOSS_H}px`; // the final heights from the start: no layout shift on the first frame
  const lossLabel = el("div", { class: "kl-live-caption" }, lossCard);

  const panels = [];
  const sizes = new WeakMap(); // canvas -> its CSS width, from the ResizeObserver
  let resizeObs = null;
  function buildPanels() {
    if (resizeObs) for (const p of panels) resizeObs.unobserve(p.canvas);
    grid.innerHTML = "";
    panels.length = 0;
    runs.forEach((run, i) => {
      const card = el("div", { class: "kl-live-card" }, grid);
      const title = el("div", { class: "kl-live-title" }, card);
      const sw = el("span", { class: "kl-live-swatch" }, title);
      sw.style.background = run.color;
      el("span", { text: run.label }, title);
      const wrap = el("div", { class: "kl-live-plot" }, card);
      const bg = el("canvas", { class: "kl-live-bg", "aria-hidden": "true" }, wrap);
      const canvas = el("canvas", { class: "kl-live-main", role: "img", "aria-label": `${run.label}: teacher, students and, below, the pointwise integrand of the best start` }, wrap);
      // the integrand strip is the lower part of the same two canvases (fewer canvases to composite per frame)
      const cap = el("div", { class: "kl-live-caption kl-live-stripcap" }, wrap);
      el("span", { class: "kl-live-wide", text: `where the penalty comes from: g(log ${P}, log ${Q}) of the best start` }, cap);
      el("span", { class: "kl-live-narrow", text: "where the penalty comes from, best start" }, cap);
      const peak = el("span", { class: "kl-live-peak" }, cap);
      const handles = el("div", { class: "kl-live-handles" }, wrap);
      const read = el("div", { class: "kl-live-read", "aria-live": "polite" }, card);
      const note = el("div", { class: "kl-live-note", role: "status" }, card);
      note.hidden = true;
      for (const c of [bg, canvas]) c.style.height = `${230 + CAPTION_H + INTEGRAND_H}px`;
      cap.style.top = "230px";
      const panel = {
        card, bg, canvas, cap, read, note, peak, handles, run, index: i, modeEls: [], peakText: "",
        bgKey: "", fgKey: "", drawn: new Float64Array(run.state.theta.length), text: "", noteText: "",
        students: Array.from({ length: run.state.S }, () => ({ weights: [], means: [], stds: [] })),
        vals: new Float64Array(302),
      };
      panels.push(panel);
      attachPointer(panel);
      if (resizeObs) resizeObs.observe(canvas);
    });
    buildHandles();
  }

  function buildHandles() {
    const had = handleFocused();
    panels.forEach((panel) => {
      panel.handles.innerHTML = "";
      panel.modeEls = teacher.means.map((_, k) => {
        const h = el("div", { class: "kl-live-handle", role: "slider", tabindex: panel.index === 0 ? "0" : "-1" }, panel.handles);
        h.dataset.mode = String(k);
        h.setAttribute("aria-label", `Teacher mode ${k + 1}`);
        h.setAttribute("aria-valuemin", String(LIMITS.mean[0]));
        h.setAttribute("aria-valuemax", String(LIMITS.mean[1]));
        const wdt = el("div", { class: "kl-live-width", "aria-hidden": "true" }, panel.handles);
        wdt.dataset.mode = String(k);
        attachHandle(panel, h, k, "mode");
        attachHandle(panel, wdt, k, "width");
        h.addEventListener("keydown", (ev) => onKey(ev, k));
        h.addEventListener("keyup", () => {
          if (ui.keyChanged) scheduleRelease(); // Tab passing through a handle changes nothing: nothing is sent
          ui.keyChanged = false;
        });
        h.addEventListener("focus", () => (ui.focusMode = k));
        return { h, wdt };
      });
      panel.bgKey = ""; // the new handles are placed with the next background
    });
    // the user was on a handle that went away (a mode was removed, or one was added): keep them there
    if (had !== null) focusHandle(Math.min(had, teacher.means.length - 1));
  }

  /** The mode index of the focused handle of this widget, or null when the focus is elsewhere. */
  function handleFocused() {
    const active = typeof document !== "undefined" ? document.activeElement : null;
    for (const p of panels) for (let k = 0; k < p.modeEls.length; k++) if (p.modeEls[k].h === active) return k;
    return null;
  }
  function focusHandle(k) {
    const target = panels[0] && panels[0].modeEls[k];
    if (target) target.h.focus({ preventScroll: true });
  }

  // -- the fits -------------------------------------------------------------------------------------
  function makeRuns() {
    const student = startStudent(scene.student);
    runs = scene.objectives.map((o) => {
      const problem = E.makeProblem({
        teacher,
        student,
        objective: o.kind,
        params: o.params || {},
        inits: scene.inits,
        seed: scene.seed,
        lr: scene.lr,
        optimizer: scene.optimizer,
        learn: scene.student.family === "gaussian_fixed_std" ? "mean" : null,
        estimator: scene.estimator || { name: "exact" },
        starts: scene.starts || null,
      });
      const state = E.createState(problem);
      const dir = state.objective.direction;
      const hist = makeHistory(state.S);
      pushHistory(hist, 0, state.loss);
      return {
        kind: o.kind,
        params: o.params || {},
        label: labelFor(o.kind, o.params || {}),
        color: colors[o.kind] || "#444",
        state,
        hist,
        minimaKind: scene.student.family === "gaussian" && dir ? `${dir}_kl` : null,
        minima: [],
      };
    });
    minimaStale = true;
  }

  function advance(n) {
    for (const run of runs) {
      if (run.state.error) continue; // every start infinite at the start: nothing trains
      for (let k = 0; k < n; k++) {
        E.step(run.state, 1);
        pushHistory(run.hist, run.state.t, run.state.loss);
      }
    }
    stats.stepsDone += n;
  }

  function applyTeacher() {
    for (const run of runs) E.setTeacher(run.state, teacher);
    teacherVersion += 1;
    minimaStale = true;
    dirty = true;
  }

  function updateMinima() {
    for (const run of runs) {
      // an 80 x 80 coarse surface (about half the time of kc.landscape's 120; tested against it too)
      run.minima = run.minimaKind ? gaussianMinima(teacher, run.minimaKind, { n: 80 }) : [];
    }
    minimaStale = false;
    minimaVersion += 1;
    dirty = true;
  }

  // -- drawing ----------------------------------------------------------------------------------------
  const view = scene.view.slice();
  let yMax = 0;
  let dirty = true;
  let th = null; // the theme's colours (read when the size or the colour scheme changes, and every 30 frames)
  let themeVersion = 0;

  function readTheme() {
    const cs = getComputedStyle(root);
    const next = {
      fg: cs.getPropertyValue("--kl-fg").trim() || "#222",
      muted: cs.getPropertyValue("--kl-muted").trim() || "#777",
      grid: cs.getPropertyValue("--kl-grid").trim() || "rgba(128,128,128,0.25)",
      // opacity of the thin curves and of the integrand's fill (higher on a dark background)
      thin: Number(cs.getPropertyValue("--kl-thin-alpha")) || 0.35,
      fill: Number(cs.getPropertyValue("--kl-fill-alpha")) || 0.45,
    };
    if (!th || Object.keys(next).some((k) => next[k] !== th[k])) {
      th = next;
      themeVersion += 1;
      dirty = true;
    }
  }

  function widthOf(canvas) {
    let w = sizes.get(canvas);
    if (w === undefined) {
      w = canvas.clientWidth || (canvas.parentElement && canvas.parentElement.clientWidth) || 300; // once, before the observer reports
      sizes.set(canvas, w);
    }
    return Math.max(120, w);
  }

  function fitCanvas(canvas, w, cssHeight) {
    const dpr = (typeof devicePixelRatio === "number" && devicePixelRatio) || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(cssHeight * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(cssHeight * dpr);
    }
    const px = `${cssHeight}px`;
    if (canvas.style.height !== px) canvas.style.height = px;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  const PAD = { l: 8, r: 8, t: 10, b: 20 };
  const xToPx = (x, w) => PAD.l + ((x - view[0]) / (view[1] - view[0])) * (w - PAD.l - PAD.r);
  const pxToX = (px, w) => view[0] + ((px - PAD.l) / (w - PAD.l - PAD.r)) * (view[1] - view[0]);
  const yToPx = (y, h) => h - PAD.b - (y / yMax) * (h - PAD.t - PAD.b);

  function plotCurve(ctx, w, h, m, n) {
    for (let i = 0; i <= n; i++) {
      const x = view[0] + ((view[1] - view[0]) * i) / n;
      const px = xToPx(x, w), py = yToPx(density(m, x), h);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    }
  }

  /**
   * A student's density as a path: sampled every 1.5 px where it can differ from zero by a pixel
   * (its components' mean +- 7 std), straight along the baseline elsewhere. A narrow student keeps
   * its peak, a wide one costs no more points than the plot is wide.
   */
  function plotStudent(ctx, w, h, m) {
    let lo = Infinity, hi = -Infinity;
    for (let k = 0; k < m.means.length; k++) {
      lo = Math.min(lo, m.means[k] - 7 * m.stds[k]);
      hi = Math.max(hi, m.means[k] + 7 * m.stds[k]);
    }
    lo = Math.max(lo, view[0]);
    hi = Math.min(hi, view[1]);
    const base = yToPx(0, h);
    ctx.moveTo(xToPx(view[0], w), lo > view[0] ? base : yToPx(density(m, view[0]), h));
    if (hi > lo) {
      const n = Math.max(2, Math.ceil((xToPx(hi, w) - xToPx(lo, w)) / 1.5));
      for (let i = 0; i <= n; i++) {
        const x = lo + ((hi - lo) * i) / n;
        ctx.lineTo(xToPx(x, w), yToPx(density(m, x), h));
      }
    }
    ctx.lineTo(xToPx(view[1], w), hi < view[1] ? base : yToPx(density(m, view[1]), h));
  }

  /** Start s of a run as {weights, means, stds}, written into out (no allocation per frame). */
  function studentInto(st, s, out) {
    const { K, nl, P: np } = st.family;
    const o = s * np;
    out.weights.length = out.means.length = out.stds.length = K;
    if (K === 1) {
      out.weights[0] = 1;
      out.means[0] = st.theta[o];
      out.stds[0] = Math.exp(st.theta[o + 1]);
      return out;
    }
    let top = -Infinity, sum = 0;
    for (let k = 0; k < K; k++) top = Math.max(top, st.theta[o + k]);
    for (let k = 0; k < K; k++) sum += Math.exp(st.theta[o + k] - top);
    for (let k = 0; k < K; k++) {
      out.weights[k] = Math.exp(st.theta[o + k] - top) / sum;
      out.means[k] = st.theta[o + nl + k];
      out.stds[k] = Math.exp(st.theta[o + nl + K + k]);
    }
    return out;
  }

  /** Live numbers of a student on the run's grid: both KLs and its mass in the teacher's gap. */
  function liveNumbers(run, m) {
    const st = run.state;
    const { x, w } = st.grid;
    let top = -Infinity;
    for (let i = 0; i < x.length; i++) top = Math.max(top, st.lp[i]);
    const level = top + Math.log(LOW_DENSITY);
    let fwd = 0, rev = 0, gap = 0;
    for (let i = 0; i < x.length; i++) {
      const lq = logDensity(m, x[i]), lp = st.lp[i];
      const q = Math.exp(lq);
      const p = Math.exp(lp);
      if (p > 0) fwd += w[i] * p * (lp - lq);
      if (q > 0) rev += w[i] * q * (lq - lp);
      if (lp < level) gap += w[i] * q;
    }
    return { fwd, rev, gap };
  }

  function plotHeight(w) {
    return w < 360 ? 190 : 230;
  }

  /** The background layer: axis, ticks, the teacher, the optima; and the mode handles over it. */
  function drawBackground(panel, w, h, tn) {
    const ctx = fitCanvas(panel.bg, w, h + CAPTION_H + INTEGRAND_H);
    const run = panel.run;
    ctx.clearRect(0, 0, w, h + CAPTION_H + INTEGRAND_H);
    const zero = h + CAPTION_H + INTEGRAND_H / 2; // the integrand strip's zero line
    ctx.strokeStyle = th.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(PAD.l, zero + 0.5);
    ctx.lineTo(w - PAD.r, zero + 0.5);
    ctx.stroke();
    const top = `${h}px`;
    if (panel.cap.style.top !== top) panel.cap.style.top = top;
    ctx.strokeStyle = th.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(PAD.l, h - PAD.b + 0.5);
    ctx.lineTo(w - PAD.r, h - PAD.b + 0.5);
    ctx.stroke();
    ctx.fillStyle = th.muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (let v = Math.ceil(view[0] / 5) * 5; v <= view[1]; v += 5) ctx.fillText(String(v), xToPx(v, w), h - 5);
    const n = Math.min(400, Math.round(w));
    ctx.beginPath();
    plotCurve(ctx, w, h, tn, n);
    ctx.lineTo(xToPx(view[1], w), yToPx(0, h));
    ctx.lineTo(xToPx(view[0], w), yToPx(0, h));
    ctx.closePath();
    ctx.fillStyle = "rgba(153,153,153,0.28)";
    ctx.fill();
    ctx.beginPath();
    plotCurve(ctx, w, h, tn, n);
    ctx.strokeStyle = colors.teacher;
    ctx.lineWidth = 2;
    ctx.stroke();
    // optima (dashed)
    ctx.setLineDash([5, 4]);
    for (const m of run.minima) {
      const g = { weights: [1], means: [m.mean], stds: [m.std] };
      ctx.beginPath();
      plotCurve(ctx, w, h, g, n);
      ctx.moveTo(xToPx(m.mean, w), PAD.t);
      ctx.lineTo(xToPx(m.mean, w), h - PAD.b);
      ctx.strokeStyle = run.color;
      ctx.globalAlpha = minimaStale ? 0.25 : m.isGlobal ? 0.9 : 0.5;
      ctx.lineWidth = 1.2;
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    placeHandles(panel, w, h, tn);
    stats.layers.bg += 1;
  }

  /** The students' layer: every start that was not dropped thin (one path), the best bold, start 0's mean. */
  function drawStudents(panel, w, h, b) {
    const ctx = fitCanvas(panel.canvas, w, h + CAPTION_H + INTEGRAND_H);
    const run = panel.run;
    const st = run.state;
    ctx.clearRect(0, 0, w, h + CAPTION_H + INTEGRAND_H);
    ctx.beginPath();
    for (let s = 0; s < st.S; s++) if (st.alive[s] && s !== b) plotStudent(ctx, w, h, studentInto(st, s, panel.students[s]));
    ctx.strokeStyle = run.color;
    ctx.globalAlpha = th.thin;
    ctx.lineWidth = 1.2;
    ctx.stroke();
    ctx.globalAlpha = 1;
    if (b >= 0) {
      ctx.beginPath();
      plotStudent(ctx, w, h, studentInto(st, b, panel.students[b]));
      ctx.lineWidth = 2.6;
      ctx.stroke();
    }
    // start 0's mean
    const start = xToPx(scene.student.start.mean, w);
    ctx.fillStyle = run.color;
    ctx.beginPath();
    ctx.moveTo(start, h - PAD.b);
    ctx.lineTo(start - 5, h - PAD.b + 8);
    ctx.lineTo(start + 5, h - PAD.b + 8);
    ctx.closePath();
    ctx.fill();
    stats.layers.fg += 1;
    return ctx;
  }

  function placeHandles(panel, w, h, tn) {
    teacher.means.forEach((mu, k) => {
      const { h: hd, wdt } = panel.modeEls[k] || {};
      if (!hd) return;
      const px = xToPx(mu, w), py = yToPx(density(tn, mu), h);
      hd.style.transform = `translate(${px}px, ${py}px)`;
      const sx = xToPx(mu + teacher.stds[k], w), sy = yToPx(density(tn, mu + teacher.stds[k]), h);
      wdt.style.transform = `translate(${sx}px, ${sy}px)`;
      hd.setAttribute("aria-valuetext", `mean ${mu.toFixed(2)}, weight ${teacher.weights[k].toFixed(2)}, std ${teacher.stds[k].toFixed(2)}`);
      hd.setAttribute("aria-valuenow", mu.toFixed(2));
    });
  }

  /** The best start's pointwise integrand, in the strip below the plot (y0: the strip's top). */
  function drawIntegrand(panel, ctx, w, y0, b, tn) {
    const h = INTEGRAND_H;
    const zero = y0 + h / 2;
    if (b < 0) return "";
    const st = panel.run.state;
    const { g, par } = st.objective;
    const m = panel.students[b]; // filled by drawStudents this frame
    const vals = panel.vals;
    let top = 1e-12;
    const n = Math.min(300, Math.round(w));
    for (let i = 0; i <= n; i++) {
      const xv = view[0] + ((view[1] - view[0]) * i) / n;
      const v = g(logDensity(tn, xv), logDensity(m, xv), par);
      vals[i] = v;
      if (Number.isFinite(v)) top = Math.max(top, Math.abs(v));
    }
    ctx.beginPath();
    ctx.moveTo(xToPx(view[0], w), zero);
    for (let i = 0; i <= n; i++) {
      const v = vals[i];
      const xv = view[0] + ((view[1] - view[0]) * i) / n;
      ctx.lineTo(xToPx(xv, w), zero - (Number.isFinite(v) ? v / top : 1) * (h / 2 - 6));
    }
    ctx.lineTo(xToPx(view[1], w), zero);
    ctx.closePath();
    ctx.fillStyle = panel.run.color;
    ctx.globalAlpha = th.fill;
    ctx.fill();
    ctx.globalAlpha = 1;
    return ` (peak ${fmt(top, 3)})`;
  }

  /** Did any start move (by more than STILL, a small fraction of a pixel) since this panel's students were drawn? */
  function moved(panel) {
    const theta = panel.run.state.theta, drawn = panel.drawn;
    for (let i = 0; i < theta.length; i++) if (!(Math.abs(theta[i] - drawn[i]) <= STILL)) return true;
    return false;
  }

  /** Text to write now? While playing, every TEXT_EVERY frames (the digits could not be read faster); else always. */
  const textDue = () => !ui.playing || stats.frames % TEXT_EVERY === 0;
  function setText(node, holder, key, text) {
    if (holder[key] !== text) {
      node.textContent = text;
      holder[key] = text;
    }
  }

  function drawPanel(panel, tn) {
    const w = widthOf(panel.canvas);
    const h = plotHeight(w);
    const run = panel.run;
    const st = run.state;
    const bgKey = `${w}|${yMax}|${teacherVersion}|${minimaVersion}|${minimaStale}|${themeVersion}`;
    const bgChanged = bgKey !== panel.bgKey;
    if (bgChanged) {
      drawBackground(panel, w, h, tn);
      panel.bgKey = bgKey;
    }
    const b = E.bestStart(st);
    const fgKey = `${bgKey}|${b}|${st.alive.join("")}`;
    if (fgKey !== panel.fgKey || moved(panel)) {
      panel.fgKey = fgKey;
      panel.drawn.set(st.theta);
      const ctx = drawStudents(panel, w, h, b);
      panel.pendingPeak = drawIntegrand(panel, ctx, w, h + CAPTION_H, b, tn);
      panel.textStale = true;
    }
    if (panel.textStale && textDue()) {
      panel.textStale = false;
      setText(panel.peak, panel, "peakText", panel.pendingPeak);
      let text = "";
      if (b >= 0) {
        const num = liveNumbers(run, panel.students[b]);
        text = `best start: KL(${P}‖${Q}) ${fmt(num.fwd)} · KL(${Q}‖${P}) ${fmt(num.rev)} · mass in the teacher's gap ${fmt(num.gap)} · ${run.label} ${fmt(st.loss[b], 4)}`;
      }
      setText(panel.read, panel, "text", text);
    }
    const note = dropSummary(st);
    if (note !== panel.noteText) {
      panel.note.textContent = panel.noteText = note;
      panel.note.hidden = note === "";
    }
  }

  let lossKey = "", lossShape = "", lossFrame = -Infinity;
  function drawLoss() {
    const w = widthOf(lossCanvas);
    const h = LOSS_H;
    let lo = Infinity, hi = -Infinity, tmax = 1;
    for (const run of runs) {
      const { hist, state } = run;
      tmax = Math.max(tmax, state.t);
      for (let s = 0; s < hist.S; s++) {
        if (!state.alive[s]) continue;
        for (let i = 0; i < hist.n; i++) {
          const v = hist.loss[i * hist.S + s];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
    }
    const shape = `${w}|${themeVersion}|${runs.map((r) => r.state.alive.join("")).join("/")}`;
    const key = `${shape}|${tmax}|${lo}|${hi}`;
    if (key === lossKey) return;
    // while training plays, the curves grow by a few steps a frame: they are redrawn every LOSS_EVERY
    // frames (a changed canvas is copied whole to the compositor each frame it changes)
    if (ui.playing && shape === lossShape && stats.frames - lossFrame < LOSS_EVERY) return;
    lossKey = key;
    lossShape = shape;
    lossFrame = stats.frames;
    const ctx = fitCanvas(lossCanvas, w, h);
    ctx.clearRect(0, 0, w, h);
    if (!(hi >= lo)) {
      lossLabel.textContent = "no start left to draw";
      return;
    }
    if (!(hi > lo)) hi = lo + 1;
    // log scale of loss - min: the fast start and the slow tail both show
    const floor = Math.max(1e-6, (hi - lo) * 1e-4);
    const y0 = Math.log(floor), y1 = Math.log(hi - lo + floor);
    const sx = (w - PAD.l - PAD.r) / tmax;
    const padB = 4; // (the axis label is text below the canvas)
    const sy = (h - PAD.t - padB) / (y1 - y0 || 1);
    const maxPoints = Math.max(50, Math.round(w / 2)); // at most one point per 2 px of each curve
    for (const run of runs) {
      const { hist, state } = run;
      const b = E.bestStart(state);
      const stride = Math.max(1, Math.ceil(hist.n / maxPoints));
      const curve = (s) => {
        for (let i = 0; ; i += stride) {
          if (i > hist.n - 1) i = hist.n - 1; // the last point always
          const v = hist.loss[i * hist.S + s];
          const px = PAD.l + hist.steps[i] * sx;
          const py = h - padB - (Math.log(Math.max(v - lo, 0) + floor) - y0) * sy;
          if (i === 0) ctx.moveTo(px, py);
          else ctx.lineTo(px, py);
          if (i === hist.n - 1) break;
        }
      };
      ctx.beginPath();
      for (let s = 0; s < hist.S; s++) if (state.alive[s] && s !== b) curve(s);
      ctx.strokeStyle = run.color;
      ctx.globalAlpha = 0.85 * th.thin;
      ctx.lineWidth = 1;
      ctx.stroke();
      ctx.globalAlpha = 1;
      if (b >= 0) {
        ctx.beginPath();
        curve(b);
        ctx.lineWidth = 2;
        ctx.stroke();
      }
    }
    lossLabel.textContent = `loss − ${fmt(lo, 4)} (log scale) · steps 0–${tmax}`;
    stats.layers.loss += 1;
  }

  const tnPeakX = new Float64Array(201);
  function draw() {
    if (!th) readTheme();
    const tn = normalised(teacher);
    for (let i = 0; i <= 200; i++) tnPeakX[i] = view[0] + ((view[1] - view[0]) * i) / 200;
    let peak = 0;
    for (let i = 0; i <= 200; i++) peak = Math.max(peak, density(tn, tnPeakX[i]));
    const cap = 3 * peak;
    for (const [r, run] of runs.entries()) {
      const b = E.bestStart(run.state);
      if (b < 0 || !panels[r]) continue;
      const m = studentInto(run.state, b, panels[r].students[b]);
      for (let i = 0; i <= 200; i++) peak = Math.max(peak, Math.min(density(m, tnPeakX[i]), cap));
    }
    const target = 1.2 * peak;
    if (yMax === 0 || (ui.dragging === null && (target > yMax || target < 0.8 * yMax))) {
      yMax = ui.dragging === null && yMax !== 0 && target > yMax ? 1.05 * target : target; // a little headroom: fewer rescales
    } else if (target > yMax) yMax = target; // under the pointer: grow only, no jumps
    for (const p of panels) drawPanel(p, tn);
    drawLoss();
    if (textDue()) setText(stepOut, ui, "stepText", `step ${runs.reduce((t, r) => Math.max(t, r.state.t), 0)}`); // (a run with no start left stays at 0)
    dirty = false;
  }

  // -- the frame loop -------------------------------------------------------------------------------
  let rafId = null;
  function frame() {
    rafId = null;
    const t0 = performance.now();
    if (stats.frames % 30 === 0) readTheme(); // the page's theme may change (Streamlit's, the system's)
    if (ui.playing) advance(ui.spf);
    if (minimaStale && ui.dragging === null && stats.frames > 0) updateMinima(); // after the first paint
    const td = performance.now();
    if (ui.playing || dirty) draw();
    const t1 = performance.now();
    stats.drawMs.push(t1 - td);
    if (stats.drawMs.length > 600) stats.drawMs.shift();
    stats.frames += 1;
    stats.frameMs.push(t1 - t0);
    if (stats.frameMs.length > 600) stats.frameMs.shift();
    if (stats.pendingMove !== null) {
      stats.moveToPaint.push(t1 - stats.pendingMove);
      if (stats.moveToPaint.length > 600) stats.moveToPaint.shift();
      stats.pendingMove = null;
    }
    if (stats.firstFrameAt === null) stats.firstFrameAt = t1;
    if (ui.playing || dirty || minimaStale) schedule();
  }
  function schedule() {
    if (rafId === null) rafId = requestAnimationFrame(frame);
  }

  // -- actions ----------------------------------------------------------------------------------------
  function setPlaying(on) {
    ui.playing = on;
    dirty = true; // (paused, the next frame writes every number)
    playBtn.textContent = on ? "❚❚ Pause" : "▶ Play";
    playBtn.setAttribute("aria-pressed", on ? "true" : "false");
    schedule();
  }
  function reset() {
    makeRuns();
    buildPanels();
    dirty = true;
    schedule();
  }
  function emit(what) {
    if (what === "teacher") {
      const now = JSON.stringify(teacher);
      if (now === lastReported) return; // a click, a Tab or a key that moved nothing: no report, no rerun
      lastReported = now;
    }
    stats.reports += 1;
    if (onChange) onChange({ what, teacher: normalisedCopy(), start: { ...scene.student.start }, seed: scene.seed });
  }
  function normalisedCopy() {
    return { weights: teacher.weights.slice(), means: teacher.means.slice(), stds: teacher.stds.slice() };
  }
  let releaseTimer = null;
  function scheduleRelease() {
    clearTimeout(releaseTimer);
    releaseTimer = setTimeout(() => {
      minimaStale = true;
      schedule();
      emit("teacher");
    }, 250);
  }

  function setMode(k, { mean, weight, std }) {
    if (mean !== undefined) teacher.means[k] = clamp(mean, LIMITS.mean);
    if (weight !== undefined) teacher.weights[k] = clamp(weight, LIMITS.weight);
    if (std !== undefined) teacher.stds[k] = clamp(std, LIMITS.std);
    applyTeacher();
    schedule();
  }

  function onKey(ev, k) {
    const big = ev.shiftKey ? 5 : 1;
    const keys = {
      ArrowLeft: () => setMode(k, { mean: teacher.means[k] - 0.1 * big }),
      ArrowRight: () => setMode(k, { mean: teacher.means[k] + 0.1 * big }),
      ArrowUp: () => setMode(k, { weight: teacher.weights[k] + 0.05 * big }),
      ArrowDown: () => setMode(k, { weight: teacher.weights[k] - 0.05 * big }),
      "+": () => setMode(k, { std: teacher.stds[k] + 0.1 * big }),
      "=": () => setMode(k, { std: teacher.stds[k] + 0.1 * big }),
      "-": () => setMode(k, { std: teacher.stds[k] - 0.1 * big }),
      PageUp: () => setMode(k, { std: teacher.stds[k] + 0.1 * big }),
      PageDown: () => setMode(k, { std: teacher.stds[k] - 0.1 * big }),
      Delete: () => removeMode(k),
      Backspace: () => removeMode(k),
    };
    if (keys[ev.key]) {
      ev.preventDefault();
      ui.keyChanged = true;
      keys[ev.key]();
    }
  }

  function addMode() {
    if (teacher.means.length >= LIMITS.modes[1]) return;
    // the middle of the widest free stretch of the view
    const pts = [view[0] + 1, ...teacher.means.slice().sort((a, b) => a - b), view[1] - 1];
    let at = 0, gap = -1;
    for (let i = 1; i < pts.length; i++) if (pts[i] - pts[i - 1] > gap) [gap, at] = [pts[i] - pts[i - 1], (pts[i] + pts[i - 1]) / 2];
    teacher.weights.push(0.5);
    teacher.means.push(clamp(at, LIMITS.mean));
    teacher.stds.push(1.0);
    applyTeacher();
    buildHandles();
    scheduleRelease();
  }
  function removeMode(k = ui.focusMode) {
    if (teacher.means.length <= LIMITS.modes[0]) return;
    k = Math.min(k, teacher.means.length - 1);
    for (const key of ["weights", "means", "stds"]) teacher[key].splice(k, 1);
    ui.focusMode = Math.max(0, k - 1);
    applyTeacher();
    buildHandles(); // (a handle that had the focus hands it to its neighbour; a button keeps it)
    scheduleRelease();
  }

  // -- pointer input ----------------------------------------------------------------------------------
  function attachHandle(panel, node, k, what) {
    node.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      ev.stopPropagation();
      node.setPointerCapture(ev.pointerId);
      ui.dragging = { panel, k, what, y0: ev.clientY, w0: teacher.weights[k], id: ev.pointerId };
      ui.focusMode = k;
      node.classList.add("active");
    });
    node.addEventListener("pointermove", (ev) => {
      const d = ui.dragging;
      if (!d || d.id !== ev.pointerId) return;
      const rect = panel.canvas.getBoundingClientRect(); // (layout is clean here: frames write, events only read)
      const x = pxToX(ev.clientX - rect.left, rect.width);
      if (stats.pendingMove === null) stats.pendingMove = ev.timeStamp; // the event's own time: dispatch delay counts
      if (d.what === "mode") setMode(k, { mean: x, weight: d.w0 * Math.exp(-(ev.clientY - d.y0) / 80) });
      else setMode(k, { std: Math.abs(x - teacher.means[k]) });
    });
    const end = (ev) => {
      if (!ui.dragging || ui.dragging.id !== ev.pointerId) return;
      ui.dragging = null;
      node.classList.remove("active");
      minimaStale = true;
      dirty = true;
      schedule();
      emit("teacher");
    };
    node.addEventListener("pointerup", end);
    node.addEventListener("pointercancel", end);
    node.addEventListener(
      "wheel",
      (ev) => {
        ev.preventDefault();
        setMode(k, { std: teacher.stds[k] * Math.exp(-Math.sign(ev.deltaY) * 0.08) });
        scheduleRelease();
      },
      { passive: false },
    );
  }

  function attachPointer(panel) {
    let down = null;
    panel.canvas.addEventListener("pointerdown", (ev) => (down = { x: ev.clientX, y: ev.clientY, id: ev.pointerId }));
    panel.canvas.addEventListener("pointerup", (ev) => {
      if (!down || down.id !== ev.pointerId) return;
      const moved = Math.hypot(ev.clientX - down.x, ev.clientY - down.y);
      down = null;
      if (moved > 6) return;
      const rect = panel.canvas.getBoundingClientRect();
      if (ev.clientY - rect.top > plotHeight(rect.width)) return; // a click on the integrand strip
      scene.student.start.mean = clamp(pxToX(ev.clientX - rect.left, rect.width), LIMITS.mean);
      scene.starts = null;
      reset();
      emit("start");
    });
    panel.canvas.addEventListener(
      "wheel",
      (ev) => {
        // the wheel over the plot widens / narrows the nearest mode
        const rect = panel.canvas.getBoundingClientRect();
        const x = pxToX(ev.clientX - rect.left, rect.width);
        let k = 0;
        teacher.means.forEach((m, i) => (Math.abs(m - x) < Math.abs(teacher.means[k] - x) ? (k = i) : 0));
        if (Math.abs(teacher.means[k] - x) > 3 * teacher.stds[k]) return;
        ev.preventDefault();
        setMode(k, { std: teacher.stds[k] * Math.exp(-Math.sign(ev.deltaY) * 0.08) });
        scheduleRelease();
      },
      { passive: false },
    );
  }

  playBtn.addEventListener("click", () => setPlaying(!ui.playing));
  stepBtn.addEventListener("click", () => {
    advance(ui.spf);
    dirty = true;
    schedule();
  });
  resetBtn.addEventListener("click", () => reset());
  restartBtn.addEventListener("click", () => {
    scene.seed += 1;
    scene.starts = null;
    reset();
    emit("seed");
  });
  spfInput.addEventListener("input", () => {
    ui.spf = clamp(Math.round(Number(spfInput.value)), [1, 50]);
    spfOut.textContent = String(ui.spf);
  });
  addBtn.addEventListener("click", addMode);
  removeBtn.addEventListener("click", () => removeMode());
  // Space plays / pauses; a standalone page (scene.globalKeys) hears it wherever the focus is
  const keyTarget = scene.globalKeys && typeof document !== "undefined" ? document : root;
  keyTarget.addEventListener("keydown", onSpace);
  function onSpace(ev) {
    if (ev.key === " " && !(ev.target instanceof HTMLButtonElement) && !(ev.target instanceof HTMLInputElement)) {
      ev.preventDefault();
      setPlaying(!ui.playing);
    }
  }
  if (typeof ResizeObserver === "function") {
    resizeObs = new ResizeObserver((entries) => {
      for (const e of entries) sizes.set(e.target, e.contentRect.width);
      readTheme();
      dirty = true;
      schedule();
    });
    resizeObs.observe(lossCanvas);
  }
  const scheme = typeof matchMedia === "function" ? matchMedia("(prefers-color-scheme: dark)") : null;
  const onScheme = () => {
    readTheme();
    schedule();
  };
  if (scheme && scheme.addEventListener) scheme.addEventListener("change", onScheme);

  reset();
  setPlaying(Boolean(scene.autoplay) && !reduced);

  return {
    play: () => setPlaying(true),
    pause: () => setPlaying(false),
    toggle: () => setPlaying(!ui.playing),
    step: (n = ui.spf) => {
      advance(n);
      dirty = true;
      schedule();
    },
    reset,
    /** n training steps of every start of every objective, without drawing (the bench's steps/s). */
    train: (n) => advance(n),
    /**
     * A new teacher; training goes on from where the students are. ``starts`` (optional): kc.fit's starts
     * for this teacher (the app's new scene), kept for the next Reset, which then trains from the same
     * starts as the app's exact table.
     */
    setTeacher(t, starts) {
      const modes = teacher.means.length;
      if (starts !== undefined) scene.starts = starts ? starts.map((row) => row.slice()) : null;
      teacher = { weights: t.weights.slice(), means: t.means.slice(), stds: t.stds.slice() };
      lastReported = JSON.stringify(teacher);
      applyTeacher();
      if (teacher.means.length !== modes) buildHandles(); // else the handles stay (and keep the focus)
      schedule();
    },
    setStepsPerFrame(n) {
      ui.spf = clamp(Math.round(n), [1, 50]);
      spfInput.value = String(ui.spf);
      spfOut.textContent = String(ui.spf);
    },
    get teacher() {
      return normalisedCopy();
    },
    get runs() {
      return runs;
    },
    get playing() {
      return ui.playing;
    },
    students: () => runs.map((r) => E.students(r.state)),
    minima: () => runs.map((r) => r.minima),
    notes: () => panels.map((p) => p.noteText),
    stats,
    destroy() {
      if (rafId !== null) cancelAnimationFrame(rafId);
      clearTimeout(releaseTimer);
      keyTarget.removeEventListener("keydown", onSpace);
      if (scheme && scheme.removeEventListener) scheme.removeEventListener("change", onScheme);
      if (resizeObs) resizeObs.disconnect();
      root.innerHTML = "";
    },
  };
}
