"""Data-parallel training over torch.distributed: a rank's place, its process group, DDP.

A cell with `nproc` > 1 runs its ranks either from its own cell process (runner/ranks.py starts
them with torch's elastic launcher) or as the processes torchrun itself started
(runner/executors.py). Either way every rank runs the same code: `join` the process group (NCCL
on CUDA, gloo on CPU) with a collective timeout, train the model wrapped by `data_parallel`,
`gather` to rank 0.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    """This process's place among the training processes of a cell (one process: the default)."""

    rank: int = 0
    world_size: int = 1
    backend: str | None = None  # the process group's backend; None for a single process
    threads: int | None = None  # torch intra-op threads this rank was given

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` in rank order. A collective: every rank must call it."""
        if self.world_size == 1:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank. A collective."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE = Rank()


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def join(device: str, threads: int | None, timeout_s: float) -> Rank:
    """Join the process group the launcher's environment describes (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR/PORT). A rank gets GPU LOCAL_RANK on CUDA, and `threads` torch
    threads or an equal share of this node's cores. No collective waits longer than
    `timeout_s` for a peer: a dead rank turns into an error, not a hang."""
    local = int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
    threads = threads or max(1, available_cores() // local_world)
    torch.set_num_threads(threads)
    options: dict[str, Any] = {}
    if device == "cuda":
        torch.cuda.set_device(local)
        options["device_id"] = torch.device("cuda", local)
    backend = "nccl" if device == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s), **options)
    return Rank(dist.get_rank(), dist.get_world_size(), backend, threads)


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def data_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in DistributedDataParallel over the joined group: backward all-reduces the
    gradients (averaged over ranks) in buckets, overlapped with the backward pass. BERT's
    buffers (position and token-type ids) are constants, so they are not broadcast each step."""
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_initialized():
        raise RuntimeError("data-parallel training needs a process group; this rank joined none")
    on_cuda = next(model.parameters()).is_cuda
    ids = [torch.cuda.current_device()] if on_cuda else None
    # torch >= 2.13 names the per-forward buffer broadcast forward_sync_buffers
    params = inspect.signature(DistributedDataParallel).parameters
    sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return DistributedDataParallel(model, device_ids=ids, **{sync: False})
