"""PyTorch eager mode on CPU or CUDA, in every PyTorch precision mode."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from accelbench.backends import distributed, quant
from accelbench.backends.base import Capability
from accelbench.backends.precision import (
    MODES,
    PrecisionMode,
    apply_flags,
    autocast,
    torch_capability,
)
from accelbench.config.specs import CellSpec
from accelbench.data.encode import Batch
from accelbench.measure.memory import torch_peaks


def torch_probe(workload: str, device: str, precision: str) -> Capability:
    """PyTorch's precision modes, and torchao's quantized ones."""
    if precision in quant.PRECISIONS:
        return quant.capability(workload, device, precision, quant.Stack.here())
    ok, reason = torch_capability(workload, device, precision)
    return Capability(ok, reason)


def session_mode(cell: CellSpec) -> tuple[PrecisionMode, quant.Recipe | None]:
    """The precision mode of a cell's session, and the torchao recipe of a quantized one."""
    if cell.precision not in quant.PRECISIONS:
        return MODES[cell.precision], None
    recipe = quant.Recipe.for_cell(cell.precision, cell.workload, cell.extra)
    return quant.mode(cell.precision, cell.device, cell.workload), recipe


class TorchInfer:
    warm_calls = 1
    compiling_calls = 0

    def __init__(
        self,
        model: torch.nn.Module,
        device: str,
        mode: PrecisionMode,
        recipe: quant.Recipe | None = None,
    ) -> None:
        self.flags = apply_flags(mode)
        self.model = model.to(device).eval()
        if mode.weights is not None:
            self.model = self.model.to(mode.weights)
        self.quantization = recipe.apply(self.model) if recipe is not None else None
        self.device, self.mode = device, mode

    def logits(self, batch: Batch) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.mode, self.device):
            return self.model(input_ids=batch.input_ids, attention_mask=batch.model_mask).logits

    def device_memory(self) -> dict:
        return torch_peaks()

    def details(self) -> dict:
        info: dict = {"precision_flags": self.flags}
        if self.quantization is not None:
            info["quantization"] = self.quantization
        return info


class TorchTrain:
    compiling_calls = 0

    def __init__(
        self,
        model: torch.nn.Module,
        device: str,
        mode: PrecisionMode,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        data_parallel: bool = False,
        recipe: quant.Recipe | None = None,
    ) -> None:
        self.flags = apply_flags(mode)
        self.model = model.to(device).train()
        # torchao keeps the Parameter objects: the optimizer built over them still holds them
        self.quantization = recipe.apply(self.model) if recipe is not None else None
        self.device, self.mode = device, mode
        self.optimizer, self.scheduler = optimizer, scheduler
        self.scaler = torch.amp.GradScaler(device, enabled=mode.grad_scaler)
        # steps run through DDP; evaluation uses the model itself, on one rank
        self.data_parallel = data_parallel
        self.ddp = distributed.data_parallel(self.model) if data_parallel else None
        self.forward = self.ddp or self.model
        self.steps = 0

    def _accumulating(self, last: bool) -> contextlib.AbstractContextManager:
        """Data-parallel, gradients are all-reduced once per step: after the last micro-batch."""
        return self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()

    def _backward(self, batch: Batch, parts: int) -> torch.Tensor:
        with autocast(self.mode, self.device):
            loss = (
                self.forward(
                    input_ids=batch.input_ids, attention_mask=batch.model_mask, labels=batch.labels
                ).loss
                / parts
            )
        self.scaler.scale(loss).backward()
        return loss.detach()

    def warm_shapes(self, examples: Sequence[Batch]) -> None:
        """Eager kernels need no preparation per shape."""

    def step(self, batches: Sequence[Batch]) -> torch.Tensor:
        total = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):  # gradients of the micro-batches accumulate
            with self._accumulating(last=i == len(batches) - 1):
                total += self._backward(batch, len(batches))
        # No host sync here: with a fused optimizer GradScaler.step reads nothing back, and
        # skipped steps are counted once, at the end (skipped_steps).
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return total

    @property
    def skipped_steps(self) -> int:
        """Steps GradScaler skipped (inf/NaN gradients), from AdamW's step counter, which
        counts applied steps only: GradScaler does not call a plain optimizer's step on inf,
        and fused AdamW takes its increment back when it found inf. Syncs once."""
        if not self.scaler.is_enabled():
            return 0
        counts = [float(s["step"]) for s in self.optimizer.state.values() if "step" in s]
        return self.steps - int(max(counts, default=0))

    def evaluator(self) -> TorchInfer:
        return TorchInfer(self.model, self.device, self.mode)

    def device_memory(self) -> dict:
        return torch_peaks()

    def details(self) -> dict:
        info: dict = {"precision_flags": self.flags, "skipped_steps": self.skipped_steps}
        if self.data_parallel:
            info["data_parallel"] = "DistributedDataParallel, no per-step buffer broadcast"
        if self.scaler.is_enabled():
            info["grad_scale_final"] = float(self.scaler.get_scale())
        if self.quantization is not None:
            info["quantization"] = self.quantization
        return info


class EagerBackend:
    name = "eager"
    data_parallel = True  # trains in DistributedDataParallel when a cell has several processes
    serves = True  # its inference session runs any batch size from 1 (serve cells)

    def probe(self, workload: str, device: str, precision: str) -> Capability:
        return torch_probe(workload, device, precision)

    def prepare_infer(self, model: torch.nn.Module, cell: CellSpec, example: Batch) -> TorchInfer:
        return TorchInfer(model, cell.device, *session_mode(cell))

    def prepare_train(self, model, cell, optimizer, scheduler) -> TorchTrain:
        mode, recipe = session_mode(cell)
        return TorchTrain(
            model, cell.device, mode, optimizer, scheduler, cell.nproc > 1, recipe=recipe
        )
