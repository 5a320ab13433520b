"""Benchmark: kl_core.fit against a plain torch-autograd loop and a hand-derived numpy loop.

Same inputs for all three: a 5-mode 1-D teacher, a 2048-point grid, 500 Adam steps, 8 starts,
five objectives (forward KL, reverse KL, JSD beta=0.5, alpha=0.5, total variation), each loop
integrating the same integrand on the same grid in float64 (the loss landscape is timed by
bench/bench_landscape.py). Run:

    python bench/bench_fit.py

Each timing is the best of ``--repeat`` runs (default 5). The three implementations must agree
on the final parameters (total variation, whose sign gradient makes Adam chatter at the optimum:
on the final objective); the script checks that before printing.
"""

from __future__ import annotations

import argparse
import math
import os
import time

# one core for every loop: torch is set to one thread below, and numpy's BLAS (kl_core's
# matrix-vector sums) would otherwise spread each 8 x 2048 product over both cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import kl_core as kc  # noqa: E402
from kl_core.divergences import integrand  # noqa: E402
from kl_core.fitting import _fit_box, _fit_grid  # noqa: E402

TEACHER = kc.GaussianMixture([0.15, 0.2, 0.3, 0.2, 0.15], [-8.0, -4.0, 0.0, 4.0, 8.0], [0.6] * 5)
STEPS, INITS, GRID, LR = 500, 8, 2048, 0.05
OBJECTIVES = {"forward_kl": {}, "reverse_kl": {}, "jsd": {"beta": 0.5}, "alpha": {"alpha": 0.5}, "tv": {}}
BETA, ALPHA = OBJECTIVES["jsd"]["beta"], OBJECTIVES["alpha"]["alpha"]


def starts() -> np.ndarray:
    """The (INITS, 2) starting (mean, log std) that kl_core.fit uses with seed 0."""
    traj = kc.fit(TEACHER, kc.Gaussian(3.0, 1.0), "forward_kl", steps=0, inits=INITS, seed=0, grid=GRID)
    return traj.params[0].copy()


def grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    students = [kc.Gaussian(m, math.exp(s)) for m, s in starts()]
    x, w = _fit_grid(TEACHER, _fit_box(TEACHER, students), GRID)
    return x, w, TEACHER.log_prob(x)


