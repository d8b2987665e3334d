"""Ceilings measured on the spot: dense matmul TFLOP/s per compute dtype, copy bandwidth.

MFU against these says how close a cell gets to what this machine really does, next to the
datasheet figure (flops.PARTS). Random inputs, never zeros. Each figure: about a second of
warm-up (clocks and caches settle; launch and first-call costs leave), then blocks of many
back-to-back calls, each block timed as a whole (CUDA events on CUDA, so the host's launch
overhead hides behind queued work as it does in a real loop; the host clock on CPU), and the
median of the blocks' per-call times. A dtype this machine only emulates (bf16 on a CPU without
AVX-512 BF16 or AMX: a 1536³ call takes seconds) is measured on a smaller square, sized from a
probe call so one call stays near MAX_CALL_S; the size is recorded with the figure.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from accelbench.errors import UserError
from accelbench.measure.timing import IterationTimer, Timer, synchronize

SIZES = {"cpu": 1536, "cuda": 8192}
PROBE_SIZE = 256
MAX_CALL_S = 0.25
DTYPES = {
    "float32": torch.float32,
    "tf32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class Schedule:
    warmup_s: float = 1.0  # warm-up length
    block_s: float = 0.1  # a timed block's target length (its call count is sized from it)
    blocks: int = 7


def per_call_s(
    fn: Callable[[], object],
    sync: Callable[[], None],
    make_timer: Callable[[], Timer],
    schedule: Schedule = Schedule(),
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds per call of fn: warm up for schedule.warmup_s (synchronized per call), size a
    block from the warm-up rate, time schedule.blocks blocks of back-to-back calls, median."""
    calls, t0 = 0, clock()
    while True:
        fn()
        sync()
        calls += 1
        elapsed = clock() - t0
        if elapsed >= schedule.warmup_s:
            break
    per_block = max(1, math.ceil(schedule.block_s * calls / elapsed))
    timer = make_timer()
    for _ in range(schedule.blocks):
        timer.start()
        for _ in range(per_block):
            fn()
        timer.stop()
    sync()
    return statistics.median(timer.samples()) / per_block


def _time(fn: Callable[[], object], device: str) -> float:
    return per_call_s(fn, lambda: synchronize(device), lambda: IterationTimer(device))


def _operands(n: int, device: str, dtype_key: str) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=DTYPES[dtype_key], generator=gen)
    b = torch.randn(n, n, device=device, dtype=DTYPES[dtype_key], generator=gen)
    return a, b, torch.empty_like(a)


def matmul_size(device: str, dtype_key: str, clock: Callable[[], float] = time.perf_counter) -> int:
    """SIZES[device], halved while a call of that size would take over MAX_CALL_S, predicted
    from a PROBE_SIZE call (n³ work)."""
    a, b, out = _operands(PROBE_SIZE, device, dtype_key)
    torch.mm(a, b, out=out)
    synchronize(device)
    t0 = clock()
    torch.mm(a, b, out=out)
    synchronize(device)
    n = SIZES[device]
    predicted = (clock() - t0) * (n / PROBE_SIZE) ** 3
    while predicted > MAX_CALL_S and n // 2 >= PROBE_SIZE:
        n //= 2
        predicted /= 8
    return n


def matmul_tflops(device: str, dtype_key: str) -> tuple[float, int]:
    """(TFLOP/s, the square's size)."""
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = dtype_key == "tf32"
    try:
        n = matmul_size(device, dtype_key)
        a, b, out = _operands(n, device, dtype_key)
        seconds = _time(lambda: torch.mm(a, b, out=out), device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return 2 * n**3 / seconds / 1e12, n


def copy_gbps(device: str) -> float:
    """Device-memory copy bandwidth, bytes read plus bytes written."""
    n = (1 << 30 if device == "cuda" else 1 << 27) // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)
    seconds = _time(lambda: dst.copy_(src), device)
    return 2 * n * 4 / seconds / 1e9


def measure(device: str, dtype_keys: tuple[str, ...]) -> dict:
    """{"matmul_tflops": {dtype: value or None}, "copy_gbps", "matmul_size", "matmul_sizes",
    "reasons"}."""
    s = Schedule()
    out: dict = {
        "device": device,
        "matmul_size": SIZES[device],
        "matmul_sizes": {},  # per dtype, where smaller than matmul_size (an emulated dtype)
        "matmul_tflops": {},
        "reasons": {},
        "method": f"{s.warmup_s:g} s warm-up, median of {s.blocks} blocks of back-to-back "
        f"calls (~{s.block_s:g} s each), " + ("CUDA events" if device == "cuda" else "host clock"),
    }
    for key in dtype_keys:
        if device == "cpu" and key in ("tf32", "float16"):
            out["matmul_tflops"][key] = None
            out["reasons"][key] = f"{key} matmul is not a CPU compute mode here"
            continue
        out["matmul_tflops"][key], n = matmul_tflops(device, key)
        if n != SIZES[device]:
            out["matmul_sizes"][key] = n
    out["copy_gbps"] = copy_gbps(device)
    return out


def load_file(path: str) -> dict[str, dict]:
    """Ceilings measured before, {device: what `measure` returned}, from RUN_DIR/ceilings.json
    or the JSON `accelbench env --ceilings` prints."""
    fix = (
        "give RUN_DIR/ceilings.json of an earlier run or the output of `accelbench env --ceilings`"
    )
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"--ceilings {path}: no such file; {fix}")
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"--ceilings {path} is not JSON ({exc}); {fix}") from None
    if isinstance(data, dict) and isinstance(data.get("ceilings"), dict):
        data = data["ceilings"]
    valid = (
        isinstance(data, dict)
        and data
        and set(data) <= set(SIZES)
        and all(
            isinstance(v, dict)
            and isinstance(v.get("matmul_tflops"), dict)
            and isinstance(v.get("matmul_size"), int)
            for v in data.values()
        )
    )
    if not valid:
        raise UserError(f"--ceilings {path} holds no matmul ceilings per device (cpu, cuda); {fix}")
    return data
