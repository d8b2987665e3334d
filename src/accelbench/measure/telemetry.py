"""NVML sampling over a cell's timed window only: clocks, temperature, power, throttling, energy.

The sampler starts when timing starts and stops when it stops (`start`/`stop`, or as a context
manager around the timed loop); its first sample is taken one interval in, never before any
work. Untimed work inside the window (a training run's dev-curve snapshots) is left out with
`paused()`: no samples are kept during it, and its time and energy are taken off the window's.
Samples at 0 % GPU utilization (the GPU idle between host-side steps) are left out of every
statistic. Each NVML query is guarded on its own (measure.nvml): an unsupported one
makes its field null with the reason in `unavailable`. An error in the sampler thread ends
sampling and is recorded as `sampler_error`; the cell goes on.

Without NVML (a CPU cell, no nvidia-ml-py, no driver) the record's telemetry is null and
`telemetry_reason` says why.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from accelbench.measure.nvml import Reader, Sample, open_device, why

# NVML "clocks event" (throttle) reason bits that mean the GPU ran slower than it could.
THROTTLE_BITS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
}
# sw_power_cap is how a GPU at its power limit manages its clocks: information, unless the
# SM clock actually fell during the window
INFORMATIONAL = ("sw_power_cap",)
CLOCK_DROP = 0.9  # a minimum SM clock under 90 % of the median counts as a drop


class Telemetry:
    """NVML sampler of one GPU every `interval_s` seconds in a background thread.

    `nvml`: (module, handle) to sample; by default NVML is opened for torch's current GPU."""

    def __init__(
        self,
        device: str,
        interval_s: float = 0.05,
        nvml: tuple[Any, Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.interval_s, self.clock = interval_s, clock
        self.samples: list[Sample] = []
        self.reason: str | None = None
        self.sampler_error: str | None = None
        self.reader: Reader | None = None
        self.elapsed_s = 0.0
        self._energy: tuple[int | None, int | None] = (None, None)
        self._paused_s, self._paused_mj, self._energy_gap = 0.0, 0, False
        self._hold = threading.Event()  # set while paused: samples taken are not kept
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if device != "cuda":
            self.reason = "CPU cell: NVML telemetry is for NVIDIA GPUs"
            return
        try:
            self.reader = Reader(*(nvml or open_device()))
        except Exception as exc:  # no package, no driver, no permission: data, not a failure
            self.reason = f"NVML unavailable: {why(exc)}"

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                sample = self.reader.read()
                if not self._hold.is_set():
                    self.samples.append(sample)
        except Exception as exc:  # recorded, not swallowed: the record says sampling ended
            self.sampler_error = f"sampling ended early: {why(exc)}"

    def start(self) -> None:
        if self.reader is None or self._thread is not None:
            return
        self._t0 = self.clock()
        self._energy = (self.reader.energy_mj(), None)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="nvml-sampler")
        self._thread.start()

    def stop(self) -> None:
        """End the window (call it after the device finished the timed work)."""
        if self._thread is None or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self.elapsed_s = self.clock() - self._t0 - self._paused_s
        if self.sampler_error is None:
            try:  # the window's last moment: the work just ended
                self.samples.append(self.reader.read())
            except Exception as exc:
                self.sampler_error = f"last sample failed: {why(exc)}"
        self._energy = (self._energy[0], self.reader.energy_mj())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Leave what runs inside out of the window: its samples, its time and its energy
        (where the energy counter cannot be read around it, energy falls back to mean power
        over the window). Outside an open window it does nothing."""
        if self._thread is None or self._stop.is_set():
            yield
            return
        self._hold.set()
        t0, e0 = self.clock(), self.reader.energy_mj()
        try:
            yield
        finally:
            e1 = self.reader.energy_mj()
            self._paused_s += self.clock() - t0
            if e0 is None or e1 is None:
                self._energy_gap = True
            else:
                self._paused_mj += e1 - e0
            self._hold.clear()

    def __enter__(self) -> Telemetry:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def energy_j(self, busy: Sequence[Sample]) -> float | None:
        start, end = self._energy
        if start is not None and end is not None and not self._energy_gap:
            return (end - start - self._paused_mj) / 1000.0
        power = [s["power_w"] for s in busy if s["power_w"] is not None]
        return float(np.mean(power)) * self.elapsed_s if power else None

    def summary(self, work_items: int) -> dict:
        """Telemetry fields for the record; energy per work item (sentence) in joules."""
        if self.reader is None or self._thread is None:
            return {"telemetry": None, "telemetry_reason": self.reason or "no timed window"}
        busy = busy_samples(self.samples)
        tele = summarize_samples(busy, self.energy_j(busy), work_items)
        tele["idle_samples_dropped"] = len(self.samples) - len(busy)
        tele["window_s"] = self.elapsed_s
        tele["unavailable"] = dict(self.reader.unavailable)
        tele["sampler_error"] = self.sampler_error
        return {"telemetry": tele, "telemetry_reason": None}


def busy_samples(samples: Sequence[Sample]) -> list[Sample]:
    """Samples taken while the GPU was busy: utilization above 0 % (all of them where NVML
    does not report utilization, since idleness cannot be told then)."""
    return [s for s in samples if s.get("gpu_util_pct") is None or s["gpu_util_pct"] > 0]


def _values(samples: Sequence[Sample], field: str) -> np.ndarray:
    return np.array([s[field] for s in samples if s.get(field) is not None], dtype=np.float64)


def _stat(values: np.ndarray, how: Callable[[np.ndarray], Any]) -> float | None:
    return float(how(values)) if values.size else None


def summarize_samples(samples: Sequence[Sample], energy_j: float | None, work_items: int) -> dict:
    sm = _values(samples, "sm_clock_mhz")
    power = _values(samples, "power_w")
    bits = 0
    for s in samples:
        bits |= int(s.get("clocks_event_bits") or 0)
    return {
        "samples": len(samples),
        "sm_clock_mhz": {
            "min": _stat(sm, np.min),
            "median": _stat(sm, np.median),
            "max": _stat(sm, np.max),
        },
        "mem_clock_mhz_median": _stat(_values(samples, "mem_clock_mhz"), np.median),
        "temperature_c_max": _stat(_values(samples, "temperature_c"), np.max),
        "power_w_mean": _stat(power, np.mean),
        "power_w_max": _stat(power, np.max),
        "gpu_util_pct_median": _stat(_values(samples, "gpu_util_pct"), np.median),
        "throttle_reasons": sorted(name for bit, name in THROTTLE_BITS.items() if bits & bit),
        "energy_j": energy_j,
        "energy_per_sample_j": energy_j / work_items if energy_j and work_items else None,
    }


def stability_reasons(telemetry: dict | None) -> list[str]:
    """Reasons to distrust a cell's numbers, from what the GPU reported while it was timed:
    an SM clock that fell (with the throttle reasons seen, sw_power_cap included), and the
    throttle reasons that always mean a slowdown (hardware, thermal, power brake)."""
    if not telemetry:
        return []
    out = []
    clock = telemetry["sm_clock_mhz"]
    seen = telemetry["throttle_reasons"]
    if clock["min"] is not None and clock["min"] < CLOCK_DROP * clock["median"]:
        drop = f"SM clock dropped to {clock['min']:.0f} MHz (median {clock['median']:.0f})"
        out.append(drop + (f" with {', '.join(seen)}" if seen else ""))
    slowdowns = [r for r in seen if r not in INFORMATIONAL]
    if slowdowns:
        out.append("throttling seen: " + ", ".join(slowdowns))
    return out
