"""What a runtime provides. Workloads talk to these protocols only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from accelbench.config.specs import CellSpec
from accelbench.data.encode import Batch


@dataclass(frozen=True)
class Capability:
    ok: bool
    reason: str = ""


class InferSession(Protocol):
    # calls of every distinct input shape before a timed loop: 1, or 3 where CUDA graphs are
    # recorded (cudagraph trees warm a shape up on its first call, record on the second and
    # replay from the third)
    warm_calls: int

    @property
    def compiling_calls(self) -> int:
        """Calls so far during which the runtime compiled (0 for runtimes that never do)."""

    def logits(self, batch: Batch) -> torch.Tensor:
        """Token logits (B, L, labels) for a batch already on the cell's device; may be async."""

    def device_memory(self) -> dict:
        """Device memory figures of what this session ran (CUDA), each with its source."""

    def details(self) -> dict:
        """What this session really ran (flags, providers, export facts) for the record."""


class TrainSession(Protocol):
    @property
    def compiling_calls(self) -> int: ...

    def warm_shapes(self, examples: Sequence[Batch]) -> None:
        """Called before the first step with one micro-batch of every distinct signature the
        run will step over: whatever a new shape costs (compilation) happens here, untimed,
        without changing the weights or the optimizer state."""

    def step(self, batches: Sequence[Batch]) -> torch.Tensor:
        """One optimizer step over micro-batches whose gradients accumulate; returns the
        detached mean loss without syncing the device."""

    def evaluator(self) -> InferSession:
        """An inference session over the model as trained, in the cell's precision."""

    def device_memory(self) -> dict: ...

    def details(self) -> dict: ...


class Backend(Protocol):
    name: str
    # trains a cell of several processes in DistributedDataParallel (absent: it cannot)
    data_parallel: bool
    # its inference session runs any batch size from 1, as serve cells need (absent: it cannot)
    serves: bool

    def probe(self, workload: str, device: str, precision: str) -> Capability: ...

    def prepare_infer(
        self, model: torch.nn.Module, cell: CellSpec, example: Batch
    ) -> InferSession: ...

    def prepare_train(
        self,
        model: torch.nn.Module,
        cell: CellSpec,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
    ) -> TrainSession: ...
