"""Run a function in a fresh interpreter with a timeout; a crash or a hang becomes a status.

The child is `python -m accelbench.runner.isolate`, not a multiprocessing spawn: it never
re-imports the caller's `__main__`, so `accelbench.run(...)` works from a script without an
`if __name__ == "__main__":` guard, and from a notebook. The function and its arguments travel
pickled on the child's stdin (functions by module and name), the result comes back pickled on a
pipe of its own, and everything the child prints goes to `log` (when given).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelbench.runner.progress import Progress, Reporter

OnProgress = Callable[[Progress], None]
POLL_S = 0.2
PARENT_WATCH_S = 1.0


@dataclass(frozen=True)
class Outcome:
    """What became of a function run in a child: its value when it returned (status `ok`)."""

    status: str  # ok | error (raised) | timeout | crashed (killed, or exited without a result)
    value: Any = None
    reason: str = ""
    traceback: str | None = None


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _child_env() -> dict[str, str]:
    """The child imports what this process imports: same interpreter, same sys.path."""
    path = os.pathsep.join(p for p in sys.path if p)
    return {**os.environ, "PYTHONPATH": path}


def _read_until_eof(
    fd: int,
    deadline: float,
    clock: Callable[[], float],
    progress_fd: int = -1,
    on_progress: OnProgress | None = None,
) -> bytes | None:
    """Everything the child writes to `fd` until it closes it; None once `clock` passes the
    deadline. Its progress reports (on `progress_fd`) go to `on_progress` as they come."""
    chunks, pending = [], b""
    watched = [fd] + ([progress_fd] if progress_fd >= 0 else [])
    while True:
        if clock() > deadline:
            return None
        ready, _, _ = select.select(watched, [], [], POLL_S)
        if progress_fd in ready:
            chunk = os.read(progress_fd, 1 << 16)
            if not chunk:
                watched.remove(progress_fd)
            *lines, pending = (pending + chunk).split(b"\n")
            if lines and on_progress is not None:
                on_progress(Progress.decode(lines[-1].decode()))
        if fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _kill(proc: subprocess.Popen) -> None:
    """The child and whatever it started in its session (e.g. data-parallel ranks)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_isolated(
    fn: Callable[..., Any],
    args: tuple,
    timeout: float,
    log: Path | None = None,
    on_progress: OnProgress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """`fn(*args)` in a fresh interpreter, killed after `timeout` seconds of `clock`. With
    `on_progress`, what the child reports through `progress_reporter` reaches it while the
    child runs."""
    read_fd, write_fd = os.pipe()
    progress_read, progress_fd = os.pipe() if on_progress is not None else (-1, -1)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log is not None else None  # noqa: SIM115  (closed below)
    command = [sys.executable, "-m", "accelbench.runner.isolate"]
    command += [str(write_fd), str(progress_fd), str(os.getpid())]
    try:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            pass_fds=[fd for fd in (write_fd, progress_fd) if fd >= 0],
            env=_child_env(),
            start_new_session=True,  # one process group: a timeout kills the cell's ranks too
        )
    finally:
        os.close(write_fd)
        if progress_fd >= 0:
            os.close(progress_fd)
        if out is not None:
            out.close()
    try:
        assert proc.stdin is not None
        pickle.dump((fn, args), proc.stdin)
        proc.stdin.close()
        deadline = clock() + timeout
        data = _read_until_eof(read_fd, deadline, clock, progress_read, on_progress)
        if data is None:
            _kill(proc)
            return Outcome("timeout", reason=f"still running after {timeout:g}s; killed")
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill(proc)
    except BaseException:
        _kill(proc)
        raise
    finally:
        os.close(read_fd)
        if progress_read >= 0:
            os.close(progress_read)
    if data:
        return pickle.loads(data)
    code = proc.returncode
    if code is not None and code < 0:
        return Outcome("crashed", reason=f"process killed by {_signal_name(code)}")
    return Outcome("crashed", reason=f"process exited with code {code} and no result")


def exit_with_parent(parent: int, interval_s: float = PARENT_WATCH_S) -> None:
    """End this process when the process that started it is gone (killed, crashed)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def progress_reporter(total: int | None, unit: str) -> Reporter:
    """Counts this process's units of work (steps, batches) for the parent's progress bar; a
    mere counter where the parent does not listen (or outside an isolated child)."""
    return Reporter(_PROGRESS_FD, total, unit)


_PROGRESS_FD: int | None = None


def _child(result_fd: int, progress_fd: int, parent: int) -> None:
    global _PROGRESS_FD
    os.set_inheritable(result_fd, False)  # grandchildren must not hold the result pipe open
    if progress_fd >= 0:
        os.set_inheritable(progress_fd, False)
        _PROGRESS_FD = progress_fd
    exit_with_parent(parent)
    fn, args = pickle.load(sys.stdin.buffer)
    try:
        outcome = Outcome("ok", fn(*args))
    except Exception as exc:
        traceback.print_exc()
        outcome = Outcome(
            "error",
            reason=traceback.format_exception_only(type(exc), exc)[-1].strip(),
            traceback=traceback.format_exc(limit=8),
        )
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(result_fd, "wb") as fh:
        pickle.dump(outcome, fh)
    _exit_now()


def _exit_now() -> None:
    """End the child once its result is out: its exit handlers run (logging's flush, compile
    worker pools), the interpreter's teardown does not. Freeing torch's and transformers'
    modules one by one takes about a second, which the parent would wait out before the next
    cell; the kernel frees the process's memory at once. C libraries' buffered output (stdio
    on the log file) is flushed, as exit() would."""
    import atexit
    import ctypes

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)
    os._exit(0)


if __name__ == "__main__":
    # run from the module's importable name, so that Outcome pickles as
    # accelbench.runner.isolate.Outcome rather than __main__.Outcome
    from accelbench.runner.isolate import _child as child

    child(*(int(a) for a in sys.argv[1:4]))
