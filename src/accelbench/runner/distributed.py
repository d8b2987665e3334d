"""Data-parallel training over torch.distributed: a cell's ranks and what they share.

A cell with `nproc` > 1 runs its ranks either from its own cell process, through torch's
elastic launcher (`launch`: the engine torchrun runs, single node, c10d rendezvous on a free
localhost port, no restarts), or as the processes torchrun itself started
(runner/executors.py).
Either way every rank runs the same code: `join` the process group (NCCL on CUDA, gloo on CPU)
with a collective timeout, train the model wrapped by `data_parallel`, `gather` to rank 0.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import uuid
from collections.abc import Callable
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


def launch(entrypoint: Callable[[dict], dict], payload: dict, nproc: int, timeout_s: float) -> dict:
    """Run `entrypoint(payload)` in `nproc` rank processes on this node and return rank 0's
    result, or a failed result naming the rank(s) that failed and why."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with tempfile.TemporaryDirectory(prefix="accelbench-ranks-") as logs:
        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=nproc,
            run_id=uuid.uuid4().hex,
            rdzv_backend="c10d",
            rdzv_endpoint="localhost:0",  # torchrun --standalone: a free port
            rdzv_configs={"join_timeout": max(1, int(timeout_s))},
            max_restarts=0,
            start_method="spawn",
            logs_specs=DefaultLogsSpecs(log_dir=logs),
        )
        try:
            return elastic_launch(config, entrypoint)(payload)[0]
        except ChildFailedError as exc:
            return failed_ranks(exc.failures)


def failed_ranks(failures: dict) -> dict:
    """A cell result from the elastic launcher's failures (global rank -> ProcessFailure):
    `crashed` when a rank died by a signal, else `error` (or `oom`), every failed rank named
    in the one-line reason, earliest first."""
    parts, trace, killed, oom = [], None, False, False
    for rank, failure in sorted(failures.items(), key=lambda kv: (kv[1].timestamp, kv[0])):
        message = failure.message
        if isinstance(message, dict):
            trace = trace or message.get("extraInfo", {}).get("py_callstack")
            message = message.get("message", "")
        if failure.exitcode < 0:
            killed = True
            text = f"killed by {failure.signal_name()}"
        else:
            lines = str(message).strip().splitlines()
            text = lines[-1] if lines else f"exited with code {failure.exitcode}"
            oom |= "out of memory" in text.lower()
        parts.append(f"rank {rank}: {text}")
    status = "crashed" if killed else "oom" if oom else "error"
    return {"status": status, "reason": "; ".join(parts), "traceback": trace}
