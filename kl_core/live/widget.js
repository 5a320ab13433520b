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
function logDensity(m, x) {
  const K = m.means.length;
  const term = (k) => {
    const z = (x - m.means[k]) / m.stds[k];
    return Math.log(m.weights[k]) - 0.5 * z * z - Math.log(m.stds[k]) - HALF_LOG_2PI_W;
  };
  if (K === 1) return term(0);
  let top = -Infinity;
  for (let k = 0; k < K; k++) top = Math.max(top, term(k));
  if (top === -Infinity) return top;
  let s = 0;
  for (let k = 0; k < K; k++) s += Math.exp(term(k) - top);
  return top + Math.log(s);
}

/** Density of a {weights, means, stds} mixture at x. */
function density(m, x) {
  let p = 0;
  for (let k = 0; k < m.means.length; k++) {
    const z = (x - m.means[k]) / m.stds[k];
    p += (m.weights[k] * Math.exp(-0.5 * z * z)) / (m.stds[k] * Math.sqrt(2 * Math.PI));
  }
  return p;
}

function normalised(t) {
  const total = t.weights.reduce((a, b) => a + b, 0);
  return { weights: t.weights.map((w) => w / total), means: t.means, stds: t.stds };
}

/**
 * Mount the widget into root (an element). scene: DEFAULT_SCENE's shape (any field may be left out).
 * Returns {play, pause, toggle, step, reset, restart, setTeacher, state, stats, destroy}.
 */
