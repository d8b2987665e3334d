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
    def logits(self, batch: Batch) -> torch.Tensor:
        """Token logits (B, L, labels) for a batch already on the cell's device; may be async."""

    def details(self) -> dict:
        """What this session really ran (flags, providers, export facts) for the record."""


class TrainSession(Protocol):
    def step(self, batches: Sequence[Batch]) -> torch.Tensor:
        """One optimizer step over micro-batches whose gradients accumulate; returns the
        detached mean loss without syncing the device."""

    def evaluator(self) -> InferSession:
        """An inference session over the model as trained, in the cell's precision."""

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
