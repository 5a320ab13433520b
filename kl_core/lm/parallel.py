"""Data parallelism for the distillation loops: ranks, sample streams, gradient averaging (torch.distributed).

A run's global batch is drawn as ``shards`` independent streams of ``batch_size / shards`` prompts
each. Stream ``s`` has its own ``torch.Generator``, seeded from ``(seed, s)`` alone (``seed`` itself when
``shards == 1``, so the one-stream run is the plain single-process one). It draws the stream's prompts,
its samples (teacher or student: on-policy sampling happens inside the rank that owns the stream) and
its coins. With ``W`` processes (``shards % W == 0``) rank ``r`` owns streams ``r*S/W .. (r+1)*S/W - 1``:
the union of the ranks' samples is the one-process run's global batch, whatever ``W``.

Each rank back-propagates ``loss_s / shards`` for its streams; the gradients are then summed over the
ranks (``all_reduce``): the gradient of the global batch's mean loss, as in one process (to float
rounding). Every rank holds the same parameters and takes the same Adam step. Evaluation runs on
rank 0; its decision to go on is broadcast.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) :func:`init_from_env` starts the process
group: gloo on the CPU, nccl on CUDA (each rank on GPU ``LOCAL_RANK``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["rank_and_size", "init_from_env", "stream_generators", "sum_gradients", "all_sum", "broadcast_object"]


def rank_and_size() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside an initialised process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: str = "auto") -> tuple[int, int, str]:
    """Start the process group when launched by torchrun (``WORLD_SIZE`` > 1); returns (rank, size, device).

    The device "auto" becomes ``cuda:LOCAL_RANK`` when CUDA is present (backend nccl), else "cpu" (gloo).
    """
    import torch.distributed as dist

    size = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = (torch.cuda.is_available() and device in ("auto", "cuda")) or device.startswith("cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda and size > 1:
        torch.cuda.set_device(local)  # before nccl starts: each rank on its own GPU
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank, size = rank_and_size()
    if use_cuda:
        return rank, size, f"cuda:{local}" if size > 1 or device in ("auto", "cuda") else device
    return rank, size, "cpu" if device == "auto" else device


def stream_seed(seed: int, stream: int, shards: int) -> int:
    """The seed of sample stream ``stream`` of ``shards`` (module docstring)."""
    if shards == 1:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, np.uint64)[0] >> 1)


def stream_generators(seed: int, shards: int, device: torch.device) -> tuple[list[torch.Generator], int]:
    """This rank's generators (one per owned stream) and the number of prompts per stream.

    ValueError when ``shards`` is not a multiple of the world size.
    """
    rank, size = rank_and_size()
    if not (isinstance(shards, int) and shards >= 1):
        raise ValueError(f"shards must be an integer >= 1, got {shards!r}")
    if shards % size:
        raise ValueError(f"shards ({shards}) must be a multiple of the number of processes ({size})")
    per_rank = shards // size
    owned = range(rank * per_rank, (rank + 1) * per_rank)
    return [torch.Generator(device=device).manual_seed(stream_seed(seed, s, shards)) for s in owned], per_rank


def sum_gradients(params: Sequence[Tensor]) -> None:
    """Sum every parameter's gradient over the ranks (missing gradients count as zero); no-op in one process."""
    import torch.distributed as dist

    _, size = rank_and_size()
    if size == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    at = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[at : at + n].view_as(p))
        at += n


def all_sum(value: float, device: torch.device) -> float:
    """``value`` summed over the ranks (the value itself in one process)."""
    import torch.distributed as dist

    _, size = rank_and_size()
    if size == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (the object itself in one process)."""
    import torch.distributed as dist

    _, size = rank_and_size()
    if size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
