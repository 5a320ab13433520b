// minima.js: the local minima of forward or reverse KL over a Gaussian student N(m, s^2), in the browser.
//
// The same search as kl_core.landscape: a coarse surface over (log std, mean) on
// kl_core.landscape.default_ranges, its cells lower than their 8 neighbours, each polished on the
// exact objective of kc.fit's grid (BFGS here, L-BFGS-B there), merged within 1e-3 and sorted.
// tests/test_live_engine.py checks the result against kc.landscape to 1e-3.
//
// Coarse surface: reverse KL(q || p) = -H(q) - E_q[log p] with E_q[log p] by the trapezoid rule in
// the standardised variable z on [-8, 8]; forward KL(p || q) from the teacher's moments.

import { fitBox, fitGrid, makeTeacher, teacherLogProb } from "./engine.js";

const HALF_LOG_2PI_E = 0.5 * Math.log(2 * Math.PI * Math.E);
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** means and log stds of kl_core.landscape.default_ranges. */
export function defaultRanges(t, n = 120) {
  let lo = Infinity, hi = -Infinity;
  t.means.forEach((m, k) => {
    lo = Math.min(lo, m - 2 * t.stds[k]);
    hi = Math.max(hi, m + 2 * t.stds[k]);
  });
  const sLo = Math.log(0.25 * Math.min(...t.stds)), sHi = Math.log(2.0 * Math.sqrt(t.variance));
  const lin = (a, b) => Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
  return { means: lin(lo, hi), logStds: lin(sLo, sHi) };
}

function coarseSurface(t, kind, means, logStds) {
  const values = logStds.map(() => new Float64Array(means.length));
  if (kind === "forward_kl") {
    // -H(p) is a constant: it moves no minimum
    logStds.forEach((ls, i) => {
      const s2 = Math.exp(2 * ls);
      means.forEach((m, j) => (values[i][j] = ls + HALF_LOG_2PI + (t.variance + (t.mean - m) ** 2) / (2 * s2)));
    });
    return values;
  }
  const nz = 129, h = 16 / (nz - 1);
  const z = Float64Array.from({ length: nz }, (_, i) => -8 + i * h);
  const wz = z.map((v) => (Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI)) * h);
  const x = new Float64Array(nz);
  logStds.forEach((ls, i) => {
    const s = Math.exp(ls);
    means.forEach((m, j) => {
      for (let k = 0; k < nz; k++) x[k] = m + s * z[k];
      const lp = teacherLogProb(t, x);
      let e = 0;
      for (let k = 0; k < nz; k++) e += wz[k] * lp[k];
      values[i][j] = -(HALF_LOG_2PI_E + ls) - e;
    });
  });
  return values;
}

function localMinima(v) {
  const out = [];
  for (let i = 1; i < v.length - 1; i++) {
    for (let j = 1; j < v[i].length - 1; j++) {
      let noHigher = true, someLower = false;
      for (let di = -1; di <= 1; di++) {
        for (let dj = -1; dj <= 1; dj++) {
          if (!di && !dj) continue;
          const nb = v[i + di][j + dj];
          if (v[i][j] > nb) noHigher = false;
          if (v[i][j] < nb) someLower = true;
        }
      }
      if (noHigher && someLower) out.push([i, j]);
    }
  }
  return out;
}

/** The exact objective of a Gaussian student on kc.fit's grid: (m, ls) -> [value, d/dm, d/dls]. */
function gridObjective(t, kind, grid) {
  const { x, w } = grid;
  const lp = teacherLogProb(t, x);
  const n = x.length;
  return (m, ls) => {
    const s = Math.exp(ls), inv = 1 / s, c0 = ls + HALF_LOG_2PI;
    let v = 0, dm = 0, dls = 0;
    for (let i = 0; i < n; i++) {
      const z = (x[i] - m) * inv;
      const lq = -0.5 * z * z - c0;
      let g, dg;
      if (kind === "forward_kl") {
        const p = Math.exp(lp[i]);
        g = p * (lp[i] - lq);
        dg = -p;
      } else {
        const q = Math.exp(lq);
        g = q * (lq - lp[i]);
        dg = g + q;
      }
      v += w[i] * g;
      const a = w[i] * dg;
      dm += a * z;
      dls += a * (z * z - 1);
    }
    return [v, dm * inv, dls];
  };
}

