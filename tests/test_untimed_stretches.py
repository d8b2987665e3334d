"""Work that is not training stays out of a training cell's figures: the dev-curve snapshots
out of the telemetry window (samples, time, energy), the profiled warm-up step and the
snapshots out of the time to a target F1."""

from __future__ import annotations

import contextlib

import pytest
import torch

from accelbench.backends.distributed import SINGLE
from accelbench.config.specs import RunConfig, cell_for
from accelbench.measure.telemetry import Telemetry
from accelbench.workloads import dev_curve
from accelbench.workloads.dev_curve import DevCurve
from test_telemetry import FakeNvml, wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_pause_is_left_out_of_the_windows_time_and_energy():
    fake, clock = FakeNvml(), Clock()
    tele = Telemetry("cuda", interval_s=60.0, nvml=(fake, "gpu0"), clock=clock)
    with tele.paused():  # before the window opens: nothing to leave out
        clock.now += 100.0
    tele.start()  # energy counter read: each read adds 2 kJ
    clock.now += 3.0
    with tele.paused():  # 2 kJ and 5 s between its two reads
        clock.now += 5.0
    clock.now += 1.0
    tele.stop()
    assert tele.elapsed_s == pytest.approx(4.0)
    summary = tele.summary(work_items=10)["telemetry"]
    assert summary["energy_j"] == pytest.approx(4000.0)  # 6 kJ over the window, 2 kJ paused
    assert summary["window_s"] == pytest.approx(4.0)


def test_no_sample_is_kept_while_paused():
    fake = FakeNvml()
    reads: list[int] = []
    query = fake.nvmlDeviceGetTemperature

    def counted(handle, kind):
        reads.append(1)
        return query(handle, kind)

    fake.nvmlDeviceGetTemperature = counted
    tele = Telemetry("cuda", interval_s=0.002, nvml=(fake, "gpu0"))
    with tele:
        wait_until(lambda: len(tele.samples) >= 2)
        with tele.paused():
            kept, start = len(tele.samples), len(reads)
            wait_until(lambda: len(reads) >= start + 10)  # the sampler went on reading
            during = len(tele.samples) - kept
    assert during <= 1  # at most the one read already under way when the pause began


class Recording:
    def __init__(self) -> None:
        self.pauses = 0

    @contextlib.contextmanager
    def paused(self):
        self.pauses += 1
        yield


def test_snapshots_and_the_profiled_step_are_off_the_training_clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(dev_curve.time, "perf_counter", clock)
    config = RunConfig(eval_every=2)
    cell = cell_for(config, "train", "eager", "cpu", "fp32", "dynamic")
    window = Recording()
    curve = DevCurve(4, config, cell, SINGLE, window)
    model = torch.nn.Linear(2, 2)
    curve.start()
    clock.now += 1.0  # step 1, plain
    curve.after_step(1, 8, model)
    assert window.pauses == 0  # no dev point after step 1
    with curve.paused():  # step 2 under the profiler
        clock.now += 30.0
    curve.after_step(2, 8, model)
    assert window.pauses == 1  # the snapshot is kept out of the telemetry window
    step, sentences, trained, weights = curve.snapshots[0]
    assert (step, sentences, trained) == (2, 16, pytest.approx(1.0))
    assert torch.equal(weights["weight"], model.weight.detach())
