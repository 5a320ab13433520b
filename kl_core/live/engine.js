// engine.js: the live lab's training engine, kl_core.fit for a 1-D teacher, in plain JavaScript.
//
// A pure ES module: no DOM, no dependency, no build step. It runs in node and in the browser.
// kl_core is its oracle (tests/test_live_engine.py): for a problem written by kl_core.live.problem,
// fit(problem) gives the parameters and losses of kc.fit(..., estimator="exact") at every step.
//
// Conventions as in kl_core: teacher = p, student = q; every divergence is the integral of one
// pointwise integrand g(log p, log q) (kl_core/divergences.py), and the exact gradient is
//   grad = sum_x w(x) dg/dlog q (log p(x), log q(x)) d log q(x) / d theta
// on the fitting grid. A student of K components has parameters
//   [weight_logit_k (if K > 1), mean_k, log_std_k]  (kl_core/families.py, GaussianMixture1D).
// Arrays: theta is a Float64Array of S * P numbers, start s at [s * P, (s + 1) * P).

const LOG_2PI = Math.log(2 * Math.PI);
const LN2 = Math.LN2;
const BOX_STDS = 5.0; // a student stays this many stds inside the integration box (families.py)

// ------------------------------------------------------------------------------------------------
// Scalar helpers, written as numpy computes them
// ------------------------------------------------------------------------------------------------

/** a * (log a - log b) from log a, log b: 0 where a = 0. */
function xlogRatio(la, lb) {
  return la === -Infinity ? 0.0 : Math.exp(la) * (la - lb);
}

/** numpy.logaddexp(x, y). */
function logaddexp(x, y) {
  if (x === y) return x + LN2;
  const tmp = x - y;
  if (tmp > 0) return x + Math.log1p(Math.exp(-tmp));
  if (tmp <= 0) return y + Math.log1p(Math.exp(tmp));
  return NaN;
}

/** log(a A + (1 - a) B) from log A, log B. */
function logMix(la, lb, a) {
  if (a <= 0.0) return lb + 0.0;
  if (a >= 1.0) return la + 0.0;
  return logaddexp(Math.log(a) + la, Math.log1p(-a) + lb);
}

/** log((1 - w) A + w B) - log A for 0 < w < 1 (divergences._mix_gap): log1p(w expm1(lb - la)) where exact. */
function mixGap(la, lb, w) {
  const gap = lb - la;
  if (Number.isFinite(gap) && gap < 30.0) return Math.log1p(w * Math.expm1(gap));
  return logaddexp(Math.log1p(-w) + la, Math.log(w) + lb) - la;
}

/** The standard normal CDF (scipy.special.ndtr): series for |x| < 3, continued fraction beyond. */
export function ndtr(x) {
  const t = x / Math.SQRT2;
  if (Math.abs(t) < 3) return 0.5 + 0.5 * erfSeries(t);
  const tail = 0.5 * erfcFraction(Math.abs(t));
  return t > 0 ? 1 - tail : tail;
}

