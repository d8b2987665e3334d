"""A deliberately degraded runtime for the accuracy-gate test: eager logits plus large noise.

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
