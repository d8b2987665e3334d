"""TorchTrain's loss scaling: skipped steps counted at the end, no host sync per step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from accelbench.backends.eager import TorchTrain
from accelbench.backends.precision import MODES, PrecisionMode
from accelbench.data.encode import Batch

# loss scaling without autocast, so that it runs on CPU
SCALED = PrecisionMode("scaled", None, None, False, True, True, False)


class Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, input_ids, attention_mask, labels) -> SimpleNamespace:
        return SimpleNamespace(loss=(self.w * input_ids).sum())


def _session(mode: PrecisionMode, fused: bool) -> TorchTrain:
    model = Linear()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return TorchTrain(model, "cpu", mode, optimizer, scheduler)


BATCH = Batch(torch.full((1, 1), 4.0), torch.ones(1, 1), torch.zeros(1, 1), (0,), 1)


@pytest.mark.filterwarnings("ignore:Detected call of:UserWarning")
@pytest.mark.parametrize("fused", [False, True])
def test_skipped_steps_are_the_steps_whose_scale_overflowed(fused):
    session = _session(SCALED, fused)
    # gradient = 4 x scale: inf at 2^127 and 2^126 (float32 max < 2^128), finite from 2^125 on
    session.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    drops = 0
    for _ in range(5):
        before = session.scaler.get_scale()
        session.step([BATCH])
        drops += session.scaler.get_scale() < before
    assert drops == 2
    assert session.skipped_steps == 2
    assert session.details()["skipped_steps"] == 2
    assert session.details()["grad_scale_final"] == 2.0**125


def test_without_loss_scaling_no_step_is_skipped():
    session = _session(MODES["fp32"], fused=False)
    for _ in range(3):
        session.step([BATCH])
    assert session.skipped_steps == 0
    assert "grad_scale_final" not in session.details()
