"""Training's warm-up before the first step: its batches are on the cell's device (CUDA would
refuse CPU tensors for a CUDA model), in the fixed-batch and the --batch-size auto paths, and a
compiled session warms every exact shape, as inference does."""

from __future__ import annotations

import pytest
import torch

from accelbench.backends.compile import CompiledTrain, CompileOptions
from accelbench.backends.eager import EagerBackend, TorchTrain
from accelbench.backends.precision import MODES
from accelbench.config.specs import RunConfig, cell_for
from accelbench.data.encode import Batch, synthetic_batch
from accelbench.workloads import autobatch, train
from test_compile import MaskProbe


class DeviceCheck:
    """Stands in on a CPU host for CUDA's "all tensors on the same device" check: a batch is
    on the cell's device when it came out of `train.to_device(batches, <that device>)`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, device: str) -> None:
        self.device = device
        self.placed: list[Batch] = []
        self.warmed: list[Batch] = []

        def to_device(batches, target):
            out = [b.to(target) for b in batches]  # new objects, whatever the device
            if target == device:
                self.placed.extend(out)
            return out

        monkeypatch.setattr(train, "to_device", to_device)

    def warm(self, examples) -> None:
        for batch in examples:
            if not any(batch is p for p in self.placed):
                raise RuntimeError(
                    f"Expected all tensors to be on the same device: a {batch.signature} "
                    f"warm-up batch was not moved to {self.device}"
                )
            self.warmed.append(batch)


def _backend(check: DeviceCheck) -> EagerBackend:
    class Checked(TorchTrain):
        def warm_shapes(self, examples):
            check.warm(examples)

    class Backend(EagerBackend):
        def prepare_train(self, model, cell, optimizer, scheduler):
            session = super().prepare_train(model, cell, optimizer, scheduler)
            session.__class__ = Checked
            return session

    return Backend()


def test_batch_search_warms_on_the_cells_device(monkeypatch):
    config = RunConfig(synthetic=True, batch_sizes=("auto",), seq_lens=(8,))
    cell = cell_for(config, "train", "eager", "cpu", "fp32", "pad-max")
    check = DeviceCheck(monkeypatch, cell.device)
    fixed = synthetic_batch(2, 8, 30522, 3, seed=0)

    def make_plan(c, n):
        return train.Plan([None] * n, lambda _: fixed, lambda _: fixed.signature)

    monkeypatch.setattr(autobatch, "search", lambda measure, cap, device: measure(2))
    monkeypatch.setattr(autobatch, "rate", lambda once, device: float(once()))
    train._search_batch(cell, config, _backend(check), MaskProbe, make_plan, cap=8)
    assert [b.signature for b in check.warmed] == [fixed.signature]


@pytest.mark.slow  # loads the tiny model
def test_the_fine_tune_warms_on_the_cells_device(monkeypatch, tiny_model_dir, tmp_path):
    config = RunConfig(
        model=str(tiny_model_dir), synthetic=True, batch_sizes=(2,), seq_lens=(8,), train_steps=3
    )
    cell = cell_for(config, "train", "eager", "cpu", "fp32", "pad-max")
    check = DeviceCheck(monkeypatch, cell.device)
    out = train.run_train(cell, config, _backend(check), tmp_path, "cell", lambda n: None)
    assert [b.signature for b in check.warmed] == [(2, 8, False)]
    assert out["metrics"]["timed_steps"] == 3 - out["metrics"]["warmup_steps"]


def _batch(rows: int, width: int) -> Batch:
    ids = torch.ones(rows, width, dtype=torch.long)
    return Batch(ids, ids, ids, tuple(range(rows)), rows * width - 1)


@pytest.mark.parametrize(
    "mode,device,calls", [("default", "cpu", 1), ("reduce-overhead", "cuda", 3)]
)
def test_compiled_training_warms_every_exact_shape(mode, device, calls):
    """dynamic=True: a first batch of 4 x 4 would specialize the graph on rows == width, so
    4 x 9 must be warmed too, not only one batch per graph."""
    config = RunConfig(compile_mode=mode, runtimes=("compile",))
    options = CompileOptions.for_cell(
        cell_for(config, "train", "compile", device, "fp32", "dynamic")
    )
    assert options.dynamic
    model = MaskProbe()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    session = CompiledTrain(model, "cpu", MODES["fp32"], optimizer, scheduler, options, False)
    warmed: list[tuple[int, int, bool]] = []
    session._backward = lambda batch, parts: warmed.append(batch.signature)
    examples = [_batch(4, 4), _batch(4, 9), _batch(3, 9), _batch(1, 9), _batch(4, 9)]
    session.warm_shapes(examples)
    shapes = [(4, 4, True), (4, 9, True), (3, 9, True), (1, 9, True)]
    assert warmed == [s for s in shapes for _ in range(calls)]
    assert session.watch.calls == len(warmed)
