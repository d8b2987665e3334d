"""Test-only runtimes, installed as `accelbench.runtimes` entry points (conftest.plugin_runtimes).

They wrap the real eager backend and fail the way real runtimes fail: a process killed by a
signal, a CUDA out-of-memory error above a batch size, a data-parallel rank that fails or
never joins its peers, and a session that hangs (serving LoadGen, or in the timed loop).
"""

from __future__ import annotations

import os
import signal
import time

import torch

from accelbench.backends.eager import EagerBackend, TorchInfer

OOM_ABOVE = 4


class CrashBackend(EagerBackend):
    name = "crash"

    def prepare_infer(self, model, cell, example):
        os.kill(os.getpid(), signal.SIGKILL)


class OomInfer(TorchInfer):
    def logits(self, batch):
        if batch.input_ids.shape[0] > OOM_ABOVE:
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate for batch {batch.input_ids.shape[0]}"
            )
        return super().logits(batch)


class OomBackend(EagerBackend):
    name = "oom"

    def prepare_infer(self, model, cell, example):
        return OomInfer(model, cell.device, self.mode(cell))

    @staticmethod
    def mode(cell):
        from accelbench.backends.precision import MODES

        return MODES[cell.precision]


def _rank() -> int | None:
    """This process's rank in a data-parallel cell, None in a 1-process cell."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else None


class RankFailBackend(EagerBackend):
    """Rank 1 of a data-parallel cell raises while rank 0 waits for it in DDP's first
    collective."""

    name = "rankfail"

    def prepare_train(self, model, cell, optimizer, scheduler):
        if _rank() == 1:
            raise RuntimeError("injected failure on rank 1")
        return super().prepare_train(model, cell, optimizer, scheduler)


class RankHangBackend(EagerBackend):
    """Rank 1 of a data-parallel cell never joins DDP's first collective. Every rank writes its
    pid to $ACCELBENCH_TEST_PID_DIR first, so a test can check that none outlives its cell."""

    name = "rankhang"

    def prepare_train(self, model, cell, optimizer, scheduler):
        rank = _rank()
        if rank is not None:
            pid_dir = os.environ["ACCELBENCH_TEST_PID_DIR"]
            with open(os.path.join(pid_dir, f"rank{rank}.pid"), "w") as fh:
                fh.write(str(os.getpid()))
            if rank == 1:
                time.sleep(3600)
        return super().prepare_train(model, cell, optimizer, scheduler)


class NoServeBackend(EagerBackend):
    """A runtime without a serving path (say, an engine built for one fixed batch size)."""

    name = "noserve"
    serves = False


class HangInfer(TorchInfer):
    """Answers every call until one comes from `function` of a module named `*module`; that
    one writes the process's pid to $ACCELBENCH_TEST_PID_DIR/`pid_name` and hangs."""

    function, module, pid_name = "", "", ""

    def logits(self, batch):
        import sys

        frame = sys._getframe(1)
        while frame is not None and not (
            frame.f_code.co_name == self.function
            and frame.f_globals["__name__"].endswith(self.module)
        ):
            frame = frame.f_back
        if frame is not None:
            pid_file = os.path.join(os.environ["ACCELBENCH_TEST_PID_DIR"], self.pid_name)
            with open(pid_file, "w") as fh:
                fh.write(str(os.getpid()))
            time.sleep(3600)
        return super().logits(batch)


class ServeHangInfer(HangInfer):
    """Answers the serve workload's warm-up, hangs when the SUT answers LoadGen's queries."""

    function, module, pid_name = "_run", ".sut", "serve-hang.pid"


class TimedHangInfer(HangInfer):
    """Loads, warms up and scores like eager, hangs in the timed loop."""

    function, module, pid_name = "timed_loop", ".timing", "timed-hang.pid"


class ServeHangBackend(EagerBackend):
    name = "servehang"

    def prepare_infer(self, model, cell, example):
        return ServeHangInfer(model, cell.device, OomBackend.mode(cell))


class TimedHangBackend(EagerBackend):
    name = "timedhang"

    def prepare_infer(self, model, cell, example):
        return TimedHangInfer(model, cell.device, OomBackend.mode(cell))
