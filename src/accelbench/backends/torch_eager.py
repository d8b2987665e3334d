"""PyTorch eager mode on CPU or CUDA, in every PyTorch precision mode."""

from __future__ import annotations

import torch

from accelbench.backends.base import Capability
from accelbench.encode import Batch
from accelbench.precision import MODES, PrecisionMode, apply_flags, autocast, torch_capability
from accelbench.specs import CellSpec


class TorchInfer:
    def __init__(self, model: torch.nn.Module, device: str, mode: PrecisionMode) -> None:
        self.flags = apply_flags(mode)
        self.model = model.to(device).eval()
        if mode.weights is not None:
            self.model = self.model.to(mode.weights)
        self.device, self.mode = device, mode

    def logits(self, batch: Batch) -> torch.Tensor:
        with torch.inference_mode(), autocast(self.mode, self.device):
            return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits

    def details(self) -> dict:
        return {"precision_flags": self.flags}


class TorchTrain:
    def __init__(
        self,
        model: torch.nn.Module,
        device: str,
        mode: PrecisionMode,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
    ) -> None:
        self.flags = apply_flags(mode)
        self.model = model.to(device).train()
        self.device, self.mode = device, mode
        self.optimizer, self.scheduler = optimizer, scheduler
        self.scaler = torch.amp.GradScaler(device, enabled=mode.grad_scaler)
        self.forward = self.model
        self.steps = 0

    def step(self, batch: Batch) -> torch.Tensor:
        with autocast(self.mode, self.device):
            loss = self.forward(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels
            ).loss
        self.scaler.scale(loss).backward()
        # No host sync here: with a fused optimizer GradScaler.step reads nothing back, and
        # skipped steps are counted once, at the end (skipped_steps).
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return loss.detach()

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

    def details(self) -> dict:
        info: dict = {"precision_flags": self.flags, "skipped_steps": self.skipped_steps}
        if self.scaler.is_enabled():
            info["grad_scale_final"] = float(self.scaler.get_scale())
        return info


class EagerBackend:
    name = "eager"

    def probe(self, workload: str, device: str, precision: str) -> Capability:
        ok, reason = torch_capability(workload, device, precision)
        return Capability(ok, reason)

    def prepare_infer(self, model: torch.nn.Module, cell: CellSpec, example: Batch) -> TorchInfer:
        return TorchInfer(model, cell.device, MODES[cell.precision])

    def prepare_train(self, model, cell, optimizer, scheduler) -> TorchTrain:
        return TorchTrain(model, cell.device, MODES[cell.precision], optimizer, scheduler)
