"""NVML sampling during a cell's timed region: clocks, temperature, power, throttling, energy.

Without NVML (a CPU cell, no nvidia-ml-py, no driver) every field is null and
`telemetry_reason` says why.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

# NVML "clocks event" (throttle) reason bits that mean the GPU ran slower than it could.
THROTTLE_BITS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
}
CLOCK_DROP = 0.9  # a minimum SM clock under 90 % of the median counts as a drop


def _nvml_handle():
    """(pynvml module, handle of the GPU torch uses) or raise with the reason."""
    import pynvml
    import torch

    pynvml.nvmlInit()
    uuid = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "uuid", None)
    if uuid is not None:
        return pynvml, pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())


class Telemetry:
    """Context manager sampling NVML every `interval_s` seconds in a background thread."""

    def __init__(self, device: str, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, float, float, int]] = []
        self.energy_mj: tuple[int, int] | None = None
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.nvml = self.handle = None
        if device != "cuda":
            self.reason = "CPU cell: NVML telemetry is for NVIDIA GPUs"
            return
        try:
            self.nvml, self.handle = _nvml_handle()
        except Exception as exc:  # no package, no driver, no permission: data, not a failure
            self.reason = f"NVML unavailable: {type(exc).__name__}: {exc}"

    def _read(self) -> tuple[float, float, float, float, int]:
        n, h = self.nvml, self.handle
        reasons = (
            getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or n.nvmlDeviceGetCurrentClocksThrottleReasons
        )
        return (
            float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            n.nvmlDeviceGetPowerUsage(h) / 1000.0,
            int(reasons(h)),
        )

    def _energy(self) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(self._read())

    def __enter__(self) -> Telemetry:
        if self.handle is not None:
            self._start_energy = self._energy()
            self._t0 = time.perf_counter()
            self.samples.append(self._read())
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.samples.append(self._read())
            self.elapsed_s = time.perf_counter() - self._t0
            end = self._energy()
            if self._start_energy is not None and end is not None:
                self.energy_mj = (self._start_energy, end)

    def summary(self, work_items: int) -> dict:
        """Telemetry fields for the record; energy per work item (sentence) in joules."""
        if not self.samples:
            return {"telemetry": None, "telemetry_reason": self.reason}
        return {
            "telemetry": summarize_samples(self.samples, self.energy_j(), work_items),
            "telemetry_reason": None,
        }

    def energy_j(self) -> float | None:
        if self.energy_mj is not None:
            return (self.energy_mj[1] - self.energy_mj[0]) / 1000.0
        if len(self.samples) > 1:  # integrate power over the sampled interval
            return float(np.mean([s[3] for s in self.samples])) * self.elapsed_s
        return None


def summarize_samples(
    samples: Sequence[tuple[float, float, float, float, int]],
    energy_j: float | None,
    work_items: int,
) -> dict:
    sm = np.array([s[0] for s in samples])
    bits = 0
    for s in samples:
        bits |= s[4]
    throttles = sorted(name for bit, name in THROTTLE_BITS.items() if bits & bit)
    return {
        "samples": len(samples),
        "sm_clock_mhz": {
            "min": float(sm.min()),
            "median": float(np.median(sm)),
            "max": float(sm.max()),
        },
        "mem_clock_mhz_median": float(np.median([s[1] for s in samples])),
        "temperature_c_max": float(max(s[2] for s in samples)),
        "power_w_mean": float(np.mean([s[3] for s in samples])),
        "power_w_max": float(max(s[3] for s in samples)),
        "throttle_reasons": throttles,
        "energy_j": energy_j,
        "energy_per_sample_j": energy_j / work_items if energy_j and work_items else None,
    }


def stability_reasons(telemetry: dict | None) -> list[str]:
    """Reasons to distrust a cell's numbers, from what the GPU reported while it ran."""
    if not telemetry:
        return []
    out = []
    clock = telemetry["sm_clock_mhz"]
    if clock["min"] < CLOCK_DROP * clock["median"]:
        out.append(f"SM clock dropped to {clock['min']:.0f} MHz (median {clock['median']:.0f})")
    if telemetry["throttle_reasons"]:
        out.append("throttling seen: " + ", ".join(telemetry["throttle_reasons"]))
    return out
