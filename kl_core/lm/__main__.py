"""``python -m kl_core.lm``: ``kl-lab distill`` as one process or under torchrun (data parallel).

    python3 -m kl_core.lm --language cities --methods reverse_kl --steps 40 --shards 2 --out students/
    OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 -m kl_core.lm --language cities --methods reverse_kl \\
        --steps 40 --shards 2 --out students/

The flags are ``kl-lab distill``'s (``--teacher DIR --student DIR --prompts FILE`` for your own models).
Under torchrun (``WORLD_SIZE`` > 1) the process group is started first (gloo on the CPU, nccl on CUDA;
:mod:`kl_core.lm.parallel`); ``--shards`` must be a multiple of the number of processes. Rank 0
evaluates, prints and saves; the other ranks print nothing but an error. Both commands above train the
same student (``tests/test_lm_ddp.py``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from kl_core.cli import run_command
    from kl_core.cli_args import Parser
    from kl_core.distill_cli import add_commands

    parser = Parser(prog="python -m kl_core.lm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    handlers = add_commands(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(["distill", *argv])
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    import torch.distributed as dist

    from kl_core.lm.parallel import init_from_env

    try:
        rank, _, device = init_from_env(args.device)
    except (RuntimeError, ValueError) as err:
        print(f"kl-lab: error: cannot start the process group: {str(err).splitlines()[0][:200]}", file=sys.stderr)
        return 2
    if device.startswith("cuda") and args.device == "auto":
        args.device = device
    try:
        if rank == 0:
            code = run_command(handlers["distill"], args)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                code = run_command(handlers["distill"], args)
    finally:
        if dist.is_initialized():
            dist.barrier()  # every rank is done (rank 0 evaluated and saved) before the group goes away
            dist.destroy_process_group()
    if rank != 0:
        # A rank other than 0 has nothing left to write (rank 0 evaluates and saves), so it leaves without the
        # interpreter's teardown: there gloo's helper threads could still be joinable when C++'s statics are
        # destroyed, which calls std::terminate (SIGABRT) after the work is done, about one run in ten on a
        # loaded machine, and torchrun then reports the whole run failed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
