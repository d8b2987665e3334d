"""Test-only runtimes, loaded into cell processes through ACCELBENCH_EXTRA_RUNTIMES.

They wrap the real eager backend and fail the way real runtimes fail: a process killed by a
signal, and a CUDA out-of-memory error above a batch size.
"""

from __future__ import annotations

import os
import signal

import torch

from accelbench.backends.torch_eager import EagerBackend, TorchInfer

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
        from accelbench.precision import MODES

        return MODES[cell.precision]
