"""Make the language-model lab's shipped artefacts in assets/lm/ (fixed seeds, CPU, reproducible).

    python scripts/make_lm_assets.py               # neural teachers + precomputed comparisons
    python scripts/make_lm_assets.py --only comparisons

* ``neural_<language>.pt`` / ``.json``: a TinyLM trained by maximum likelihood on the exact teacher's
  samples (``kl_core.lm.neural.train_neural_teacher``), with its exact KLs to the synthetic teacher.
* ``comparisons.json``: the comparisons the LM lab page shows at once (it never trains on load):
  every language with the default student and methods, the neural teachers, and a student that
  remembers (context 4), each trained by ``kl_core.lm.showcase.run_comparison``.

Runs on the CPU with one torch thread: the models are tiny, and on a shared machine extra threads
only add contention (timings in the files are measured this way). Takes a few minutes.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kl_core.lm.neural import ASSETS, neural_config, save_neural_teacher, train_neural_teacher  # noqa: E402
from kl_core.lm.showcase import Settings, run_comparison, save_comparisons  # noqa: E402

NEURAL_LANGUAGES = ("cities", "arithmetic")
NEURAL_WIDTH = 48
NEURAL_STEPS = 1200
NEURAL_SEED = 0

COMPARISONS = (
    Settings("cities"),
    Settings("arithmetic"),
    Settings("stories"),
    Settings("cities", teacher="neural"),
    Settings("arithmetic", teacher="neural"),
    Settings("cities", context=4),  # a student that sees the whole sequence: it can keep one mode per answer
)


def make_neural(out: Path) -> None:
    for name in NEURAL_LANGUAGES:
        t0 = time.perf_counter()
        model, info = train_neural_teacher(name, neural_config(name, n_embd=NEURAL_WIDTH), NEURAL_STEPS, NEURAL_SEED)
        path = save_neural_teacher(model, info, out)
        print(
            f"{name}: {info.parameters} weights, {path.stat().st_size / 1e3:.0f} kB, KL(T||N) {info.forward_kl:.4f}, "
            f"KL(N||T) {info.reverse_kl:.4f}, validity {info.validity:.3f} ({time.perf_counter() - t0:.0f} s)"
        )


def make_comparisons(out: Path) -> None:
    note = (
        f"precomputed by scripts/make_lm_assets.py on {platform.machine()} CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    done = []
    for settings in COMPARISONS:
        t0 = time.perf_counter()
        comparison = run_comparison(settings, device="cpu", note=note)
        done.append(comparison)
        rows = ", ".join(
            f"{m}: valid {r.final('validity'):.3f} cover {r.final('mode_coverage'):.3f} "
            f"KL(T||S) {r.final('forward_kl'):.3f} KL(S||T) {r.final('reverse_kl'):.3f} "
            f"{r.train_seconds:.1f} s {r.tokens_per_s:.0f} tok/s"
            for m, r in comparison.methods.items()
        )
        name = f"{settings.language}/{settings.teacher}/context {settings.context}"
        print(f"{name}: {rows} ({time.perf_counter() - t0:.0f} s)")
    save_comparisons(done, out / "comparisons.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("neural", "comparisons"), help="make only one kind of artefact")
    parser.add_argument("--out", type=Path, default=ASSETS, help="output folder (default assets/lm)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "neural"):
        make_neural(args.out)
    if args.only in (None, "comparisons"):
        make_comparisons(args.out)  # after the neural teachers: two comparisons use them


if __name__ == "__main__":
    main()