def keep_in_box(theta: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The constraint kl_core.fit applies too: each student stays 5 of its stds inside the grid
    (and its std within [1e-4, 1e3] x the teacher's), so all three loops solve the same problem."""
    scale = math.sqrt(TEACHER.variance)
    log_std = np.clip(theta[:, 1:], math.log(1e-4 * scale), math.log(1e3 * scale))
    log_std = np.minimum(log_std, math.log((hi - lo) / 10.0))
    reach = 5.0 * np.exp(log_std)
    return np.concatenate([np.clip(theta[:, :1], lo + reach, hi - reach), log_std], axis=1)


def numpy_loop(objective: str, x: np.ndarray, w: np.ndarray, lp: np.ndarray, theta0: np.ndarray) -> np.ndarray:
    """The floor: hand-derived gradients, fused, nothing general."""
    p = np.exp(lp)
    theta = theta0.copy()
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    c0 = 0.5 * math.log(2 * math.pi)
    for t in range(1, STEPS + 1):
        mu, ls = theta[:, :1], theta[:, 1:]
        inv = np.exp(-ls)
        z = (x - mu) * inv  # (S, G)
        lq = -0.5 * z * z - ls - c0
        if objective == "forward_kl":
            c = -w * p  # dD/dlq
        else:
            q = np.exp(lq)
            if objective == "reverse_kl":
                c = w * q * (lq - lp + 1.0)
            elif objective == "jsd":  # (1 - beta) q (lq - lm), lm = log(beta p + (1 - beta) q)
                a, b = lp + math.log(BETA), lq + math.log1p(-BETA)
                lm = np.maximum(a, b) + np.log1p(np.exp(-np.abs(a - b)))
                c = w * (1.0 - BETA) * q * (lq - lm)
            elif objective == "alpha":  # (q - p^a q^(1-a)) / a
                c = w * (q - np.exp(ALPHA * lp + (1.0 - ALPHA) * lq)) / ALPHA
            else:  # tv: -sign(p - q) q / 2
                c = -0.5 * w * np.sign(p - q) * q
        cz = c * z
        grad = np.stack([cz.sum(-1) * inv[:, 0], (cz * z).sum(-1) - c.sum(-1)], -1)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        step = LR * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        theta = theta - step * m / (np.sqrt(v) + 1e-8)
        theta = keep_in_box(theta, x[0], x[-1])
    return theta


def torch_loop(objective: str, x: np.ndarray, w: np.ndarray, lp: np.ndarray, theta0: np.ndarray) -> np.ndarray:
    """What one would write first: autograd through the quadrature sum, torch.optim.Adam."""
    xt, wt, lpt = (torch.tensor(a) for a in (x, w, lp))
    pt = lpt.exp()
    pt[pt < 1e-300] = 0.0  # subnormals in the far tails make every product with them slow
    wp = wt * pt
    theta = torch.tensor(theta0, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=LR)
    for _ in range(STEPS):
        opt.zero_grad()
        q = torch.distributions.Normal(theta[:, :1], theta[:, 1:].exp())
        lq = q.log_prob(xt)
        if objective == "forward_kl":
            loss = (wp * (lpt - lq)).sum()
        elif objective == "reverse_kl":
            loss = (wt * lq.exp() * (lq - lpt)).sum()
        elif objective == "jsd":
            lm = torch.logaddexp(lpt + math.log(BETA), lq + math.log1p(-BETA))
            loss = (wt * (BETA * pt * (lpt - lm) + (1.0 - BETA) * lq.exp() * (lq - lm))).sum()
        elif objective == "alpha":
            a, b = ALPHA, 1.0 - ALPHA
            loss = (wt * (a * pt + b * lq.exp() - torch.exp(a * lpt + b * lq))).sum() / (a * b)
        else:
            loss = (wt * 0.5 * (pt - lq.exp()).abs()).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            theta.copy_(torch.from_numpy(keep_in_box(theta.numpy(), x[0], x[-1])))
    return theta.detach().numpy()


def grid_objective(objective: str, theta: np.ndarray, x: np.ndarray, w: np.ndarray, lp: np.ndarray) -> np.ndarray:
    """The objective of each start (rows of theta) on the grid, from kl_core's integrand."""
    lq = -0.5 * ((x - theta[:, :1]) * np.exp(-theta[:, 1:])) ** 2 - theta[:, 1:] - 0.5 * math.log(2 * math.pi)
    return integrand(objective, lp, lq, **OBJECTIVES[objective]) @ w


def kl_core_fit(objective: str) -> np.ndarray:
    traj = kc.fit(
        TEACHER,
        kc.Gaussian(3.0, 1.0),
        objective,
        steps=STEPS,
        lr=LR,
        inits=INITS,
        seed=0,
        grid=GRID,
        **OBJECTIVES[objective],
    )
    return traj.params[-1]


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)  # numpy runs on one core here too
    torch.set_flush_denormal(True)  # spare torch the subnormal slow path of exp(log p) in the tails
    x, w, lp = grid()
    theta0 = starts()
    rows = []
    for objective in OBJECTIVES:
        t_fit, th_fit = best_of(lambda o=objective: kl_core_fit(o), args.repeat)
        t_np, th_np = best_of(lambda o=objective: numpy_loop(o, x, w, lp, theta0), args.repeat)
        t_torch, th_torch = best_of(lambda o=objective: torch_loop(o, x, w, lp, theta0), args.repeat)
        if objective == "tv":  # a sign gradient: compare where the loops end up on the objective itself
            final = [grid_objective(objective, th, x, w, lp) for th in (th_fit, th_np, th_torch)]
            agree = np.abs(final[0] - final[1]).max(), np.abs(final[0] - final[2]).max()
        else:
            agree = np.abs(th_fit - th_np).max(), np.abs(th_fit - th_torch).max()
        if max(agree) > 1e-4:
            raise SystemExit(f"{objective}: implementations disagree by {agree}")
        rows.append((objective, t_fit, t_torch, t_np))
    names = {"jsd": f"jsd (beta={BETA:g})", "alpha": f"alpha (alpha={ALPHA:g})"}
    print(f"5-mode teacher, {GRID}-point grid, {STEPS} Adam steps, {INITS} starts (best of {args.repeat})\n")
    print("| objective | (a) kl_core.fit | (b) torch autograd loop | (c) numpy hand-derived | (a)/(c) | (b)/(a) |")
    print("|---|---:|---:|---:|---:|---:|")
    for objective, a, b, c in rows:
        name = names.get(objective, objective)
        print(f"| {name} | {a * 1e3:.1f} ms | {b * 1e3:.1f} ms | {c * 1e3:.1f} ms | {a / c:.2f}x | {b / a:.1f}x |")


if __name__ == "__main__":
    main()
