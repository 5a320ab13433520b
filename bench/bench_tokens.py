"""Benchmark: kc.token_divergence against TRL's GKDTrainer.generalized_jsd_loss on identical inputs.

Inputs: teacher and student logits of shape (B, T, V) = (4, 256, 32768), float32, CPU; the generalized
JSD with beta in {0, 0.5, 1} (0 is forward KL, 1 reverse KL); one forward and one backward pass.
For each pair we report the values' relative difference, the gradients' relative L2 difference,
the best wall time of ``--repeat`` runs, and the extra peak memory: the rise of the process's peak
resident set (VmHWM, reset through /proc/self/clear_refs before each run) over the memory held before
the call (inputs already allocated). Both implementations allocate the student's gradient
(B*T*V floats), which is counted.

    pip install -e ".[bench]"      # trl
    python bench/bench_tokens.py [--repeat 3] [--vocab 32768]

``--fused BT,H,V`` (repeatable) instead compares, from last hidden states (B·T, H) and an output projection
(V, H) with a bias, three ways to get the loss (generalized JSD, beta = 0.5) and the gradients of the student's
hidden states, weight and bias: TRL (``h @ W.T + b`` then ``generalized_jsd_loss``), the unfused
``kc.token_divergence`` on the same materialised logits, and ``kc.fused_token_divergence`` (never builds
them). The teacher's logits are an input, allocated before the measurement. Each (config, implementation)
runs in a fresh subprocess; ``--skip-trl`` leaves TRL out (its (B·T, V) temporaries may not fit).

    python bench/bench_tokens.py --fused 1024,1024,32768 --fused 8192,1024,128256
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import warnings

import torch

import kl_core as kc

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def trl_loss():
    warnings.filterwarnings("ignore")
    try:
        from trl.experimental.gkd import GKDTrainer
    except ImportError:  # older TRL releases
        from trl import GKDTrainer
    return GKDTrainer.generalized_jsd_loss


def _status(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak resident set) to the current resident set


def run_once(fn, teacher: torch.Tensor, student: torch.Tensor) -> tuple[float, float, int]:
    """(loss value, seconds, extra peak bytes) of one forward + backward pass."""
    student.grad = None
    gc.collect()
    _reset_peak()
    before = _status("VmRSS")
    start = time.perf_counter()
    loss = fn(teacher, student)
    loss.backward()
    seconds = time.perf_counter() - start
    extra = _status("VmHWM") - before
    value = float(loss)
    del loss
    return value, seconds, extra


def _fused_child(bt: int, hidden: int, vocab: int, impl: str, repeat: int) -> None:
    """One (config, implementation) in this process: prints 'seconds extra_bytes value'."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(bt, hidden, generator=gen).requires_grad_(True)
    w = (torch.randn(vocab, hidden, generator=gen) / hidden**0.5).requires_grad_(True)
    b = torch.zeros(vocab).requires_grad_(True)
    teacher = torch.randn(bt, vocab, generator=gen) * 2
    reference = trl_loss() if impl == "TRL" else None

    def loss():
        if impl == "fused":
            return kc.fused_token_divergence(h, w, b, teacher_logits=teacher, kind="jsd", beta=0.5)
        logits = torch.addmm(b, h, w.T)
        if impl == "TRL":
            return reference(logits, teacher, beta=0.5)
        return kc.token_divergence(teacher, logits, "jsd", beta=0.5)

    best_t, best_m, value = float("inf"), float("inf"), 0.0
    for _ in range(repeat):
        for x in (h, w, b):
            x.grad = None
        gc.collect()
        _reset_peak()
        before = _status("VmRSS")
        start = time.perf_counter()
        out = loss()
        out.backward()
        best_t = min(best_t, time.perf_counter() - start)
        best_m = min(best_m, _status("VmHWM") - before)
        value = float(out.detach())
        del out
    print(f"{best_t} {best_m} {value}")


def fused_table(configs: list[str], repeat: int, skip_trl: bool) -> None:
    import subprocess
    import sys

    impls = ["unfused", "fused"] if skip_trl else ["TRL", "unfused", "fused"]
    print(f"float32, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; best of {repeat}")
    print("| B·T | H | V | impl | loss | time (s) | extra peak MB | vs unfused: speed | vs unfused: memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        bt, hidden, vocab = (int(x) for x in config.split(","))
        res = {}
        for impl in impls:
            cmd = [sys.executable, __file__, "--child", f"{bt},{hidden},{vocab},{impl}", "--repeat", str(repeat)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {bt} | {hidden} | {vocab} | {impl} | failed: {out.stderr.strip()[-80:]} | | | | |")
                continue
            t, m, v = out.stdout.split()[-3:]
            res[impl] = (float(t), float(m), float(v))
        base = res.get("unfused")
        for impl, (t, m, v) in res.items():
            speed = f"{base[0] / t:.2f}x" if base else "-"
            memory = f"{m / base[1]:.2f}x" if base and base[1] > 0 else "-"
            print(f"| {bt} | {hidden} | {vocab} | {impl} | {v:.6f} | {t:.3f} | {m / 2**20:.0f} | {speed} | {memory} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused", action="append", default=[], metavar="BT,H,V")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--time", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32768)
    args = parser.parse_args()
    if args.child:
        bt, hidden, vocab, impl = args.child.split(",")
        _fused_child(int(bt), int(hidden), int(vocab), impl, args.repeat)
        return
    if args.fused:
        fused_table(args.fused, args.repeat, args.skip_trl)
        return

    gen = torch.Generator().manual_seed(0)
    shape = (args.batch, args.time, args.vocab)
    teacher = torch.randn(shape, generator=gen) * 3
    student = (torch.randn(shape, generator=gen) * 3).requires_grad_(True)
    reference = trl_loss()
    print(f"B, T, V = {shape}, float32, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'beta':>5} {'impl':>12} {'value':>12} {'rel. diff':>10} {'time (s)':>9} {'extra peak MB':>14}")
    rows = []
    for beta in (0.0, 0.5, 1.0):
        impls = {
            "TRL": lambda t, s, b=beta: reference(s, t, beta=b),
            "kl_core": lambda t, s, b=beta: kc.token_divergence(t, s, "jsd", beta=b),
        }
        results, grads = {}, {}
        for name, fn in impls.items():
            runs = [run_once(fn, teacher, student) for _ in range(args.repeat)]
            value = runs[0][0]
            results[name] = (value, min(r[1] for r in runs), min(r[2] for r in runs))
            grads[name] = student.grad.clone()
        grad_diff = float((grads["kl_core"] - grads["TRL"]).norm() / grads["TRL"].norm())
        del grads
        ref_value = results["TRL"][0]
        for name, (value, seconds, extra) in results.items():
            diff = abs(value - ref_value) / abs(ref_value)
            print(f"{beta:>5} {name:>12} {value:>12.6f} {diff:>10.1e} {seconds:>9.3f} {extra / 2**20:>14.0f}")
        (v0, t0, m0), (v1, t1, m1) = results["TRL"], results["kl_core"]
        rows.append((beta, t0 / t1, m1 / m0, abs(v1 - v0) / abs(v0), grad_diff))
    print()
    print(
        "| beta | speed vs TRL (target >= 1.0x) | extra peak memory vs TRL (target <= 0.3x) "
        "| value rel. diff | gradient rel. diff (L2) |"
    )
    print("|---|---|---|---|---|")
    for beta, speed, memory, diff, grad_diff in rows:
        print(f"| {beta} | {speed:.2f}x | {memory:.2f}x | {diff:.1e} | {grad_diff:.1e} |")


if __name__ == "__main__":
    main()