function erfSeries(t) {
  // erf t = 2/sqrt(pi) sum_n (-1)^n t^(2n+1) / (n! (2n+1))
  let term = t, sum = t;
  const t2 = t * t;
  for (let n = 1; n < 200; n++) {
    term *= -t2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function erfcFraction(t) {
  // erfc t = exp(-t^2)/sqrt(pi) * 1/(t + 1/2/(t + 1/(t + 3/2/(t + ...)))), modified Lentz
  const tiny = 1e-300;
  let f = t, C = t, D = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    D = t + a * D;
    D = Math.abs(D) < tiny ? tiny : D;
    C = t + a / C;
    C = Math.abs(C) < tiny ? tiny : C;
    D = 1 / D;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-t * t) / Math.sqrt(Math.PI) / f;
}

// ------------------------------------------------------------------------------------------------
// Divergence kinds: g(lp, lq) and dg/dlq, one pair per kind (kl_core/divergences.py)
// ------------------------------------------------------------------------------------------------

function alphaIntegrand(lp, lq, alpha) {
  // Amari alpha-divergence: 1/(a b) [a p + b q - p^a q^b], b = 1 - a (Minka 2005, eq. 2)
  if (alpha === 1.0) return xlogRatio(lp, lq);
  if (alpha === 0.0) return xlogRatio(lq, lp);
  const a = alpha, b = 1.0 - alpha;
  const p = Math.exp(lp), q = Math.exp(lq);
  const fp = Number.isFinite(lp), fq = Number.isFinite(lq);
  if (fp && fq) {
    const bd = b * (lq - lp);
    const crossMinusP = bd < 30.0 ? p * Math.expm1(Math.min(bd, 30.0)) : Math.exp(a * lp + b * lq) - p;
    return (b * (q - p) - crossMinusP) / (a * b);
  }
  if (lp === -Infinity && fq) return a > 0 ? q / a : Infinity;
  if (lq === -Infinity && fp) return b > 0 ? p / b : Infinity;
  return 0.0;
}

function alphaD(lp, lq, alpha) {
  if (alpha === 1.0) return -Math.exp(lp);
  if (alpha === 0.0) return xlogRatio(lq, lp) + Math.exp(lq);
  if (lq === -Infinity) return 0.0;
  return (-Math.exp(lq) * Math.expm1(alpha * (lp - lq))) / alpha;
}

/** The continuous kinds of kl_core's registry: name -> {g(lp, lq, par), d(lp, lq, par), params}. */
export const KINDS = {
  forward_kl: {
    params: {},
    g: (lp, lq) => xlogRatio(lp, lq),
    d: (lp) => -Math.exp(lp),
  },
  reverse_kl: {
    params: {},
    g: (lp, lq) => xlogRatio(lq, lp),
    d: (lp, lq) => xlogRatio(lq, lp) + Math.exp(lq),
  },
  jsd: {
    params: { beta: 0.5 },
    // generalized JSD (GKD): beta KL(p||m) + (1-beta) KL(q||m), m = beta p + (1-beta) q
    g: (lp, lq, { beta }) => {
      if (beta === 0.0) return xlogRatio(lp, lq);
      if (beta === 1.0) return xlogRatio(lq, lp);
      const lm = logMix(lp, lq, beta);
      return beta * xlogRatio(lp, lm) + (1.0 - beta) * xlogRatio(lq, lm);
    },
    d: (lp, lq, { beta }) => {
      if (beta === 0.0) return -Math.exp(lp);
      if (beta === 1.0) return xlogRatio(lq, lp) + Math.exp(lq);
      return (1.0 - beta) * xlogRatio(lq, logMix(lp, lq, beta)); // the terms through log m cancel
    },
  },
  jsd_scaled: {
    params: { beta: 0.5 },
    // JSD_beta / (beta (1 - beta)): continuous in beta, forward KL at beta -> 0, reverse KL at beta -> 1
    g: (lp, lq, { beta }) => {
      if (beta === 0.0) return xlogRatio(lp, lq);
      if (beta === 1.0) return xlogRatio(lq, lp);
      const teacher = lp === -Infinity ? 0.0 : -Math.exp(lp) * mixGap(lp, lq, 1.0 - beta);
      const student = lq === -Infinity ? 0.0 : -Math.exp(lq) * mixGap(lq, lp, beta);
      return teacher / (1.0 - beta) + student / beta;
    },
    d: (lp, lq, { beta }) => {
      if (beta === 0.0) return -Math.exp(lp);
      if (beta === 1.0) return xlogRatio(lq, lp) + Math.exp(lq);
      return lq === -Infinity ? 0.0 : (-Math.exp(lq) * mixGap(lq, lp, beta)) / beta;
    },
  },
  alpha: {
    params: { alpha: 0.5 },
    g: (lp, lq, { alpha }) => alphaIntegrand(lp, lq, alpha),
    d: (lp, lq, { alpha }) => alphaD(lp, lq, alpha),
  },
  skew_forward_kl: {
    params: { alpha: 0.1 },
    // DistiLLM (Ko et al. 2024): KL(p || alpha p + (1-alpha) q)
    g: (lp, lq, { alpha }) => xlogRatio(lp, logMix(lp, lq, alpha)),
    d: (lp, lq, { alpha }) => {
      if (lq === -Infinity || lp === -Infinity) return 0.0;
      return -(1.0 - alpha) * Math.exp(lp + lq - logMix(lp, lq, alpha));
    },
  },
  skew_reverse_kl: {
    params: { alpha: 0.1 },
    // DistiLLM: KL(q || alpha q + (1-alpha) p)
    g: (lp, lq, { alpha }) => xlogRatio(lq, logMix(lq, lp, alpha)),
    d: (lp, lq, { alpha }) => {
      if (lq === -Infinity) return 0.0;
      const lm = logMix(lq, lp, alpha);
      const share = Math.exp(lq - lm) * alpha; // alpha q / m
      return xlogRatio(lq, lm) + Math.exp(lq) * (1.0 - share);
    },
  },
  tv: {
    params: {},
    g: (lp, lq) => 0.5 * Math.abs(Math.exp(lp) - Math.exp(lq)),
    d: (lp, lq) => -0.5 * Math.sign(Math.exp(lp) - Math.exp(lq)) * Math.exp(lq),
  },
};

/** "forward" or "reverse" when the kind with these parameters is plain KL (divergences.kl_direction). */
export function klDirection(kind, params) {
  if (kind === "forward_kl") return "forward";
  if (kind === "reverse_kl") return "reverse";
  const v = Object.values(params || {})[0];
  const special = {
    jsd: { 0: "forward", 1: "reverse" },
    jsd_scaled: { 0: "forward", 1: "reverse" },
    alpha: { 1: "forward", 0: "reverse" },
    skew_forward_kl: { 0: "forward" },
    skew_reverse_kl: { 0: "reverse" },
  };
  return (special[kind] && special[kind][v]) || null;
}

/** A kind and its parameters, validated (defaults filled in); unknown names throw. */
export function resolveObjective(kind, params = {}) {
  if (!(kind in KINDS)) throw new Error(`unknown divergence kind ${JSON.stringify(kind)}; valid kinds: ${Object.keys(KINDS).join(", ")}`);
  const spec = KINDS[kind];
  const par = {};
  for (const [name, def] of Object.entries(spec.params)) {
    const v = params[name] === undefined ? def : Number(params[name]);
    if (!Number.isFinite(v)) throw new Error(`${kind}: ${name} must be a number, got ${params[name]}`);
    par[name] = v;
  }
  for (const name of Object.keys(params)) {
    if (!(name in spec.params)) throw new Error(`${kind}: unknown parameter ${name}`);
  }
  return { kind, par, direction: klDirection(kind, par), g: spec.g, d: spec.d };
}

// ------------------------------------------------------------------------------------------------
// The teacher: a 1-D Gaussian mixture
// ------------------------------------------------------------------------------------------------

/** {weights, means, stds} -> the teacher's internal terms (kl_core.distributions._GaussianComponents). */
export function makeTeacher({ weights, means, stds }) {
  const K = means.length;
  if (!(K >= 1 && weights.length === K && stds.length === K)) throw new Error("teacher: weights, means and stds need the same length >= 1");
  let total = 0;
  for (const w of weights) {
    if (!(w >= 0)) throw new Error(`teacher: weights must be >= 0, got ${w}`);
    total += w;
  }
  if (!(total > 0)) throw new Error("teacher: weights must sum to a positive number");
  for (const s of stds) if (!(s > 0 && Number.isFinite(s))) throw new Error(`teacher: stds must be > 0, got ${s}`);
  for (const m of means) if (!Number.isFinite(m)) throw new Error(`teacher: means must be finite, got ${m}`);
  const w = weights.map((v) => v / total);
  const chol = stds.map((s) => Math.sqrt(s * s));
  const t = {
    weights: w,
    means: means.slice(),
    stds: stds.slice(),
    logw: w.map((v) => Math.log(v)),
    prec: chol.map((c) => 1 / c),
    logDetHalf: chol.map((c) => Math.log(c)),
  };
  let mean = 0;
  for (let k = 0; k < K; k++) mean += w[k] * means[k];
  let second = 0;
  for (let k = 0; k < K; k++) second += w[k] * (chol[k] * chol[k] + means[k] * means[k]);
  t.mean = mean;
  t.variance = second - mean * mean;
  return t;
}

/** log p(x) of the teacher at every point of x (GaussianMixture.log_prob). */
export function teacherLogProb(t, x) {
  const K = t.means.length, n = x.length;
  const out = new Float64Array(n);
  const c = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    let top = -Infinity;
    for (let k = 0; k < K; k++) {
      const z = (x[i] - t.means[k]) * t.prec[k];
      c[k] = -0.5 * z * z - (t.logDetHalf[k] + 0.5 * LOG_2PI) + t.logw[k];
      if (c[k] > top) top = c[k];
    }
    if (K === 1) {
      out[i] = c[0];
      continue;
    }
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(c[k] - top);
    out[i] = top + Math.log(s);
  }
  return out;
}

