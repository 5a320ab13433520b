// Runs kl_core/live/engine.js on every task of a JSON file: node tests/live_runner.mjs in.json out.json
// The oracle tests (tests/test_live_engine.py) write the tasks with kl_core.live.problem and compare:
//   {task: "fit", problem}                 -> fit(problem): {params, loss, dropped, reasons, note}
//   {task: "mc", problem, draws, seed}     -> mean and standard error of `draws` Monte-Carlo gradients at the starts
//   {task: "grid", problem}                -> the engine's own grid for the problem's teacher and starts
//   {task: "minima", teacher, objective, n} -> the engine's minima for a Gaussian student (n x n coarse grid)
//   {task: "format", values, digits}      -> formatG of each value (Python's format(v, ".{digits}g"))
import { readFileSync, writeFileSync } from "node:fs";
import * as engine from "../kl_core/live/engine.js";
import { gaussianMinima } from "../kl_core/live/minima.js";

const TASKS = {
  fit: ({ problem }) => engine.fit(problem),
  mc({ problem, draws, seed }) {
    const state = engine.createState(problem);
    const rng = engine.makeRng(seed);
    const m = state.theta.length;
    const sum = new Float64Array(m), sq = new Float64Array(m);
    for (let d = 0; d < draws; d++) {
      const { grad } = engine.mcGradient(state, rng);
      for (let i = 0; i < m; i++) {
        sum[i] += grad[i];
        sq[i] += grad[i] * grad[i];
      }
    }
    const mean = Array.from(sum, (s) => s / draws);
    const se = Array.from(sq, (s, i) => Math.sqrt(Math.max(s / draws - mean[i] * mean[i], 0) / (draws - 1)));
    return { mean, se, exact: Array.from(engine.exactGradient(state).grad) };
  },
  grid({ problem }) {
    const fam = engine.makeFamily(problem.family.components);
    const t = engine.makeTeacher(problem.teacher);
    const starts = problem.starts.map((row) => engine.unpack(fam, Float64Array.from(row), 0));
    const g = engine.fitGrid(t, engine.fitBox(t, starts));
    return { box: g.box, x: Array.from(g.x), w: Array.from(g.w), lp: Array.from(engine.teacherLogProb(t, g.x)) };
  },
  minima: ({ teacher, objective, n = 120 }) => gaussianMinima(teacher, objective, { n }),
  format: ({ values, digits }) => values.map((v) => engine.formatG(v, digits)),
};

const [input, output] = process.argv.slice(2);
const tasks = JSON.parse(readFileSync(input, "utf8"));
const results = tasks.map((task) => {
  try {
    return TASKS[task.task || "fit"](task);
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
});
// JSON has no Infinity or NaN: they travel as the strings "Infinity", "-Infinity" and "NaN" (float() reads them)
const finiteOrString = (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v);
writeFileSync(output, JSON.stringify(results, finiteOrString));
