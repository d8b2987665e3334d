"""What runs inside a cell's process: set up, dispatch to a workload, report back.

`cell_main` is the function the parent runs isolated (runner/isolate.py) for each cell;
`execute` runs a job in the current process, as one rank of its training processes, and is what
torchrun ranks and the harness-overhead benchmark call directly.
"""

from __future__ import annotations

import os
import random
import traceback
from collections.abc import Callable
from datetime import datetime, timezone

from accelbench.backends import distributed
from accelbench.backends.distributed import SINGLE, Rank
from accelbench.config.job import CellJob, Role
from accelbench.config.specs import CellSpec
from accelbench.runner.isolate import exit_with_parent, progress_reporter
from accelbench.runner.ranks import launch


def _progress(cell: CellSpec, rank: Rank) -> Callable[[int], None]:
    """Rank 0 counts training steps, timed inference batches or serving phases for the
    parent's progress bar."""
    if not rank.leader:
        return lambda n=1: None
    unit = {"train": "step", "infer": "batch", "serve": "phase"}[cell.workload]
    total = {"train": cell.train_steps, "serve": 2}.get(cell.workload)
    return progress_reporter(total, unit)


def execute(job: CellJob, rank: Rank = SINGLE) -> dict:
    """Run the job's cell in this process, as `rank` of its training processes; a cell of
    several processes run from a single one starts its ranks here and returns rank 0's result."""
    import torch

    from accelbench.backends import get_backend
    from accelbench.workloads.infer import run_infer
    from accelbench.workloads.train import run_train

    cell, config = job.cell, job.config
    if cell.nproc != rank.world_size:
        if rank.world_size > 1:
            raise RuntimeError(f"a cell of {cell.nproc} processes ran in {rank.world_size}")
        return launch_ranks(job)
    if config.threads and rank.world_size == 1:
        torch.set_num_threads(config.threads)
    random.seed(job.seed)
    torch.manual_seed(job.seed)
    backend = get_backend(cell.runtime)
    role = job.role if job.writes_reference else Role.CELL
    progress = _progress(cell, rank)
    if cell.workload == "train":
        return run_train(cell, config, backend, job.run_dir, role, progress, rank, job.seed)
    if cell.workload == "serve":
        from accelbench.serving.serve import run_serve

        return run_serve(cell, config, backend, job.run_dir, progress)
    return run_infer(cell, config, backend, job.run_dir, role, progress)


def launch_ranks(job: CellJob) -> dict:
    """The cell's `nproc` ranks, started on this node by torch's elastic launcher."""
    import torch

    cell = job.cell
    if cell.device == "cuda" and cell.nproc > torch.cuda.device_count():
        return {
            "status": "unsupported",
            "reason": f"{cell.nproc} training processes need {cell.nproc} GPUs; "
            f"this machine has {torch.cuda.device_count()}",
        }
    return launch(rank_main, job, cell.nproc, job.config.dist_timeout)


def rank_main(job: CellJob) -> dict:
    """Entry point of one rank process that launch_ranks started: join the group, run the cell.
    Exits when the cell process (its parent) is gone, e.g. killed at --cell-timeout."""
    exit_with_parent(os.getppid())
    rank = distributed.join(job.cell.device, job.config.threads, job.config.dist_timeout)
    try:
        return execute(job, rank)
    finally:
        distributed.leave()


def failure(exc: BaseException) -> dict:
    """The result of a cell that raised: `oom` or `error`, the exception's last line, and the
    three innermost frames (the cell's log has the whole traceback)."""
    from accelbench.workloads.autobatch import is_oom

    return {
        "status": "oom" if is_oom(exc) else "error",
        "reason": traceback.format_exception_only(type(exc), exc)[-1].strip(),
        "traceback": traceback.format_exc(limit=-3),
    }


def cell_main(job: CellJob) -> dict:
    """A cell in its own process: always one result dict (unless the process is killed), with
    the process's environment fingerprint; a failure's full traceback goes to the cell's log."""
    from accelbench.measure.env import fingerprint

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    what = f"{job.cell.cell_id} ({job.role.value}, repeat {job.repeat})"
    print(f"accelbench cell {what}: {job.cell.label}, {started}", flush=True)
    try:
        result = execute(job)
        result.setdefault("status", "ok")
        result.setdefault("reason", "")
    except Exception as exc:  # a failed cell is data: the matrix goes on
        traceback.print_exc()
        result = failure(exc)
    print(f"accelbench cell {job.cell.cell_id}: {result['status']} {result['reason']}".rstrip())
    result["env"] = fingerprint()
    return result