/** BFGS with a backtracking line search on a 2-D smooth function f(m, ls) -> [value, grad...]. */
function polish(f, m0, ls0) {
  let p = [m0, ls0];
  let [v, g0, g1] = f(p[0], p[1]);
  let g = [g0, g1];
  let H = [1, 0, 0, 1];
  for (let it = 0; it < 300; it++) {
    if (Math.hypot(g[0], g[1]) < 1e-11) break;
    let d = [-(H[0] * g[0] + H[1] * g[1]), -(H[2] * g[0] + H[3] * g[1])];
    let slope = d[0] * g[0] + d[1] * g[1];
    if (!(slope < 0)) {
      H = [1, 0, 0, 1];
      d = [-g[0], -g[1]];
      slope = -(g[0] * g[0] + g[1] * g[1]);
    }
    let a = 1, next = null;
    for (let k = 0; k < 60; k++) {
      const q = [p[0] + a * d[0], p[1] + a * d[1]];
      const r = f(q[0], q[1]);
      if (Number.isFinite(r[0]) && r[0] <= v + 1e-4 * a * slope) {
        next = [q, r];
        break;
      }
      a *= 0.5;
    }
    if (!next) break;
    const [q, r] = next;
    const sv = [q[0] - p[0], q[1] - p[1]], yv = [r[1] - g[0], r[2] - g[1]];
    const sy = sv[0] * yv[0] + sv[1] * yv[1];
    p = q;
    const improved = v - r[0];
    v = r[0];
    g = [r[1], r[2]];
    if (sy > 1e-300) {
      // H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T
      const rho = 1 / sy;
      const Hy = [H[0] * yv[0] + H[1] * yv[1], H[2] * yv[0] + H[3] * yv[1]];
      const yHy = yv[0] * Hy[0] + yv[1] * Hy[1];
      H = [
        H[0] - rho * (Hy[0] * sv[0] + sv[0] * Hy[0]) + (rho * rho * yHy + rho) * sv[0] * sv[0],
        H[1] - rho * (Hy[0] * sv[1] + sv[0] * Hy[1]) + (rho * rho * yHy + rho) * sv[0] * sv[1],
        H[2] - rho * (Hy[1] * sv[0] + sv[1] * Hy[0]) + (rho * rho * yHy + rho) * sv[1] * sv[0],
        H[3] - rho * (Hy[1] * sv[1] + sv[1] * Hy[1]) + (rho * rho * yHy + rho) * sv[1] * sv[1],
      ];
    }
    if (improved >= 0 && improved < 1e-16 * Math.max(1, Math.abs(v)) && Math.hypot(g[0], g[1]) < 1e-8) break;
  }
  return { mean: p[0], logStd: p[1], value: v };
}

/**
 * The local minima of forward_kl or reverse_kl over a Gaussian student, best first:
 * [{mean, std, value, isGlobal}] (kl_core.landscape(...).minima).
 */
export function gaussianMinima(teacher, kind = "reverse_kl", { n = 120 } = {}) {
  if (kind !== "forward_kl" && kind !== "reverse_kl") throw new Error(`kind must be forward_kl or reverse_kl, got ${kind}`);
  const t = makeTeacher(teacher);
  const { means, logStds } = defaultRanges(t, n);
  const widest = Math.exp(logStds[logStds.length - 1]);
  const corners = [
    { means: [means[0]], stds: [widest] },
    { means: [means[means.length - 1]], stds: [widest] },
  ];
  const f = gridObjective(t, kind, fitGrid(t, fitBox(t, corners)));
  const values = coarseSurface(t, kind, means, logStds);
  const found = [];
  for (const [i, j] of localMinima(values)) {
    const r = polish(f, means[j], logStds[i]);
    if (!found.some((o) => Math.abs(o.mean - r.mean) < 1e-3 && Math.abs(o.logStd - r.logStd) < 1e-3)) found.push(r);
  }
  found.sort((a, b) => a.value - b.value);
  const best = found.length ? found[0].value : NaN;
  return found.map((r) => ({
    mean: r.mean,
    std: Math.exp(r.logStd),
    value: r.value,
    isGlobal: Math.abs(r.value - best) <= 1e-9 * Math.max(1, Math.abs(best)),
  }));
}
