"""Memory figures of a cell: the host's peak RSS, and device memory from the allocator that
really held it. torch's caching allocator sees torch's tensors only; a runtime with its own
device allocator (ONNX Runtime's arena) is measured with NVML around its session instead, or
recorded as null with the reason, never with a torch figure that would look like its own."""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from typing import Any

from accelbench.measure.nvml import open_device, used_bytes, why

MB = 2**20


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (MB if sys.platform == "darwin" else 1024)


def reset_peaks(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def torch_peaks() -> dict:
    """Peaks of torch's CUDA caching allocator since the last reset."""
    import torch

    return {
        "cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / MB,
        "cuda_peak_reserved_mb": torch.cuda.max_memory_reserved() / MB,
    }


class OwnAllocator:
    """GPU memory a runtime's own allocator added: NVML's used memory of this process minus
    what torch's allocator reserved meanwhile, from construction (before the runtime's session
    exists) to `figures()` (after its timed loop; an arena keeps what it grew to)."""

    def __init__(
        self,
        nvml: tuple[Any, Any] | None = None,
        torch_reserved: Callable[[], int] | None = None,
    ) -> None:
        self.reason: str | None = None
        self.torch_reserved = torch_reserved or _torch_reserved
        try:
            self.nvml = nvml or open_device()
            self.used0, self.source = used_bytes(*self.nvml)
            self.reserved0 = self.torch_reserved()
        except Exception as exc:
            self.reason = f"NVML unavailable: {why(exc)}"

    def figures(self) -> dict:
        out: dict = {
            "cuda_peak_allocated_mb": None,
            "cuda_peak_reserved_mb": None,
            "device_memory_mb": None,
            "device_memory_source": None,
            "device_memory_reason": self.reason,
        }
        if self.reason is not None:
            return out
        try:
            used, source = used_bytes(*self.nvml)
        except Exception as exc:
            out["device_memory_reason"] = f"NVML query failed: {why(exc)}"
            return out
        if source != self.source:
            out["device_memory_reason"] = f"NVML gave '{self.source}', then '{source}'"
            return out
        grown = (used - self.used0) - (self.torch_reserved() - self.reserved0)
        out["device_memory_mb"] = grown / MB
        out["device_memory_source"] = (
            f"{source}: used memory after the timed loop minus before the session, "
            "less torch's reserved growth"
        )
        return out


def _torch_reserved() -> int:
    import torch

    return torch.cuda.memory_reserved()