export function mount(root, sceneIn = {}, { onChange = null } = {}) {
  const scene = JSON.parse(JSON.stringify({ ...DEFAULT_SCENE, ...sceneIn }));
  scene.student = { ...DEFAULT_SCENE.student, ...(sceneIn.student || {}) };
  const colors = { ...ROLE_COLORS, ...(scene.colors || {}) };
  const [P, Q] = Array.isArray(scene.notation) && scene.notation.length === 2 ? scene.notation.map(String) : DEFAULT_SCENE.notation;
  const reduced = typeof matchMedia === "function" && matchMedia("(prefers-reduced-motion: reduce)").matches;
  const ui = { playing: false, spf: clamp(Math.round(scene.stepsPerFrame), [1, 50]), dragging: null, focusMode: 0 };
  const stats = { frames: 0, frameMs: [], moveToPaint: [], pendingMove: null, stepsDone: 0, firstFrameAt: null };
  let teacher = {
    weights: scene.teacher.weights.slice(),
    means: scene.teacher.means.slice(),
    stds: scene.teacher.stds.slice(),
  };
  let runs = [];
  let minimaStale = true;

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

  const panels = [];
  function buildPanels() {
    grid.innerHTML = "";
    panels.length = 0;
    runs.forEach((run, i) => {
      const card = el("div", { class: "kl-live-card" }, grid);
      const title = el("div", { class: "kl-live-title" }, card);
      const sw = el("span", { class: "kl-live-swatch" }, title);
      sw.style.background = run.color;
      el("span", { text: run.label }, title);
      const wrap = el("div", { class: "kl-live-plot" }, card);
      const canvas = el("canvas", { class: "kl-live-main", role: "img", "aria-label": `${run.label}: teacher and students` }, wrap);
      const handles = el("div", { class: "kl-live-handles" }, wrap);
      const integ = el("canvas", { class: "kl-live-integrand", role: "img", "aria-label": `${run.label}: pointwise integrand` }, card);
      const read = el("div", { class: "kl-live-read", "aria-live": "polite" }, card);
      const panel = { card, canvas, integ, read, handles, run, index: i, modeEls: [] };
      panels.push(panel);
      attachPointer(panel);
    });
    buildHandles();
  }

  function buildHandles() {
    panels.forEach((panel) => {
      panel.handles.innerHTML = "";
      panel.modeEls = teacher.means.map((_, k) => {
        const h = el("div", { class: "kl-live-handle", role: "slider", tabindex: panel.index === 0 ? "0" : "-1" }, panel.handles);
        h.dataset.mode = String(k);
        const wdt = el("div", { class: "kl-live-width", "aria-hidden": "true" }, panel.handles);
        wdt.dataset.mode = String(k);
        attachHandle(panel, h, k, "mode");
        attachHandle(panel, wdt, k, "width");
        h.addEventListener("keydown", (ev) => onKey(ev, k));
        h.addEventListener("keyup", () => scheduleRelease());
        h.addEventListener("focus", () => (ui.focusMode = k));
        return { h, wdt };
      });
    });
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
      return {
        kind: o.kind,
        params: o.params || {},
        label: labelFor(o.kind, o.params || {}),
        color: colors[o.kind] || "#444",
        state,
        steps: [0],
        losses: [Array.from(state.loss)],
        minimaKind: scene.student.family === "gaussian" && dir ? `${dir}_kl` : null,
        minima: [],
      };
    });
    minimaStale = true;
  }

  function recordLoss(run) {
    run.steps.push(run.state.t);
    run.losses.push(Array.from(run.state.loss));
    if (run.steps.length > HISTORY) {
      run.steps = run.steps.filter((_, i) => i % 2 === 0 || i === run.steps.length - 1);
      run.losses = run.losses.filter((_, i) => i % 2 === 0 || i === run.losses.length - 1);
    }
  }

  function advance(n) {
    for (const run of runs) {
      for (let k = 0; k < n; k++) {
        E.step(run.state, 1);
        recordLoss(run);
      }
    }
    stats.stepsDone += n;
  }

  function applyTeacher() {
    for (const run of runs) E.setTeacher(run.state, teacher);
    minimaStale = true;
    dirty = true;
  }

  function updateMinima() {
    for (const run of runs) {
      // an 80 x 80 coarse surface (about half the time of kc.landscape's 120; tested against it too)
      run.minima = run.minimaKind ? gaussianMinima(teacher, run.minimaKind, { n: 80 }) : [];
    }
    minimaStale = false;
    dirty = true;
  }

  // -- drawing ----------------------------------------------------------------------------------------
  const view = scene.view.slice();
  let yMax = 0;
  let dirty = true;

  function theme() {
    const cs = getComputedStyle(root);
    return {
      fg: cs.getPropertyValue("--kl-fg").trim() || "#222",
      muted: cs.getPropertyValue("--kl-muted").trim() || "#777",
      grid: cs.getPropertyValue("--kl-grid").trim() || "rgba(128,128,128,0.25)",
    };
  }

  function fitCanvas(canvas, cssHeight) {
    const dpr = (typeof devicePixelRatio === "number" && devicePixelRatio) || 1;
    const w = Math.max(120, canvas.clientWidth || canvas.parentElement.clientWidth || 300);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(cssHeight * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(cssHeight * dpr);
      canvas.style.height = `${cssHeight}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w, h: cssHeight };
  }

  const PAD = { l: 8, r: 8, t: 10, b: 20 };
  const xToPx = (x, w) => PAD.l + ((x - view[0]) / (view[1] - view[0])) * (w - PAD.l - PAD.r);
  const pxToX = (px, w) => view[0] + ((px - PAD.l) / (w - PAD.l - PAD.r)) * (view[1] - view[0]);
  const yToPx = (y, h) => h - PAD.b - (y / yMax) * (h - PAD.t - PAD.b);

  function plotCurve(ctx, w, h, f, n) {
    ctx.beginPath();
    for (let i = 0; i <= n; i++) {
      const x = view[0] + ((view[1] - view[0]) * i) / n;
      const px = xToPx(x, w), py = yToPx(f(x), h);
      if (i === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    }
  }

  function best(run) {
    let b = 0;
    for (let s = 1; s < run.state.S; s++) if (run.state.loss[s] < run.state.loss[b]) b = s;
    return b;
  }

  /** Live numbers of a student on the run's grid: both KLs and its mass in the teacher's gap. */
  function liveNumbers(run, s) {
    const st = run.state;
    const { x, w } = st.grid;
    const m = E.unpack(st.family, st.theta, s);
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

  function drawPanel(panel, th) {
    const { ctx, w, h } = fitCanvas(panel.canvas, panel.canvas.clientWidth < 360 ? 190 : 230);
    const run = panel.run;
    const st = run.state;
    const tn = normalised(teacher);
    ctx.clearRect(0, 0, w, h);
    // axis
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
    // teacher
    const n = Math.min(400, Math.round(w));
    plotCurve(ctx, w, h, (x) => density(tn, x), n);
    ctx.lineTo(xToPx(view[1], w), yToPx(0, h));
    ctx.lineTo(xToPx(view[0], w), yToPx(0, h));
    ctx.closePath();
    ctx.fillStyle = "rgba(153,153,153,0.28)";
    ctx.fill();
    plotCurve(ctx, w, h, (x) => density(tn, x), n);
    ctx.strokeStyle = colors.teacher;
    ctx.lineWidth = 2;
    ctx.stroke();
    // optima (dashed)
    ctx.setLineDash([5, 4]);
    for (const m of run.minima) {
      const g = { weights: [1], means: [m.mean], stds: [m.std] };
      plotCurve(ctx, w, h, (x) => density(g, x), n);
      ctx.strokeStyle = run.color;
      ctx.globalAlpha = minimaStale ? 0.25 : m.isGlobal ? 0.9 : 0.5;
      ctx.lineWidth = 1.2;
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(xToPx(m.mean, w), PAD.t);
      ctx.lineTo(xToPx(m.mean, w), h - PAD.b);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    // students: every start thin, the best bold
    const b = best(run);
    for (let s = 0; s < st.S; s++) {
      const m = E.unpack(st.family, st.theta, s);
      plotCurve(ctx, w, h, (x) => density(m, x), n);
      ctx.strokeStyle = run.color;
      ctx.globalAlpha = s === b ? 1 : 0.35;
      ctx.lineWidth = s === b ? 2.6 : 1.2;
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    // start 0's mean
    const start = scene.student.start.mean;
    ctx.fillStyle = run.color;
    ctx.beginPath();
    ctx.moveTo(xToPx(start, w), h - PAD.b);
    ctx.lineTo(xToPx(start, w) - 5, h - PAD.b + 8);
    ctx.lineTo(xToPx(start, w) + 5, h - PAD.b + 8);
    ctx.closePath();
    ctx.fill();
    placeHandles(panel, w, h, tn);
    drawIntegrand(panel, th, b);
    const num = liveNumbers(run, b);
    panel.read.textContent = `best start: KL(${P}‖${Q}) ${fmt(num.fwd)} · KL(${Q}‖${P}) ${fmt(num.rev)} · mass in the teacher's gap ${fmt(num.gap)} · ${run.label} ${fmt(st.loss[b], 4)}`;
  }

  function placeHandles(panel, w, h, tn) {
    teacher.means.forEach((mu, k) => {
      const { h: hd, wdt } = panel.modeEls[k] || {};
      if (!hd) return;
      const px = xToPx(mu, w), py = yToPx(density(tn, mu), h);
      hd.style.transform = `translate(${px}px, ${py}px)`;
      const sx = xToPx(mu + teacher.stds[k], w), sy = yToPx(density(tn, mu + teacher.stds[k]), h);
      wdt.style.transform = `translate(${sx}px, ${sy}px)`;
      hd.setAttribute("aria-label", `Teacher mode ${k + 1}`);
      hd.setAttribute("aria-valuetext", `mean ${mu.toFixed(2)}, weight ${teacher.weights[k].toFixed(2)}, std ${teacher.stds[k].toFixed(2)}`);
      hd.setAttribute("aria-valuenow", mu.toFixed(2));
      hd.setAttribute("aria-valuemin", String(LIMITS.mean[0]));
      hd.setAttribute("aria-valuemax", String(LIMITS.mean[1]));
    });
  }

  function drawIntegrand(panel, th, b) {
    const { ctx, w, h } = fitCanvas(panel.integ, 70);
    const st = panel.run.state;
    const { g, par } = st.objective;
    const m = E.unpack(st.family, st.theta, b);
    const tn = normalised(teacher);
    ctx.clearRect(0, 0, w, h);
    const vals = [];
    let top = 1e-12;
    const n = Math.min(300, Math.round(w));
    for (let i = 0; i <= n; i++) {
      const xv = view[0] + ((view[1] - view[0]) * i) / n;
      const lp = logDensity(tn, xv), lq = logDensity(m, xv);
      const v = g(lp, lq, par);
      vals.push(v);
      if (Number.isFinite(v)) top = Math.max(top, Math.abs(v));
    }
    const zero = h / 2;
    ctx.strokeStyle = th.grid;
    ctx.beginPath();
    ctx.moveTo(PAD.l, zero + 0.5);
    ctx.lineTo(w - PAD.r, zero + 0.5);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(xToPx(view[0], w), zero);
    vals.forEach((v, i) => {
      const xv = view[0] + ((view[1] - view[0]) * i) / n;
      ctx.lineTo(xToPx(xv, w), zero - (Number.isFinite(v) ? v / top : 1) * (h / 2 - 6));
    });
    ctx.lineTo(xToPx(view[1], w), zero);
    ctx.closePath();
    ctx.fillStyle = panel.run.color;
    ctx.globalAlpha = 0.45;
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.fillStyle = th.muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "left";
    const caption = w < 420 ? "where the penalty comes from (best start)" : `where the penalty comes from: g(log ${P}, log ${Q}) of the best start (peak ${fmt(top, 3)})`;
    ctx.fillText(caption, PAD.l, 11);
  }

  function drawLoss(th) {
    const { ctx, w, h } = fitCanvas(lossCanvas, 130);
    ctx.clearRect(0, 0, w, h);
    let lo = Infinity, hi = -Infinity, tmax = 1;
    for (const run of runs) {
      tmax = Math.max(tmax, run.state.t);
      for (const row of run.losses) for (const v of row) if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    if (!(hi > lo)) hi = lo + 1;
    // log scale of loss - min: the fast start and the slow tail both show
    const floor = Math.max(1e-6, (hi - lo) * 1e-4);
    const ly = (v) => Math.log(Math.max(v - lo, 0) + floor);
    const y0 = ly(lo), y1 = ly(hi);
    const px = (t) => PAD.l + (t / tmax) * (w - PAD.l - PAD.r);
    const py = (v) => h - PAD.b - ((ly(v) - y0) / (y1 - y0 || 1)) * (h - PAD.t - PAD.b);
    for (const run of runs) {
      const b = best(run);
      for (let s = 0; s < run.state.S; s++) {
        ctx.beginPath();
        run.steps.forEach((t, i) => {
          const v = run.losses[i][s];
          if (i === 0) ctx.moveTo(px(t), py(v));
          else ctx.lineTo(px(t), py(v));
        });
        ctx.strokeStyle = run.color;
        ctx.globalAlpha = s === b ? 1 : 0.3;
        ctx.lineWidth = s === b ? 2 : 1;
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
    ctx.fillStyle = th.muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.fillText(`loss − ${fmt(lo, 4)} (log scale) · steps 0–${tmax}`, PAD.l, h - 5);
  }

  function draw() {
    const th = theme();
    const tn = normalised(teacher);
    let peak = 0;
    for (let i = 0; i <= 200; i++) peak = Math.max(peak, density(tn, view[0] + ((view[1] - view[0]) * i) / 200));
    for (const run of runs) {
      const m = E.unpack(run.state.family, run.state.theta, best(run));
      for (let i = 0; i <= 200; i++) peak = Math.max(peak, Math.min(density(m, view[0] + ((view[1] - view[0]) * i) / 200), 3 * peak));
    }
    const target = 1.2 * peak;
    yMax = yMax === 0 || ui.dragging === null ? target : Math.max(target, yMax); // no jumps under the pointer
    for (const p of panels) drawPanel(p, th);
    drawLoss(th);
    stepOut.textContent = `step ${runs.length ? runs[0].state.t : 0}`;
    dirty = false;
  }

  // -- the frame loop -------------------------------------------------------------------------------
  let rafId = null;
  function frame() {
    rafId = null;
    const t0 = performance.now();
    if (ui.playing) advance(ui.spf);
    if (minimaStale && ui.dragging === null && stats.frames > 0) updateMinima(); // after the first paint
    if (ui.playing || dirty) draw();
    const t1 = performance.now();
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
    buildHandles();
    scheduleRelease();
    const first = panels[0] && panels[0].modeEls[ui.focusMode];
    if (first) first.h.focus();
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
      const rect = panel.canvas.getBoundingClientRect();
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
  let resizeObs = null;
  if (typeof ResizeObserver === "function") {
    resizeObs = new ResizeObserver(() => {
      dirty = true;
      schedule();
    });
    resizeObs.observe(root);
  }

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
    setTeacher(t) {
      teacher = { weights: t.weights.slice(), means: t.means.slice(), stds: t.stds.slice() };
      applyTeacher();
      buildHandles();
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
    stats,
    destroy() {
      if (rafId !== null) cancelAnimationFrame(rafId);
      keyTarget.removeEventListener("keydown", onSpace);
      if (resizeObs) resizeObs.disconnect();
      root.innerHTML = "";
    },
  };
}
