"""Training's micro-batches are fixed before the first step: every shape is warmed before it,
and each step's batches are staged before its timer starts."""

from __future__ import annotations

import pytest

from accelbench.backends.eager import EagerBackend, TorchTrain
from accelbench.config.specs import RunConfig, cell_for
from accelbench.data.models import load_tokenizer, resolve_model
from accelbench.measure.timing import IterationTimer
from accelbench.workloads import train
from helpers import write_varied_conll

# trains the tiny BERT (eager) on a few sentences
pytestmark = pytest.mark.slow

LOG: list[str] = []


class RecordingTrain(TorchTrain):
    def warm_shapes(self, examples):
        LOG.append(("warm", {b.signature for b in examples}))

    def step(self, batches):
        LOG.append(("step", [b.signature for b in batches]))
        return super().step(batches)


class RecordingBackend(EagerBackend):
    def prepare_train(self, model, cell, optimizer, scheduler):
        session = super().prepare_train(model, cell, optimizer, scheduler)
        session.__class__ = RecordingTrain
        return session


class RecordingTimer(IterationTimer):
    def start(self) -> None:
        LOG.append(("start", None))
        super().start()

    def stop(self) -> None:
        super().stop()
        LOG.append(("stop", None))


def _config(tiny_model_dir, tmp_path, padding: str) -> RunConfig:
    return RunConfig(
        model=str(tiny_model_dir),
        dataset=f"conll:{write_varied_conll(tmp_path / 'data')}",
        paddings=(padding,),
        batch_sizes=(3,),
        seq_lens=(32,),
        train_steps=8,
    )


@pytest.mark.parametrize("padding", ["pad-max", "bucket", "dynamic"])
def test_the_plan_knows_every_shape_the_steps_will_have(tiny_model_dir, tmp_path, padding):
    config = _config(tiny_model_dir, tmp_path, padding)
    cell = cell_for(config, "train", "eager", "cpu", "fp32", padding)
    inputs = train.train_input(cell, load_tokenizer(resolve_model(cell.model)))
    plan = inputs.make_plan(cell, 8)
    batches = [plan.micro(step, 1)[0] for step in range(8)]
    assert sorted(b.size for b in batches[:3]) == [1, 3, 3]  # 7 sentences: one batch is short
    assert {b.signature for b in plan.examples()} == {b.signature for b in batches}
    assert len(plan.examples()) == len({b.signature for b in batches})


def test_shapes_are_warmed_first_and_no_copy_happens_inside_a_timed_step(
    tiny_model_dir, tmp_path, monkeypatch
):
    config = _config(tiny_model_dir, tmp_path, "bucket")
    cell = cell_for(config, "train", "eager", "cpu", "fp32", "bucket")
    real_to_device = train.to_device

    def recording_to_device(batches, device):
        LOG.append(("copy", [b.signature for b in batches]))
        return real_to_device(batches, device)

    monkeypatch.setattr(train, "to_device", recording_to_device)
    monkeypatch.setattr(train, "IterationTimer", RecordingTimer)
    LOG.clear()
    out = train.run_train(cell, config, RecordingBackend(), tmp_path, "cell", lambda n: None)
    kinds = [kind for kind, _ in LOG]
    assert kinds[:2] == ["copy", "warm"]  # the warm-up batches go to the device first
    steps = [shapes for kind, shapes in LOG if kind == "step"]
    assert {s for step in steps for s in step} <= LOG[1][1]  # every step's shape warmed
    assert kinds.count("start") == out["metrics"]["timed_steps"] == 8 - 1
    timed = False
    for kind in kinds:  # the timed region holds the step alone
        if kind == "start":
            timed = True
        elif kind == "stop":
            timed = False
        else:
            assert not timed or kind == "step", kind
    assert out["metrics"]["timed_steps_compiled"] == 0
