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

``--fused BT,H,V`` (repeatable; ``--fused-grid`` for B·T in {1024, 8192} x V in {32768, 128256} at H = 1024)
instead compares, from last hidden states (B·T, H) and an output projection (V, H) with a bias, three ways to get
the loss (generalized JSD, beta = 0.5) and the gradients of the student's hidden states, weight and bias: TRL
(``h @ W.T + b`` then ``generalized_jsd_loss``), the unfused ``kc.token_divergence`` on the same materialised
logits, and ``kc.fused_token_divergence`` (never builds them). ``--teacher logits`` (default): the teacher's
logits (B·T, V) are an input, allocated before the measurement. ``--teacher hidden``: the teacher is given by its
hidden states (B·T, H) and projection (V, H); TRL and the unfused loss build its logits (under no_grad) inside
the measured call, the fused loss projects them chunk by chunk (``teacher_hidden``/``teacher_weight``). Each
(config, implementation) runs in a fresh subprocess, so the peaks do not mix. ``--chunk N`` (repeatable) adds
the fused loss with ``chunk_size=N`` positions per chunk (row ``fused@N``; the default is ~2M logits per chunk).
Before each, the process's total need is estimated (inputs + gradients + the implementation's (B·T, V)
temporaries: 2 for the unfused loss, 16 for TRL, measured at small sizes); a run that would need more than
``--max-gb`` (default 12) or more than the machine's available memory is not run, and the table says how much it
would have needed.

    python bench/bench_tokens.py --fused-grid [--teacher hidden] [--repeat 1]
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


FUSED_GRID = [f"{bt},1024,{v}" for bt in (1024, 8192) for v in (32768, 128256)]
IMPLS = ("TRL", "unfused", "fused")
_FLOAT = 4  # bytes
_RUNTIME = 400 * 2**20  # python, torch and TRL loaded, before any tensor


