"""Ceilings measured on the spot: dense matmul TFLOP/s per compute dtype, copy bandwidth.

MFU against these says how close a cell gets to what this machine really does, next to the
datasheet figure (flops.PEAK_TFLOPS). Random inputs, never zeros; warm-up; median of repeats.
"""

from __future__ import annotations

import statistics
import time

import torch

from accelbench.measure.timing import synchronize

SIZES = {"cpu": 1536, "cuda": 8192}
DTYPES = {
    "float32": torch.float32,
    "tf32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
WARMUP, REPEATS = 2, 5


def _time(fn, device: str) -> float:
    for _ in range(WARMUP):
        fn()
    times = []
    for _ in range(REPEATS):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_tflops(device: str, dtype_key: str) -> float:
    n = SIZES[device]
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=DTYPES[dtype_key], generator=gen)
    b = torch.randn(n, n, device=device, dtype=DTYPES[dtype_key], generator=gen)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = dtype_key == "tf32"
    try:
        seconds = _time(lambda: torch.mm(a, b), device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return 2 * n**3 / seconds / 1e12


def copy_gbps(device: str) -> float:
    """Device-memory copy bandwidth, bytes read plus bytes written."""
    n = (1 << 30 if device == "cuda" else 1 << 27) // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    seconds = _time(lambda: dst.copy_(src), device)
    return 2 * n * 4 / seconds / 1e9


def measure(device: str, dtype_keys: tuple[str, ...]) -> dict:
    """{"matmul_tflops": {dtype: value or None}, "copy_gbps", "matmul_size", "reasons"}."""
    out: dict = {"device": device, "matmul_size": SIZES[device], "matmul_tflops": {}, "reasons": {}}
    for key in dtype_keys:
        if device == "cpu" and key in ("tf32", "float16"):
            out["matmul_tflops"][key] = None
            out["reasons"][key] = f"{key} matmul is not a CPU compute mode here"
            continue
        out["matmul_tflops"][key] = matmul_tflops(device, key)
    out["copy_gbps"] = copy_gbps(device)
    return out
