"""A data-parallel cell's ranks, started on this node from the cell's process by torch's elastic
launcher (the engine torchrun runs: single node, c10d rendezvous on a free localhost port, no
restarts); their failures turned into one cell result."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable


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
