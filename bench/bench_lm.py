"""Benchmark: the LM lab's default demo, forward_kl vs reverse_kl on ``cities`` with the default student.

Runs ``kl_core.lm.compare`` exactly as the page's default does (300 steps, batch 64, seed 0,
evaluation every 50 steps, exact sequence-level KLs) and prints, per method, the wall time (training
and evaluation), the training throughput in sequence tokens per second, the device and the final
metrics. Run:

    python bench/bench_lm.py [--device auto] [--threads 1] [--methods forward_kl,reverse_kl] [--steps 300]

``--threads`` sets torch's intra-op threads (the lab's tensors are tiny: one thread is usually
fastest on a CPU); 0 keeps torch's default.
"""

from __future__ import annotations

import argparse
import time

import torch

from kl_core import lm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default=",".join(lm.DEMO_METHODS))
    parser.add_argument("--steps", type=int, default=lm.DEMO_STEPS)
    parser.add_argument("--language", default=lm.DEFAULT_LANGUAGE)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    t0 = time.perf_counter()
    results = lm.compare(args.language, methods, steps=args.steps, seed=0, device=args.device)
    total = time.perf_counter() - t0
    first = next(iter(results.values()))
    print(
        f"{args.language}, {args.steps} steps, batch {first.batch_size}, device {first.device}, "
        f"torch threads {torch.get_num_threads()}"
    )
    names = ("method", "train s", "eval s", "tok/s", "fwd KL", "rev KL", "valid", "modes")
    print(" ".join(n.rjust(w) for n, w in zip(names, (18, 8, 7, 8, 7, 7, 6, 6))))
    for name, r in results.items():
        f = r.final
        print(
            f"{name:>18} {r.train_seconds:8.1f} {r.eval_seconds:7.1f} {r.tokens_per_s:8.0f} {f.forward_kl:7.3f} "
            f"{f.reverse_kl:7.3f} {f.validity:6.3f} {f.mode_coverage:6.3f}"
        )
    print(f"total wall time (demo, both methods, with evaluations): {total:.1f} s")


if __name__ == "__main__":
    main()
