"""NVML telemetry and memory against a fake pynvml: the timed window only, idle samples left out,
sw_power_cap as information, every query guarded on its own, sampler errors recorded."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

from accelbench.measure.memory import OwnAllocator
from accelbench.measure.telemetry import Telemetry, stability_reasons, summarize_samples

MB = 2**20


class NVMLError_NotSupported(Exception):
    pass


class FakeNvml:
    """The pynvml calls accelbench makes, answering from attributes a test can change;
    `unsupported` names the calls that raise NotSupported."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, unsupported: tuple[str, ...] = ()) -> None:
        self.unsupported = unsupported
        self.sm, self.util, self.bits, self.energy = 1980, 100, 0, 1_000_000
        self.processes: list = []
        self.device_used = 0

    def _check(self, name: str) -> None:
        if name in self.unsupported:
            raise NVMLError_NotSupported("Not Supported")

    def nvmlDeviceGetClockInfo(self, h, kind):
        self._check("clock")
        return self.sm if kind == self.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetTemperature(self, h, kind):
        self._check("temperature")
        return 45

    def nvmlDeviceGetPowerUsage(self, h):
        self._check("power")
        return 500_000  # mW

    def nvmlDeviceGetUtilizationRates(self, h):
        self._check("utilization")
        return SimpleNamespace(gpu=self.util, memory=30)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        self._check("reasons")
        return self.bits

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self._check("energy")
        self.energy += 2_000_000  # mJ: 2 kJ between two reads
        return self.energy

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return self.processes

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=self.device_used)


def wait_until(condition, timeout_s: float = 300.0) -> None:  # a hang guard, no verdict
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the sampler thread took no sample"
        time.sleep(0.005)


def test_no_sample_before_the_window_and_the_last_one_when_it_closes():
    fake = FakeNvml()
    tele = Telemetry("cuda", interval_s=60.0, nvml=(fake, "gpu0"))
    assert tele.samples == []
    tele.start()
    assert tele.samples == []  # the first sample comes one interval in, never at once
    tele.stop()
    assert len(tele.samples) == 1  # taken when the timed work had just ended
    summary = tele.summary(work_items=10)["telemetry"]
    assert summary["energy_j"] == pytest.approx(2000.0)  # the counter over the window only
    assert summary["energy_per_sample_j"] == pytest.approx(200.0)


def test_idle_samples_are_left_out():
    fake = FakeNvml()
    tele = Telemetry("cuda", interval_s=0.002, nvml=(fake, "gpu0"))
    with tele:
        wait_until(lambda: len(tele.samples) >= 3)
        fake.util, fake.sm = 0, 345  # idle: the GPU clocked down between steps
        busy = len(tele.samples)
        wait_until(lambda: len(tele.samples) >= busy + 3)
    summary = tele.summary(work_items=10)["telemetry"]
    assert summary["idle_samples_dropped"] >= 3
    assert summary["samples"] + summary["idle_samples_dropped"] == len(tele.samples)
    assert summary["sm_clock_mhz"]["min"] == 1980  # idle clocks are no clock drop
    assert stability_reasons(summary) == []


def _sample(sm: float, bits: int) -> dict:
    return {
        "sm_clock_mhz": sm,
        "mem_clock_mhz": 2619.0,
        "temperature_c": 60.0,
        "power_w": 690.0,
        "gpu_util_pct": 100.0,
        "clocks_event_bits": bits,
    }


def test_sw_power_cap_is_information_unless_the_clock_fell():
    capped = summarize_samples([_sample(1755, 0x4), _sample(1740, 0x4)], None, 10)
    assert capped["throttle_reasons"] == ["sw_power_cap"]
    assert stability_reasons(capped) == []
    fell = summarize_samples([_sample(1980, 0x4), _sample(1980, 0), _sample(1400, 0x4)], None, 10)
    assert stability_reasons(fell) == [
        "SM clock dropped to 1400 MHz (median 1980) with sw_power_cap"
    ]
    hot = summarize_samples([_sample(1980, 0x40), _sample(1980, 0)], None, 10)
    assert stability_reasons(hot) == ["throttling seen: hw_thermal_slowdown"]