def need_bytes(bt: int, hidden: int, vocab: int, impl: str, teacher: str) -> int:
    """Estimated peak resident bytes of one child run: runtime + inputs + gradients + the impl's temporaries."""
    logits, weight, states, bias = bt * vocab * _FLOAT, vocab * hidden * _FLOAT, bt * hidden * _FLOAT, vocab * _FLOAT
    inputs = states + weight + bias + (logits if teacher == "logits" else states + weight)
    grads = states + weight + bias  # every implementation allocates these
    built_teacher = logits if teacher == "hidden" else 0  # TRL and unfused build the teacher's logits
    if impl.startswith("fused"):
        rows = int(impl.split("@")[1]) if "@" in impl else max(1, (1 << 21) // vocab)
        temps = 12 * rows * vocab * _FLOAT  # a dozen (chunk, V) tensors (default chunk: ~2M logits)
    elif impl == "unfused":
        temps = 2 * logits + built_teacher  # student logits + their gradient buffer (+ the teacher's)
    else:
        temps = 16 * logits + built_teacher  # measured: 2030 MB over the gradients at (2048, 16384)
    return _RUNTIME + inputs + grads + temps


def _available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable not in /proc/meminfo")


def _fused_child(bt: int, hidden: int, vocab: int, impl: str, teacher_mode: str, repeat: int) -> None:
    """One (config, implementation) in this process: prints 'seconds extra_bytes value'."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(bt, hidden, generator=gen).requires_grad_(True)
    w = (torch.randn(vocab, hidden, generator=gen) / hidden**0.5).requires_grad_(True)
    b = torch.zeros(vocab).requires_grad_(True)
    if teacher_mode == "logits":
        teacher, t_hidden, t_weight = torch.randn(bt, vocab, generator=gen) * 2, None, None
    else:  # teacher logits h_t @ W_t.T of the same scale (std 2), built inside the measured call
        teacher = None
        t_hidden = torch.randn(bt, hidden, generator=gen)
        t_weight = torch.randn(vocab, hidden, generator=gen) * (2 / hidden**0.5)
    reference = trl_loss() if impl == "TRL" else None
    chunk = int(impl.split("@")[1]) if impl.startswith("fused@") else None

    def loss():
        if impl.startswith("fused"):
            if teacher is not None:
                return kc.fused_token_divergence(
                    h, w, b, teacher_logits=teacher, kind="jsd", beta=0.5, chunk_size=chunk
                )
            return kc.fused_token_divergence(
                h, w, b, teacher_hidden=t_hidden, teacher_weight=t_weight, kind="jsd", beta=0.5, chunk_size=chunk
            )
        if teacher is None:
            with torch.no_grad():
                t_logits = t_hidden @ t_weight.T
        else:
            t_logits = teacher
        logits = torch.addmm(b, h, w.T)
        if impl == "TRL":
            return reference(logits, t_logits, beta=0.5)
        return kc.token_divergence(t_logits, logits, "jsd", beta=0.5)

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
    print(f"{best_t} {best_m} {value} {_status('VmHWM')}")


def fused_table(
    configs: list[str], repeat: int, skip_trl: bool, teacher: str, max_gb: float, chunks: list[int]
) -> None:
    import subprocess
    import sys

    impls = [i for i in IMPLS if not (skip_trl and i == "TRL")] + [f"fused@{c}" for c in chunks]
    print(
        f"float32, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; generalized JSD beta = 0.5; "
        f"teacher given as {teacher}; best of {repeat} rounds, a fresh process per run; limit {max_gb:g} GB per run"
    )
    print(
        "| B·T | H | V | teacher | impl | loss | time (s) | extra peak MB | beyond the gradients MB "
        "| peak GB (estimate) | speed vs unfused | memory vs unfused |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        bt, hidden, vocab = (int(x) for x in config.split(","))
        grads = (bt * hidden + vocab * hidden + vocab) * _FLOAT
        need = {impl: need_bytes(bt, hidden, vocab, impl, teacher) for impl in impls}
        runs: dict[str, list] = {impl: [] for impl in impls}
        skipped: dict[str, str] = {}
        for _ in range(repeat):  # rounds: the implementations alternate, so a slow stretch hits them all
            for impl in impls:
                if impl in skipped:
                    continue
                if need[impl] > max_gb * 1e9 or need[impl] > _available() - 2**30:
                    why = "over the limit" if need[impl] > max_gb * 1e9 else "more than was free"
                    skipped[impl] = f"not run: needs ~{need[impl] / 1e9:.1f} GB ({why})"
                    continue
                cmd = [sys.executable, __file__, "--child", f"{bt},{hidden},{vocab},{impl},{teacher}"]
                out = subprocess.run(cmd + ["--repeat", "1"], capture_output=True, text=True)
                if out.returncode != 0:
                    skipped[impl] = f"failed: {out.stderr.strip()[-80:]}"
                    continue
                runs[impl].append([float(x) for x in out.stdout.split()[-4:]])
        res, rows = {}, []
        for impl in impls:
            head = f"| {bt} | {hidden} | {vocab} | {teacher} | {impl} |"
            if impl in skipped and not runs[impl]:
                rows.append(f"{head} {skipped[impl]} | | | | | | |")
                continue
            t, m = min(r[0] for r in runs[impl]), min(r[1] for r in runs[impl])
            v, peak = runs[impl][0][2], max(r[3] for r in runs[impl])
            res[impl] = (t, m)
            rows.append((head, v, t, m, peak, need[impl]))
        base = res.get("unfused")
        for row in rows:
            if isinstance(row, str):
                print(row)
                continue
            head, v, t, m, peak, need = row
            speed = f"{base[0] / t:.2f}x" if base else "-"
            memory = f"{m / base[1]:.2f}x" if base and base[1] > 0 else "-"
            print(
                f"{head} {v:.6f} | {t:.2f} | {m / 2**20:.0f} | {(m - grads) / 2**20:.0f} "
                f"| {peak / 1e9:.2f} ({need / 1e9:.2f}) | {speed} | {memory} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused", action="append", default=[], metavar="BT,H,V")
    parser.add_argument("--fused-grid", action="store_true", help="--fused for each of " + " ".join(FUSED_GRID))
    parser.add_argument("--teacher", choices=("logits", "hidden"), default="logits")
    parser.add_argument("--max-gb", type=float, default=12.0, help="skip runs estimated to need more")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument(
        "--chunk", type=int, action="append", default=[], help="also the fused loss with chunk_size=N (rows)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--time", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32768)
    args = parser.parse_args()
    if args.child:
        bt, hidden, vocab, impl, teacher = args.child.split(",")
        _fused_child(int(bt), int(hidden), int(vocab), impl, teacher, args.repeat)
        return
    if args.fused or args.fused_grid:
        configs = args.fused + (FUSED_GRID if args.fused_grid else [])
        fused_table(configs, args.repeat, args.skip_trl, args.teacher, args.max_gb, args.chunk)
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
