"""How a planned cell gets run: each in its own process (the default), or in this process as
one of the ranks torchrun started. The matrix loop (runner/matrix.py) is the same for both."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from accelbench.config.job import CellJob
from accelbench.config.specs import RunConfig
from accelbench.errors import UserError

if TYPE_CHECKING:
    from accelbench.backends.distributed import Rank


Echo = Callable[[str], None]


class CellAborted(Exception):
    """A cell failed in a way that ends the run (a torchrun rank that raised); `result` is its
    record's result, to be stored before the run ends."""

    def __init__(self, result: dict) -> None:
        super().__init__(result["reason"])
        self.result = result


class Executor(Protocol):
    writes: bool  # this process stores the records and reports progress

    def run(self, job: CellJob) -> dict:
        """The cell's result dict (status, reason, metrics, ...); raises CellAborted to end."""


Attempt = Callable[[CellJob, Path], dict]  # a cell at one batch size, its output to a log


def with_oom_backoff(job: CellJob, attempt: Attempt, echo: Echo) -> dict:
    """`attempt(job, log)`, and with --oom-backoff again at half the batch after each
    out-of-memory until it fits; every attempt writes to the cell's log, after a marker line."""
    cell, config = job.cell, job.config
    batch, tried = cell.batch_size, []
    while True:
        why = (
            f"out of memory at batch {tried[-1]}: again at batch {batch}"
            if tried
            else "resumed: the attempt above ended before its result was recorded"
        )
        mark_log(job.log_path, why)
        result = attempt(replace(job, cell=replace(cell, batch_size=batch)), job.log_path)
        tried.append(batch)
        retry = config.oom_backoff and not cell.auto_batch and batch > 1  # auto searches
        if result.get("status") != "oom" or not retry:
            break
        batch //= 2
        echo(f"  out of memory at batch {tried[-1]}: retrying at batch {batch}")
    if len(tried) > 1:
        result.setdefault("metrics", {})["batch_size_ran"] = batch
        result.setdefault("details", {})["oom_backoff_tried"] = tried
    result["log"] = str(job.log_path.relative_to(job.run_dir))
    return result


class _Attempts:
    """An executor that runs this process's cells one attempt at a time (`attempt`), with the
    OOM backoff around it."""

    writes = True

    def __init__(self, echo: Echo) -> None:
        self.echo = echo

    def run(self, job: CellJob) -> dict:
        return with_oom_backoff(job, self.attempt, self.echo)

    @staticmethod
    def attempt(job: CellJob, log: Path) -> dict:
        raise NotImplementedError


class Isolated(_Attempts):
    """Each cell in a fresh process (runner/isolate.py) with --cell-timeout; its output goes to
    RUN_DIR/logs/<cell_id>.log, its progress to a bar on the terminal (runner/progress.py).
    With --oom-backoff an out-of-memory halves the batch and runs the cell again."""

    @staticmethod
    def attempt(job: CellJob, log: Path) -> dict:
        from accelbench.runner.child import cell_main
        from accelbench.runner.isolate import run_isolated
        from accelbench.runner.progress import Bar

        timeout = job.config.cell_timeout
        bar = Bar()  # the cell's steps or batches on a terminal, under its announcement
        try:
            outcome = run_isolated(cell_main, (job,), timeout, log, bar if bar.shown else None)
        finally:
            bar.close()
        if outcome.status == "ok":
            return outcome.value
        if outcome.status == "timeout":
            why = f"cell still running after --cell-timeout {timeout:g}s; killed"
            return {"status": "timeout", "reason": why}
        return {"status": outcome.status, "reason": f"cell {outcome.reason}"}


class InProcess(_Attempts):
    """--in-process: every cell in this process, one after the other, its output on this
    process's console (a debugger, a profiler, quick checks). No --cell-timeout and no crash
    containment, and what a cell leaves behind (imports, caches, allocator pools) is there for
    the next; the records say so (`details.in_process`) and so does the report."""

    @staticmethod
    def attempt(job: CellJob, log: Path) -> dict:
        import gc

        from accelbench.runner.child import cell_main

        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(
                f"accelbench cell {job.cell.cell_id}: ran in-process, its output on the console\n"
            )
        try:
            result = cell_main(job)
        finally:
            gc.collect()  # the cell's model and optimizer go before the next cell is measured
            _release_cuda_cache()
        result.setdefault("details", {})["in_process"] = True
        return result


def _release_cuda_cache() -> None:
    """Hand the CUDA caching allocator's free blocks back, so that the next cell's memory
    figures are its own (nothing to do where CUDA was never initialised)."""
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def mark_log(log: Path, why: str) -> None:
    """A line between an earlier attempt's output in a cell's log and the next attempt's."""
    if log.is_file() and log.stat().st_size:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with log.open("a") as fh:
            fh.write(f"\n===== accelbench {stamp}: {why} =====\n\n")


class AsRank:
    """This process is one of the ranks torchrun started: every rank runs every cell here
    (torchrun is the isolation) and rank 0 alone writes. A cell that raises ends the job, as a
    failed torchrun worker does; `--resume` goes on from there."""

    def __init__(self, rank: Rank) -> None:
        self.rank = rank
        self.writes = rank.leader

    def run(self, job: CellJob) -> dict:
        from accelbench.runner.child import execute, failure

        try:
            return {"status": "ok", "reason": "", **execute(job, self.rank)}
        except Exception as exc:
            result = failure(exc)
            result["reason"] = f"rank {self.rank.rank}: {result['reason']}"
            raise CellAborted(result) from exc


def torchrun_world() -> int | None:
    """The world size when this process is one of several ranks torchrun started."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world if world > 1 and "RANK" in os.environ else None


def torchrun_rank() -> int | None:
    """This process's global rank when torchrun started it among several, else None."""
    return int(os.environ["RANK"]) if torchrun_world() else None


def torchrun_config(config: RunConfig, world: int) -> RunConfig:
    """The run torchrun's `world` ranks can run: train cells of `world` processes, one device."""
    if config.workloads != ("train",):
        raise UserError(
            f"under torchrun (WORLD_SIZE={world}) only training runs distributed: "
            "give --workloads train"
        )
    if len(config.devices) != 1:
        raise UserError("under torchrun give one device (--devices cuda or --devices cpu)")
    if config.nprocs not in ((1,), (world,)):
        raise UserError(
            f"under torchrun the processes are torchrun's (WORLD_SIZE={world}): drop --nproc"
        )
    return replace(config, nprocs=(world,))
