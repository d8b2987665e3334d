"""Evidence that a CUDA cell ran in the mode it claims: one profiled call outside the timed loop.

The kernels of that call are classified by name (accelbench.measure.kernels); the dtypes of the
matmul ops come from the profiler's recorded inputs. The record gets the Tensor Core share of
GEMM and attention time and a verdict `mode_effective` (false: the claimed mode did not take
effect).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from accelbench.measure.kernels import mode_verdict, summarize

MATMUL_OPS = (
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::_scaled_mm",  # fp8 (torchao)
    "aten::_int_mm",  # int8 (torchao)
)
TOP_KERNELS = 5


def profile_call(fn: Callable[[], Any], precision: str) -> tuple[Any, dict]:
    """Run fn once under torch.profiler (CPU + CUDA activity); return its result and findings."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as p:
        result = fn()
        torch.cuda.synchronize()
    events = p.events()
    kernels = [
        (e.name, float(e.time_range.elapsed_us()))
        for e in events
        if e.device_type == DeviceType.CUDA
    ]
    matmul_dtypes = Counter(
        (getattr(e, "input_dtypes", None) or ["unknown"])[0]
        for e in events
        if e.name in MATMUL_OPS and e.device_type == DeviceType.CPU
    )
    return result, findings(kernels, dict(matmul_dtypes), precision)


def cpu_matmul_ops(fn: Callable[[], Any]) -> dict[str, int]:
    """Run fn once under the CPU profiler; the matmul ops it called, as "op dtype": count (e.g.
    "aten::_int_mm Char": the int8 matmuls of a torchao int8 cell did run)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        fn()
    found = Counter(
        f"{e.name} {(getattr(e, 'input_dtypes', None) or ['unknown'])[0]}"
        for e in p.events()
        if e.name in MATMUL_OPS
    )
    return dict(found)


def findings(kernels: list[tuple[str, float]], matmul_dtypes: dict, precision: str) -> dict:
    """What the record keeps from one profiled call."""
    summary = summarize(kernels)
    ok, note = (
        mode_verdict(summary, precision)
        if kernels
        else (None, "the profiler recorded no CUDA kernel (CUPTI unavailable?)")
    )
    busiest: dict[str, float] = {}
    for name, us in kernels:
        busiest[name] = busiest.get(name, 0.0) + us
    top = sorted(busiest.items(), key=lambda kv: -kv[1])[:TOP_KERNELS]
    return {
        **summary,
        "matmul_op_dtypes": matmul_dtypes,
        "kernels": len(kernels),
        "top_kernels": [[name[:160], us] for name, us in top],
        "mode_effective": ok,
        "mode_note": note,
    }
