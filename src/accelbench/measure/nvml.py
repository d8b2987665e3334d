"""NVML, each query guarded on its own: a query the driver, GPU or container does not support
turns its field into null with the reason, and every other query goes on.

The module and handle are parameters everywhere, so the decisions here run against a fake
`pynvml` in the tests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

Sample = dict[str, float | None]

# field -> query(nvml module, handle); the clocks-event reasons fall back to their pre-12.5
# name "throttle reasons" on older drivers
QUERIES: dict[str, Callable[[Any, Any], float]] = {
    "sm_clock_mhz": lambda n, h: float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
    "mem_clock_mhz": lambda n, h: float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
    "temperature_c": lambda n, h: float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
    "power_w": lambda n, h: n.nvmlDeviceGetPowerUsage(h) / 1000.0,
    "gpu_util_pct": lambda n, h: float(n.nvmlDeviceGetUtilizationRates(h).gpu),
    "clocks_event_bits": lambda n, h: float(
        (
            getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None)
            or n.nvmlDeviceGetCurrentClocksThrottleReasons
        )(h)
    ),
}


def why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def open_device() -> tuple[Any, Any]:
    """(pynvml module, handle of the GPU torch uses); raises when NVML cannot be had."""
    import pynvml
    import torch

    pynvml.nvmlInit()
    uuid = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "uuid", None)
    if uuid is not None:
        return pynvml, pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
    return pynvml, pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())


class Reader:
    """Reads one sample of every field. A query that raises once is not asked again: its field
    stays null and `unavailable` keeps the first reason."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml, self.handle = nvml, handle
        self.unavailable: dict[str, str] = {}

    def read(self) -> Sample:
        sample: Sample = {}
        for field, query in QUERIES.items():
            sample[field] = None
            if field in self.unavailable:
                continue
            try:
                sample[field] = query(self.nvml, self.handle)
            except Exception as exc:  # NotSupported, FunctionNotFound, ...: data, not a failure
                self.unavailable[field] = why(exc)
        return sample

    def energy_mj(self) -> int | None:
        """The board's energy counter (Volta and later), or None with the reason kept."""
        if "energy_j" in self.unavailable:
            return None
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception as exc:
            self.unavailable["energy_j"] = why(exc)
            return None


def used_bytes(nvml: Any, handle: Any, pid: int | None = None) -> tuple[int, str]:
    """GPU memory in use by this process (NVML's per-process figure), or, where NVML does not
    list the process (another PID namespace, no permission), by the whole device."""
    pid = os.getpid() if pid is None else pid
    with contextlib.suppress(Exception):  # not listed: the device-wide figure below
        for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == pid and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory), "NVML, this process"
    return int(nvml.nvmlDeviceGetMemoryInfo(handle).used), "NVML, whole device"
