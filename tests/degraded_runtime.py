"""Deliberately degraded runtimes for the accuracy gates: eager logits plus large noise
(inference), a head that never trains (training), and an exact twin of eager.

Joins as an `accelbench.runtimes` entry point (the real plug-in path; conftest.plugin_runtimes),
so the cell processes import it.
"""

from __future__ import annotations

import torch

from accelbench.backends.eager import EagerBackend, TorchInfer
from accelbench.data.encode import Batch

NOISE = 100.0


class NoisyInfer(TorchInfer):
    def __init__(self, inner: TorchInfer) -> None:
        super().__init__(inner.model, inner.device, inner.mode)
        self.generator = torch.Generator().manual_seed(0)

    def logits(self, batch: Batch) -> torch.Tensor:
        clean = super().logits(batch)
        noise = torch.randn(clean.shape, generator=self.generator) * NOISE
        return clean + noise.to(clean.device, clean.dtype)


class DegradedBackend(EagerBackend):
    name = "degraded"

    def prepare_infer(self, model, cell, example) -> NoisyInfer:
        return NoisyInfer(super().prepare_infer(model, cell, example))


class FrozenHeadBackend(EagerBackend):
    """Trains to nothing, whatever the seed: the head answers O everywhere (weights zero, O's
    bias far above the rest) and only the bias learns, too slowly to change an answer, so the
    entity F1 is 0 for every seed (the tiny model's random init must not decide the verdict)."""

    name = "frozenhead"

    def prepare_train(self, model, cell, optimizer, scheduler):
        for name, param in model.named_parameters():
            param.requires_grad_(name == "classifier.bias")
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            model.classifier.bias[model.config.label2id["O"]] = 30.0
        return super().prepare_train(model, cell, optimizer, scheduler)


class TwinBackend(EagerBackend):
    """Trains exactly as eager does, under another name."""

    name = "twin"