def test_an_unsupported_query_nulls_its_field_and_the_rest_go_on():
    fake = FakeNvml(unsupported=("power", "utilization", "energy"))
    tele = Telemetry("cuda", interval_s=0.002, nvml=(fake, "gpu0"))
    with tele:
        wait_until(lambda: len(tele.samples) >= 2)
    summary = tele.summary(work_items=10)["telemetry"]
    assert summary["power_w_mean"] is None and summary["energy_j"] is None
    assert summary["sm_clock_mhz"]["median"] == 1980
    assert summary["gpu_util_pct_median"] is None
    assert summary["idle_samples_dropped"] == 0  # without utilization idleness cannot be told
    for field in ("power_w", "gpu_util_pct", "energy_j"):
        assert "NotSupported" in summary["unavailable"][field]
    assert summary["sampler_error"] is None


def test_an_error_in_the_sampler_thread_is_recorded():
    tele = Telemetry("cuda", interval_s=0.002, nvml=(FakeNvml(), "gpu0"))
    read = tele.reader.read
    calls = {"n": 0}

    def failing() -> dict:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("driver went away")
        return read()

    tele.reader.read = failing
    with tele:
        wait_until(lambda: tele.sampler_error is not None)
    summary = tele.summary(work_items=1)["telemetry"]
    assert "driver went away" in summary["sampler_error"]
    assert len(tele.samples) == 1  # the sample before the error; none after


def test_cpu_and_missing_nvml_give_null_telemetry_with_a_reason(monkeypatch):
    from accelbench.measure import telemetry

    assert Telemetry("cpu").summary(1) == {
        "telemetry": None,
        "telemetry_reason": "CPU cell: NVML telemetry is for NVIDIA GPUs",
    }

    def no_driver():
        raise OSError("NVML Shared Library Not Found")

    monkeypatch.setattr(telemetry, "open_device", no_driver)  # opening NVML fails: data
    summary = Telemetry("cuda").summary(1)
    assert summary["telemetry"] is None
    assert summary["telemetry_reason"].startswith("NVML unavailable: ")
    assert "NVML Shared Library Not Found" in summary["telemetry_reason"]


def test_own_allocator_memory_is_nvml_growth_less_torchs():
    fake = FakeNvml()
    me = SimpleNamespace(pid=os.getpid(), usedGpuMemory=1000 * MB)
    fake.processes = [SimpleNamespace(pid=1, usedGpuMemory=50_000 * MB), me]
    reserved = {"bytes": 100 * MB}
    memory = OwnAllocator((fake, "gpu0"), lambda: reserved["bytes"])
    me.usedGpuMemory, reserved["bytes"] = 3000 * MB, 600 * MB
    figures = memory.figures()
    assert figures["device_memory_mb"] == pytest.approx(1500.0)
    assert figures["device_memory_source"].startswith("NVML, this process")
    assert figures["cuda_peak_allocated_mb"] is None  # never torch's figure for ORT's memory


def test_own_allocator_falls_back_to_device_memory_or_null_with_a_reason():
    fake = FakeNvml()
    fake.device_used = 10_000 * MB  # another PID namespace: NVML does not list this process
    memory = OwnAllocator((fake, "gpu0"), lambda: 0)
    fake.device_used = 12_000 * MB
    figures = memory.figures()
    assert figures["device_memory_mb"] == pytest.approx(2000.0)
    assert "whole device" in figures["device_memory_source"]

    class NoMemoryQuery(FakeNvml):
        def nvmlDeviceGetMemoryInfo(self, h):
            raise NVMLError_NotSupported("Not Supported")

    broken = OwnAllocator((NoMemoryQuery(), "gpu0"), lambda: 0)
    assert broken.figures()["device_memory_mb"] is None
    assert "NotSupported" in broken.figures()["device_memory_reason"]