/** d log p / dx at every point of x. */
export function teacherGradLogProb(t, x) {
  const K = t.means.length, n = x.length;
  const out = new Float64Array(n);
  const c = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    let top = -Infinity;
    for (let k = 0; k < K; k++) {
      const z = (x[i] - t.means[k]) * t.prec[k];
      c[k] = -0.5 * z * z - t.logDetHalf[k] + t.logw[k];
      if (c[k] > top) top = c[k];
    }
    let s = 0, g = 0;
    for (let k = 0; k < K; k++) {
      const r = Math.exp(c[k] - top);
      s += r;
      g += -r * (x[i] - t.means[k]) * t.prec[k] * t.prec[k];
    }
    out[i] = g / s;
  }
  return out;
}

/** n draws from the teacher. */
export function sampleTeacher(t, n, rng) {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.random();
    let k = 0, cdf = t.weights[0];
    while (u > cdf && k < t.weights.length - 1) cdf += t.weights[++k];
    out[i] = t.means[k] + t.stds[k] * rng.normal();
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// The grid: fitting.py's _fit_box and _fit_grid, quadrature.uniform_grid
// ------------------------------------------------------------------------------------------------

/** The integration box [lo, hi]: teacher +- 7 overall std, its components +- 6 std, starts +- 8 std. */
export function fitBox(t, starts) {
  const spread = Math.sqrt(t.variance);
  let lo = t.mean - 7.0 * spread, hi = t.mean + 7.0 * spread;
  t.means.forEach((m, k) => {
    lo = Math.min(lo, m - 6.0 * t.stds[k]);
    hi = Math.max(hi, m + 6.0 * t.stds[k]);
  });
  for (const s of starts) {
    s.means.forEach((m, k) => {
      lo = Math.min(lo, m - 8.0 * s.stds[k]);
      hi = Math.max(hi, m + 8.0 * s.stds[k]);
    });
  }
  return [lo, hi];
}

/** A uniform grid over box with trapezoid weights: at least n points (default 2048) and 4 per narrowest teacher std. */
export function fitGrid(t, box, n = 2048) {
  const finest = Math.min(...t.stds);
  const needed = Math.ceil(((box[1] - box[0]) * 4.0) / finest) + 1;
  const count = Math.min(Math.max(n, needed), 20000);
  return uniformGrid(box, count);
}

/** numpy.linspace(lo, hi, n) and trapezoid weights. */
export function uniformGrid([lo, hi], n) {
  const x = new Float64Array(n), w = new Float64Array(n);
  const step = (hi - lo) / (n - 1);
  for (let i = 0; i < n; i++) {
    x[i] = i * step + lo;
    w[i] = step;
  }
  x[n - 1] = hi;
  w[0] *= 0.5;
  w[n - 1] *= 0.5;
  return { x, w, box: [lo, hi] };
}

// ------------------------------------------------------------------------------------------------
// The student family: a 1-D mixture of K Gaussians (K = 1: a Gaussian), S starts at once
// ------------------------------------------------------------------------------------------------

/** The family of K components: parameter count and layout. */
export function makeFamily(K) {
  const nl = K > 1 ? K : 0;
  return { K, nl, P: nl + 2 * K };
}

/** Log weights of one start (scipy.special.log_softmax; zeros for K = 1). */
function logWeights(fam, theta, o, out) {
  const { K, nl } = fam;
  if (!nl) {
    out[0] = 0;
    return out;
  }
  let top = -Infinity;
  for (let k = 0; k < K; k++) top = Math.max(top, theta[o + k]);
  if (!Number.isFinite(top)) top = 0;
  let s = 0;
  for (let k = 0; k < K; k++) s += Math.exp(theta[o + k] - top);
  const ls = Math.log(s);
  for (let k = 0; k < K; k++) out[k] = theta[o + k] - top - ls;
  return out;
}

/** Start s of theta as {weights, means, stds}. */
export function unpack(fam, theta, s) {
  const { K, nl, P } = fam;
  const o = s * P;
  const logw = logWeights(fam, theta, o, new Float64Array(K));
  const weights = [], means = [], stds = [];
  for (let k = 0; k < K; k++) {
    weights.push(Math.exp(logw[k]));
    means.push(theta[o + nl + k]);
    stds.push(Math.exp(theta[o + nl + K + k]));
  }
  return { weights, means, stds };
}

/** {weights, means, stds} of K components -> a parameter vector. */
export function pack(fam, student) {
  const { K, nl, P } = fam;
  const out = new Float64Array(P);
  for (let k = 0; k < K; k++) {
    if (nl) out[k] = Math.log(student.weights[k]);
    out[nl + k] = student.means[k];
    out[nl + K + k] = 0.5 * Math.log(student.stds[k] * student.stds[k]);
  }
  return out;
}

/**
 * log q at the points x of start s, with the cached terms of the VJP (families.GaussianMixture1D.log_prob).
 * ws: scratch {z (K n), r (K n), lq (n), logw (K), sig (K)} sized for n points.
 */
function studentLogProb(fam, theta, s, x, n, ws) {
  const { K, nl, P } = fam;
  const o = s * P;
  const { z, r, lq, logw, sig } = ws;
  logWeights(fam, theta, o, logw);
  if (K === 1) {
    const mu = theta[o], ls = theta[o + 1];
    const sg = Math.exp(ls);
    sig[0] = sg;
    const inv = 1.0 / sg;
    const c0 = ls + 0.5 * LOG_2PI;
    for (let i = 0; i < n; i++) {
      const zi = (x[i] - mu) * inv;
      z[i] = zi;
      lq[i] = -0.5 * zi * zi - c0;
    }
    return;
  }
  const c = ws.cK;
  for (let k = 0; k < K; k++) {
    sig[k] = Math.exp(theta[o + nl + K + k]);
    c[k] = theta[o + nl + K + k] + 0.5 * LOG_2PI - logw[k];
  }
  for (let i = 0; i < n; i++) {
    // scipy.special.logsumexp: the maxima are taken out of the sum, log1p for the rest
    let top = -Infinity;
    for (let k = 0; k < K; k++) {
      const zi = (x[i] - theta[o + nl + k]) * (1.0 / sig[k]);
      z[k * n + i] = zi;
      const lc = -0.5 * zi * zi - c[k];
      r[k * n + i] = lc;
      if (lc > top) top = lc;
    }
    let m = 0, rest = 0;
    for (let k = 0; k < K; k++) {
      const lc = r[k * n + i];
      if (lc === top) m += 1;
      else rest += Math.exp(lc - top);
    }
    const l = Math.log1p(rest / m) + Math.log(m) + top;
    lq[i] = l;
    for (let k = 0; k < K; k++) r[k * n + i] = Math.exp(r[k * n + i] - l);
  }
}

/** sum_x c(x) d log q(x) / d theta for start s into out[s P ...] (log_prob_vjp). */
function logProbVjp(fam, s, n, ws, c, out) {
  const { K, nl, P } = fam;
  const o = s * P;
  const { z, r, logw, sig } = ws;
  if (K === 1) {
    let az = 0, azz = 0, a = 0;
    for (let i = 0; i < n; i++) {
      const ai = c[i];
      const azi = ai * z[i];
      az += azi;
      azz += azi * z[i];
      a += ai;
    }
    out[o] = az / sig[0];
    out[o + 1] = azz - a;
    return;
  }
  let total = 0;
  for (let i = 0; i < n; i++) total += c[i];
  for (let k = 0; k < K; k++) {
    let az = 0, azz = 0, a = 0;
    for (let i = 0; i < n; i++) {
      const ai = c[i] * r[k * n + i];
      const azi = ai * z[k * n + i];
      az += azi;
      azz += azi * z[k * n + i];
      a += ai;
    }
    out[o + k] = a - Math.exp(logw[k]) * total;
    out[o + nl + k] = az / sig[k];
    out[o + nl + K + k] = azz - a;
  }
}

/** d log q / dx at the cached points of start s (grad_x). */
function studentGradX(fam, n, ws, out) {
  const { K } = fam;
  const { z, r, sig } = ws;
  for (let i = 0; i < n; i++) {
    if (K === 1) {
      out[i] = -z[i] / sig[0];
      continue;
    }
    let g = 0;
    for (let k = 0; k < K; k++) g += r[k * n + i] * (-z[k * n + i] / sig[k]);
    out[i] = g;
  }
}

/** sum_x cot(x) dx/dtheta for reparameterised samples x of start s (path_vjp; implicit for mixtures). */
function pathVjp(fam, theta, s, x, n, ws, cot, out) {
  const { K, nl, P } = fam;
  const o = s * P;
  const { z, r, lq, logw } = ws;
  for (let k = 0; k < K; k++) {
    const mu = theta[o + nl + k];
    let dmu = 0, dls = 0;
    for (let i = 0; i < n; i++) {
      const rr = K === 1 ? 1.0 : r[k * n + i];
      dmu += cot[i] * rr;
      dls += cot[i] * rr * (x[i] - mu);
    }
    out[o + nl + k] += dmu;
    out[o + nl + K + k] += dls;
  }
  if (K === 1) return;
  // dx/dlogit_k = -w_k (Phi(z_k) - F(x)) / q(x) (Figurnov et al. 2018)
  const w = Array.from(logw, Math.exp);
  const phi = new Float64Array(K);
  for (let i = 0; i < n; i++) {
    let F = 0;
    for (let k = 0; k < K; k++) {
      phi[k] = ndtr(z[k * n + i]);
      F += w[k] * phi[k];
    }
    const invq = Math.exp(-lq[i]);
    for (let k = 0; k < K; k++) out[o + k] += cot[i] * (-w[k] * (phi[k] - F) * invq);
  }
}

/** n reparameterised draws from start s (component by inverse CDF, then mean + std * eps). */
function sampleStudent(fam, theta, s, n, rng, out) {
  const { K, nl, P } = fam;
  const o = s * P;
  const logw = logWeights(fam, theta, o, new Float64Array(K));
  for (let i = 0; i < n; i++) {
    let k = 0;
    if (K > 1) {
      const u = rng.random();
      let cdf = Math.exp(logw[0]);
      while (u > cdf && k < K - 1) cdf += Math.exp(logw[++k]);
    }
    out[i] = theta[o + nl + k] + Math.exp(theta[o + nl + K + k]) * rng.normal();
  }
}

/** Keep every component inside the box (mean +- 5 std) and its std in [1e-4, 1e3] x scale (families.clip). */
export function clip(fam, theta, S, box, scale) {
  const { K, nl, P } = fam;
  const lsLo = Math.log(1e-4 * scale), lsHi = Math.log(1e3 * scale);
  const lsBox = Math.log((box[1] - box[0]) / (2 * BOX_STDS));
  for (let s = 0; s < S; s++) {
    const o = s * P;
    for (let k = 0; k < K; k++) {
      let ls = Math.min(Math.max(theta[o + nl + K + k], lsLo), lsHi);
      ls = Math.min(ls, lsBox);
      const reach = BOX_STDS * Math.exp(ls);
      theta[o + nl + k] = Math.min(Math.max(theta[o + nl + k], box[0] + reach), box[1] - reach);
      theta[o + nl + K + k] = ls;
    }
    if (nl) {
      let top = -Infinity;
      for (let k = 0; k < K; k++) top = Math.max(top, theta[o + k]);
      for (let k = 0; k < K; k++) theta[o + k] = Math.min(Math.max(theta[o + k] - top, -50.0), 0.0);
    }
  }
  return theta;
}

/** Starts spread over the teacher's support (random_starts): means uniform over mean +- 2 std, stds log-uniform in [1/4, 1] of std / K. */
export function randomStarts(fam, t, m, rng) {
  const { K, nl, P } = fam;
  const out = new Float64Array(m * P);
  const sd = Math.sqrt(t.variance);
  for (let s = 0; s < m; s++) {
    for (let k = 0; k < K; k++) out[s * P + nl + k] = t.mean - 2 * sd + 4 * sd * rng.random();
    for (let k = 0; k < K; k++) out[s * P + nl + K + k] = Math.log(sd / K) + Math.log(0.25) * (1 - rng.random());
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Random numbers: the engine's own seeded generator (xoshiro128**, normals by Box-Muller)
// ------------------------------------------------------------------------------------------------

/** A seeded generator {random() in [0, 1) with 53 bits, normal()}. It cannot reproduce numpy's stream. */
export function makeRng(seed = 0) {
  let h = (Number(seed) >>> 0) ^ 0x9e3779b9;
  const next32 = () => {
    // splitmix32 for the state words
    h = (h + 0x9e3779b9) | 0;
    let t = h ^ (h >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
  const st = new Uint32Array([next32(), next32(), next32(), next32()]);
  const u32 = () => {
    const result = Math.imul(rotl(Math.imul(st[1], 5), 7), 9) >>> 0;
    const t = st[1] << 9;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 11);
    return result;
  };
  let spare = null;
  const random = () => ((u32() >>> 5) * 67108864 + (u32() >>> 6)) / 9007199254740992;
  return {
    random,
    normal() {
      if (spare !== null) {
        const v = spare;
        spare = null;
        return v;
      }
      let u = 0;
      while (u === 0) u = random();
      const rad = Math.sqrt(-2 * Math.log(u)), ang = 2 * Math.PI * random();
      spare = rad * Math.sin(ang);
      return rad * Math.cos(ang);
    },
  };
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

// ------------------------------------------------------------------------------------------------
// Optimisers (fitting.adam, fitting.sgd): pure (init, update) pairs over flat arrays
// ------------------------------------------------------------------------------------------------

export function makeOptimizer(spec) {
  if (spec.name === "adam") {
    const { lr, b1 = 0.9, b2 = 0.999, eps = 1e-8 } = spec;
    return {
      init: (n) => ({ m: new Float64Array(n), v: new Float64Array(n), t: 0 }),
      update(theta, grad, st) {
        st.t += 1;
        const step = (lr * Math.sqrt(1 - b2 ** st.t)) / (1 - b1 ** st.t);
        for (let i = 0; i < theta.length; i++) {
          st.m[i] = b1 * st.m[i] + (1 - b1) * grad[i];
          st.v[i] = b2 * st.v[i] + (1 - b2) * grad[i] * grad[i];
          theta[i] = theta[i] - (step * st.m[i]) / (Math.sqrt(st.v[i]) + eps);
        }
      },
    };
  }
  if (spec.name === "sgd") {
    const { lr, momentum = 0 } = spec;
    return {
      init: (n) => ({ v: new Float64Array(n) }),
      update(theta, grad, st) {
        for (let i = 0; i < theta.length; i++) {
          st.v[i] = momentum * st.v[i] + grad[i];
          theta[i] = theta[i] - lr * st.v[i];
        }
      },
    };
  }
  throw new Error(`optimizer must be 'adam' or 'sgd', got ${JSON.stringify(spec.name)}`);
}

// ------------------------------------------------------------------------------------------------
// The state of a fit and its step
// ------------------------------------------------------------------------------------------------

function workspace(K, n) {
  return {
    z: new Float64Array(K * n),
    r: new Float64Array(K > 1 ? K * n : 0),
    lq: new Float64Array(n),
    c: new Float64Array(n),
    logw: new Float64Array(K),
    sig: new Float64Array(K),
    cK: new Float64Array(K),
    n,
  };
}

/** Set the teacher's terms on the grid (log p, and the forward-KL weights w p and sum w p log p). */
function prepareGrid(state) {
  const { x, w } = state.grid;
  const lp = teacherLogProb(state.teacher, x);
  const wp = new Float64Array(x.length);
  let negEntropy = 0;
  let finite = true;
  for (let i = 0; i < x.length; i++) {
    wp[i] = Math.exp(lp[i]) * w[i];
    if (wp[i] > 0) negEntropy += wp[i] * lp[i];
    if (!Number.isFinite(lp[i])) finite = false;
  }
  state.lp = lp;
  state.wp = wp;
  state.negEntropy = negEntropy;
  state.finiteTeacher = finite;
  if (!state.ws || state.ws.n !== x.length) state.ws = workspace(state.family.K, x.length);
  prepareGuard(state);
}

/**
 * A fit's mutable state from a problem (kl_core.live.problem's dict, or one built by makeProblem):
 * {theta (S P), loss (S), grad (S P), t: steps taken, ...}.
 */
export function createState(problem) {
  const fam = makeFamily(problem.family.components);
  const S = problem.starts.length;
  const theta = new Float64Array(S * fam.P);
  problem.starts.forEach((row, s) => row.forEach((v, j) => (theta[s * fam.P + j] = v)));
  const objective = resolveObjective(problem.objective.kind, problem.objective.params);
  const grid = problem.grid.x
    ? { x: Float64Array.from(problem.grid.x), w: Float64Array.from(problem.grid.w), box: problem.grid.box.slice() }
    : uniformGrid(problem.grid.box, problem.grid.n);
  const mask = Float64Array.from(problem.family.mask || new Array(fam.P).fill(1));
  const opt = makeOptimizer(problem.optimizer);
  const state = {
    problem,
    family: fam,
    S,
    theta,
    mask,
    objective,
    estimator: problem.estimator || { name: "exact" },
    teacher: makeTeacher(problem.teacher),
    grid,
    scale: problem.scale,
    opt,
    optState: opt.init(theta.length),
    grad: new Float64Array(theta.length),
    loss: new Float64Array(S),
    t: 0,
    rng: makeRng(problem.seed === undefined ? 0 : problem.seed),
    alive: new Uint8Array(S).fill(1), // kc.fit's ~Trajectory.dropped
    reasons: new Array(S).fill(""), // Trajectory.reasons
    error: null, // kc.fit's ValueError when every start is infinite at the start
    prevTheta: new Float64Array(theta.length),
    prevLoss: new Float64Array(S),
  };
  prepareGrid(state);
  evaluate(state);
  checkStart(state);
  return state;
}

/** The exact loss of start s on the grid; with grad, its gradient into out (the _Problem.exact path). */
function exactStart(state, s, out, withGrad) {
  const fam = state.family;
  const { x, w } = state.grid;
  const n = x.length;
  const ws = state.ws;
  const { lp, wp } = state;
  const obj = state.objective;
  const fast = fam.K === 1 && (obj.direction === "forward" || (obj.kind === "reverse_kl" && state.finiteTeacher));
  if (fast && withGrad) return exactGaussianKL(state, s, out, obj.direction === "forward");
  studentLogProb(fam, state.theta, s, x, n, ws);
  const { lq, c } = ws;
  let loss;
  if (obj.direction === "forward") {
    // forward KL only needs the teacher's weights: sum w p (log p - log q)
    let dot = 0;
    for (let i = 0; i < n; i++) {
      dot += lq[i] * wp[i];
      c[i] = -wp[i];
    }
    loss = state.negEntropy - dot;
  } else if (obj.kind === "reverse_kl" && state.finiteTeacher) {
    loss = 0;
    for (let i = 0; i < n; i++) {
      const q = Math.exp(lq[i]);
      const g = q * (lq[i] - lp[i]);
      loss += g * w[i];
      c[i] = (g + q) * w[i];
    }
  } else {
    const { g, d, par } = obj;
    loss = 0;
    for (let i = 0; i < n; i++) {
      loss += g(lp[i], lq[i], par) * w[i];
      if (withGrad) c[i] = d(lp[i], lq[i], par) * w[i];
    }
  }
  if (withGrad) logProbVjp(fam, s, n, ws, c, out);
  return loss;
}

/**
 * exactStart for a Gaussian student under forward or reverse KL in one pass over the grid (the
 * widget's default scene): the same operations in the same order as studentLogProb + logProbVjp.
 */
function exactGaussianKL(state, s, out, forward) {
  const { x, w } = state.grid;
  const { lp, wp } = state;
  const o = s * 2;
  const mu = state.theta[o], ls = state.theta[o + 1];
  const sg = Math.exp(ls);
  const inv = 1.0 / sg;
  const c0 = ls + 0.5 * LOG_2PI;
  let acc = 0, az = 0, azz = 0, a = 0;
  for (let i = 0; i < x.length; i++) {
    const zi = (x[i] - mu) * inv;
    const lq = -0.5 * zi * zi - c0;
    let ci;
    if (forward) {
      acc += lq * wp[i];
      ci = -wp[i];
    } else {
      const q = Math.exp(lq);
      const g = q * (lq - lp[i]);
      acc += g * w[i];
      ci = (g + q) * w[i];
    }
    const azi = ci * zi;
    az += azi;
    azz += azi * zi;
    a += ci;
  }
  out[o] = az / sg;
  out[o + 1] = azz - a;
  return forward ? state.negEntropy - acc : acc;
}

/** Monte-Carlo gradient of start s into out (fitting._mc_teacher_samples / _mc_student_samples); returns the estimate. */
function mcStart(state, s, out, rng) {
  const fam = state.family;
  const { sampler, gradient, samples: n } = state.estimator;
  const ws = state.mcws && state.mcws.n === n ? state.mcws : (state.mcws = workspace(fam.K, n));
  const { g, d, par } = state.objective;
  const xs = new Float64Array(n);
  if (sampler === "teacher") {
    // off-policy: D = E_T[g(0, lq - lp)]; grad = E_T[g'(0, lq - lp) dlq/dtheta]
    xs.set(sampleTeacher(state.teacher, n, rng));
    const lpx = teacherLogProb(state.teacher, xs);
    studentLogProb(fam, state.theta, s, xs, n, ws);
    let est = 0;
    for (let i = 0; i < n; i++) {
      est += g(0, ws.lq[i] - lpx[i], par);
      ws.c[i] = d(0, ws.lq[i] - lpx[i], par) / n;
    }
    logProbVjp(fam, s, n, ws, ws.c, out);
    return est / n;
  }
  // on-policy: h = g(lp - lq, 0); dh/dlq = g'(a, 0) - g(a, 0) by homogeneity of g
  sampleStudent(fam, state.theta, s, n, rng, xs);
  const lpx = teacherLogProb(state.teacher, xs);
  studentLogProb(fam, state.theta, s, xs, n, ws);
  const h = new Float64Array(n), dh = new Float64Array(n);
  let hsum = 0;
  for (let i = 0; i < n; i++) {
    const a = lpx[i] - ws.lq[i];
    h[i] = g(a, 0, par);
    dh[i] = d(a, 0, par) - h[i];
    hsum += h[i];
  }
  if (gradient === "score") {
    for (let i = 0; i < n; i++) {
      const baseline = (hsum - h[i]) / (n - 1); // leave-one-out: keeps it unbiased
      ws.c[i] = (h[i] - baseline + dh[i]) / n;
    }
    logProbVjp(fam, s, n, ws, ws.c, out);
  } else {
    const dxq = new Float64Array(n);
    studentGradX(fam, n, ws, dxq);
    const dxp = teacherGradLogProb(state.teacher, xs);
    const cot = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      ws.c[i] = dh[i] / n;
      cot[i] = (dh[i] * (dxq[i] - dxp[i])) / n;
    }
    logProbVjp(fam, s, n, ws, ws.c, out);
    pathVjp(fam, state.theta, s, xs, n, ws, cot, out);
  }
  return hsum / n;
}

/** The loss of every start at the current parameters and the gradient of the estimator into state.grad. */
export function evaluate(state, rng = state.rng) {
  const mc = state.estimator.name === "mc";
  const { alive, grad } = state;
  const P = state.family.P;
  for (let s = 0; s < state.S; s++) {
    if (!alive[s]) {
      // a dropped start is frozen: kc.fit keeps its last loss and multiplies its gradient by 0
      grad.fill(0, s * P, (s + 1) * P);
      continue;
    }
    state.loss[s] = exactStart(state, s, grad, !mc);
    if (mc) mcStart(state, s, grad, rng);
  }
  for (let i = 0; i < grad.length; i++) if (!Number.isFinite(grad[i])) grad[i] = 0;
}

/** The exact loss and gradient at theta (S P) for the problem's teacher, without touching the fit. */
export function exactGradient(state, theta = state.theta) {
  const saved = state.theta;
  state.theta = theta;
  const grad = new Float64Array(theta.length);
  const loss = new Float64Array(state.S);
  for (let s = 0; s < state.S; s++) loss[s] = exactStart(state, s, grad, true);
  state.theta = saved;
  return { loss, grad };
}

/** One Monte-Carlo gradient draw at the current parameters (with its own generator). */
export function mcGradient(state, rng) {
  const grad = new Float64Array(state.theta.length);
  const est = new Float64Array(state.S);
  for (let s = 0; s < state.S; s++) est[s] = mcStart(state, s, grad, rng);
  return { estimate: est, grad };
}

/**
 * Advance every start by n optimiser steps (the loop of kc.fit, its guard included: a start that
 * degenerates is dropped and frozen, see checkParams and checkLoss). state.loss is at the new parameters.
 * No allocation: the widget calls this every animation frame.
 */
export function step(state, n = 1) {
  const { theta, grad, mask, alive, prevTheta, prevLoss } = state;
  const P = state.family.P;
  for (let k = 0; k < n; k++) {
    for (let s = 0; s < state.S; s++) {
      const o = s * P;
      for (let j = 0; j < P; j++) grad[o + j] = grad[o + j] * alive[s] * mask[j];
    }
    prevTheta.set(theta);
    state.opt.update(theta, grad, state.optState);
    clip(state.family, theta, state.S, state.grid.box, state.scale);
    checkParams(state, state.t + 1);
    state.t += 1;
    prevLoss.set(state.loss);
    evaluate(state);
    checkLoss(state, state.t);
  }
  return state;
}

// ------------------------------------------------------------------------------------------------
// The guard (fitting._Guard): starts infinite at the start, or that degenerate, are dropped and frozen
// ------------------------------------------------------------------------------------------------

/** Python's format(v, ".{p}g"): p significant digits, trailing zeros dropped, e-05 style exponents. */
export function formatG(v, p = 6) {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const strip = (t) => (t.includes(".") ? t.replace(/\.?0+$/, "") : t);
  const [mant, ex] = v.toExponential(p - 1).split("e");
  const x = Number(ex);
  if (x >= -4 && x < p) return strip(v.toFixed(Math.max(p - 1 - x, 0)));
  return `${strip(mant)}e${x < 0 ? "-" : "+"}${String(Math.abs(x)).padStart(2, "0")}`;
}

/** The guard's settings for the state's objective and grid: the std floor and alpha outside [0, 1]. */
function prepareGuard(state) {
  const { x } = state.grid;
  state.floor = 0.5 * (x[1] - x[0]); // half the grid spacing: a narrower student is not resolved
  const { kind, par } = state.objective;
  state.alphaOut = kind === "alpha" && !(par.alpha >= 0.0 && par.alpha <= 1.0) ? par.alpha : null;
}

/** For alpha outside [0, 1]: is the integral of p^a q^(1-a) infinite for start s (_Guard._alpha_infinite)? */
export function alphaInfinite(state, s, theta = state.theta) {
  const a = state.alphaOut;
  if (a === null) return false;
  const { K, nl, P } = state.family;
  let formP = Infinity, formQ = Infinity;
  for (const sd of state.teacher.stds) formP = Math.min(formP, 1 / (sd * sd));
  for (let k = 0; k < K; k++) formQ = Math.min(formQ, Math.exp(-2.0 * theta[s * P + nl + K + k]));
  return !(a * formP + (1.0 - a) * formQ > 0.0);
}

function drop(state, s, why) {
  if (state.alive[s]) {
    state.alive[s] = 0;
    state.reasons[s] = why;
  }
}

function infiniteAtStartWhy(state) {
  let why = `${state.objective.kind} is infinite at the start`;
  if (state.alphaOut !== null) {
    why += ` (alpha=${formatG(state.alphaOut)}: the student is too ${state.alphaOut < 0 ? "wide" : "narrow"} for the teacher)`;
  }
  return why;
}

/**
 * _Guard.check_start: every start whose loss is not finite (or, alpha outside [0, 1], whose integral
 * diverges) is dropped with loss inf. If none is left, state.error holds kc.fit's ValueError message.
 */
export function checkStart(state) {
  const S = state.S;
  state.alive = new Uint8Array(S);
  state.reasons = new Array(S).fill("");
  state.error = null;
  const why = infiniteAtStartWhy(state);
  let left = 0;
  for (let s = 0; s < S; s++) {
    const bad = !Number.isFinite(state.loss[s]) || alphaInfinite(state, s);
    state.alive[s] = bad ? 0 : 1;
    if (bad) {
      state.reasons[s] = why;
      state.loss[s] = Infinity;
    } else left += 1;
  }
  if (left === 0) {
    state.error =
      `${state.objective.kind} is infinite at the start of all ${S} start(s): the teacher gives zero ` +
      "probability where the student has mass (or the reverse, or an alpha outside [0, 1] with a student " +
      "too wide or too narrow); give the teacher a small floor everywhere, or start the student elsewhere";
  }
  return state;
}

/** _Guard.check_params after the update to step t: non-finite, too narrow, alpha-infinite starts are dropped; dropped starts keep prevTheta. */
function checkParams(state, t) {
  const { theta, prevTheta, alive, family: fam } = state;
  const { K, nl, P } = fam;
  const logw = state.ws.logw;
  for (let s = 0; s < state.S; s++) {
    if (!alive[s]) continue;
    const o = s * P;
    let finite = true;
    for (let j = 0; j < P; j++) if (!Number.isFinite(theta[o + j])) finite = false;
    if (!finite) {
      drop(state, s, `the student's parameters stopped being finite at step ${t}`);
      continue;
    }
    logWeights(fam, theta, o, logw);
    for (let k = 0; k < K; k++) {
      if (Math.exp(logw[k]) > 1e-3 && Math.exp(theta[o + nl + K + k]) < state.floor) {
        drop(state, s, `the student's std collapsed below ${formatG(state.floor, 3)} at step ${t}`);
        break;
      }
    }
    if (alive[s] && alphaInfinite(state, s)) drop(state, s, `${state.objective.kind} became infinite at step ${t} (alpha=${formatG(state.alphaOut)})`);
  }
  for (let s = 0; s < state.S; s++) if (!alive[s]) for (let j = s * P; j < (s + 1) * P; j++) theta[j] = prevTheta[j];
}

/** _Guard.check_loss at step t: a start whose loss became infinite is dropped and put back to its previous step. */
function checkLoss(state, t) {
  const { theta, prevTheta, prevLoss, alive, loss } = state;
  const P = state.family.P;
  for (let s = 0; s < state.S; s++) {
    if (alive[s] && !Number.isFinite(loss[s])) {
      drop(state, s, `${state.objective.kind} became infinite at step ${t}`);
      for (let j = s * P; j < (s + 1) * P; j++) theta[j] = prevTheta[j];
    }
    if (!alive[s]) loss[s] = prevLoss[s];
  }
}

/** The dropped starts in one sentence (Trajectory.drop_note); "" when none was dropped. */
export function dropNote(state) {
  const parts = [];
  for (let s = 0; s < state.S; s++) if (!state.alive[s]) parts.push(`start ${s}: ${state.reasons[s]}`);
  return parts.length ? `${parts.length} of ${state.S} starts were dropped (${parts.join("; ")}).` : "";
}

/** The index of the best start that was not dropped (Trajectory.best); -1 when every start was dropped. */
export function bestStart(state) {
  let b = -1;
  for (let s = 0; s < state.S; s++) if (state.alive[s] && (b < 0 || state.loss[s] < state.loss[b])) b = s;
  return b;
}

/** Current students as [{weights, means, stds}] (one per start). */
export function students(state) {
  return Array.from({ length: state.S }, (_, s) => unpack(state.family, state.theta, s));
}

/**
 * A new teacher while training runs: the grid is rebuilt by kc.fit's rule for the new teacher and
 * the current students (unless keepGrid), the optimiser's moments are kept (the drag feels continuous).
 */
export function setTeacher(state, teacher, { keepGrid = false, n = 2048 } = {}) {
  state.teacher = makeTeacher(teacher);
  state.scale = Math.sqrt(state.teacher.variance);
  if (!keepGrid) state.grid = fitGrid(state.teacher, fitBox(state.teacher, students(state)), n);
  clip(state.family, state.theta, state.S, state.grid.box, state.scale);
  prepareGrid(state);
  if (state.t === 0) {
    // not trained yet: the starts are checked again as kc.fit checks them for this teacher
    state.alive.fill(1);
    evaluate(state);
    checkStart(state);
    return state;
  }
  // training goes on: a start that the new teacher makes infinite or unresolved is dropped at this step
  evaluate(state);
  const { K, nl, P } = state.family;
  for (let s = 0; s < state.S; s++) {
    if (!state.alive[s]) continue;
    const o = s * P;
    logWeights(state.family, state.theta, o, state.ws.logw);
    for (let k = 0; k < K; k++) {
      if (Math.exp(state.ws.logw[k]) > 1e-3 && Math.exp(state.theta[o + nl + K + k]) < state.floor) {
        drop(state, s, `the student's std collapsed below ${formatG(state.floor, 3)} at step ${state.t}`);
      }
    }
    if (!state.alive[s]) {
      state.loss[s] = Infinity;
      continue;
    }
    if (alphaInfinite(state, s)) drop(state, s, `${state.objective.kind} became infinite at step ${state.t} (alpha=${formatG(state.alphaOut)})`);
    else if (!Number.isFinite(state.loss[s])) drop(state, s, `${state.objective.kind} became infinite at step ${state.t}`);
    if (!state.alive[s]) state.loss[s] = Infinity;
  }
  return state;
}

/** Replace the starts (S P numbers) and restart the optimiser. */
export function setStarts(state, starts) {
  const P = state.family.P;
  state.S = starts.length / P;
  state.theta = Float64Array.from(starts);
  state.grad = new Float64Array(starts.length);
  state.loss = new Float64Array(state.S);
  state.prevTheta = new Float64Array(starts.length);
  state.prevLoss = new Float64Array(state.S);
  state.alive = new Uint8Array(state.S).fill(1);
  state.optState = state.opt.init(starts.length);
  state.t = 0;
  evaluate(state);
  checkStart(state);
  return state;
}

/**
 * fit(problem) -> {params, loss, dropped, reasons, note}: params[t][s][j] and loss[t][s] for
 * t = 0..steps, as Trajectory.params (steps + 1, inits, P) and Trajectory.loss (steps + 1, inits);
 * dropped[s], reasons[s] and note as Trajectory.dropped, .reasons and .drop_note(). Throws kc.fit's
 * ValueError message when every start is infinite at the start.
 */
export function fit(problem) {
  const state = createState(problem);
  const P = state.family.P;
  const params = [], loss = [];
  const record = () => {
    params.push(Array.from({ length: state.S }, (_, s) => Array.from(state.theta.subarray(s * P, (s + 1) * P))));
    loss.push(Array.from(state.loss));
  };
  if (state.error) throw new Error(state.error);
  record();
  for (let t = 0; t < problem.steps; t++) {
    step(state, 1);
    record();
  }
  const dropped = Array.from(state.alive, (a) => !a);
  return { params, loss, dropped, reasons: state.reasons.slice(), note: dropNote(state) };
}

/**
 * A problem built in the browser (the widget's scenes): the teacher, start 0 and inits - 1 random
 * starts from the engine's generator (or the given starts), the grid by kc.fit's rule.
 */
export function makeProblem({ teacher, student, objective = "reverse_kl", params = {}, inits = 8, seed = 0, lr = 0.05, optimizer = "adam", learn = null, estimator = { name: "exact" }, grid = 2048, starts: given = null }) {
  const t = makeTeacher(teacher);
  const K = student.means.length;
  const fam = makeFamily(K);
  const rng = makeRng(seed);
  const theta = new Float64Array(inits * fam.P);
  if (given) {
    // starts baked in by kl_core.live.problem (kc.fit's own draws for the seed)
    if (given.length !== inits || given.some((row) => row.length !== fam.P)) throw new Error(`starts must be ${inits} rows of ${fam.P} numbers`);
    given.forEach((row, s) => theta.set(row, s * fam.P));
  } else {
    theta.set(pack(fam, student), 0);
    if (inits > 1) theta.set(randomStarts(fam, t, inits - 1, rng), fam.P);
  }
  const mask = new Array(fam.P).fill(1);
  if (learn === "mean") for (let j = 0; j < fam.P; j++) mask[j] = j >= fam.nl && j < fam.nl + K ? 1 : 0;
  for (let s = 1; s < inits; s++) for (let j = 0; j < fam.P; j++) if (!mask[j]) theta[s * fam.P + j] = theta[j];
  const starts = Array.from({ length: inits }, (_, s) => Array.from(theta.subarray(s * fam.P, (s + 1) * fam.P)));
  const g = fitGrid(t, fitBox(t, starts.map((row) => unpack(fam, Float64Array.from(row), 0))), grid);
  const obj = resolveObjective(objective, params);
  return {
    teacher: { weights: t.weights, means: t.means, stds: t.stds },
    family: { kind: "gaussian_1d", components: K, mask },
    objective: { kind: objective, params: obj.par, direction: obj.direction },
    estimator,
    optimizer: optimizer === "sgd" ? { name: "sgd", lr, momentum: 0 } : { name: "adam", lr, b1: 0.9, b2: 0.999, eps: 1e-8 },
    steps: 0,
    inits,
    seed,
    starts,
    grid: { box: g.box, n: g.x.length, x: g.x, w: g.w },
    scale: Math.sqrt(t.variance),
  };
}
