"""One spawned child process per cell, with a timeout; a crash or hang becomes a status."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

from accelbench.runner.child import child_main

POLL_S = 0.2


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_isolated(payload: dict, timeout: float) -> dict:
    """Run one cell in a fresh spawned interpreter and return its result dict.

    Status is the child's own (`ok`, `error`, `oom`, `numeric_fail`, ...) or, when the child
    never answered, `timeout` (killed after `timeout` seconds) or `crashed` (died by a signal or
    exited without a result).
    """
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(send, payload, os.getpid()), name="accelbench-cell")
    proc.start()
    send.close()
    deadline = time.monotonic() + timeout
    result: dict | None = None
    try:
        while result is None:
            if recv.poll(POLL_S):
                try:
                    result = recv.recv()
                except EOFError:
                    break
            elif not proc.is_alive() and not recv.poll(0):
                break
            elif time.monotonic() > deadline:
                proc.kill()
                proc.join()
                return {
                    "status": "timeout",
                    "reason": f"cell still running after --cell-timeout {timeout:g}s; killed",
                }
        proc.join(timeout=30)
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()
    if result is not None:
        return result
    code = proc.exitcode
    if code is not None and code < 0:
        return {"status": "crashed", "reason": f"cell process killed by {_signal_name(code)}"}
    return {"status": "crashed", "reason": f"cell process exited with code {code} and no result"}
