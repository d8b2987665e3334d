"""The one builder of a record's speed, latency, memory, telemetry, FLOPs and stability keys,
for both workloads (their own keys, F1 and training facts, they add themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from accelbench.backends.precision import dtype_key
from accelbench.config.specs import CellSpec
from accelbench.measure import flops
from accelbench.measure.memory import peak_rss_mb
from accelbench.measure.stats import summarize, verdict
from accelbench.measure.telemetry import stability_reasons
from accelbench.workloads.common import read_ceilings


@dataclass(frozen=True)
class TimedWork:
    """The timed iterations behind a cell's throughput, and the work they did."""

    samples_s: Sequence[float]  # one per kept iteration (optimizer step or batch)
    sentences: int  # real sentences over the kept iterations
    tokens: int  # real (non-pad) tokens
    shapes: Sequence[tuple[int, int]]  # padded (rows, width) of every batch computed
    cv_basis: str
    cv: float | None = None  # the CV that judges stability; None: the samples' own
    compiled: int = 0  # timed iterations left out because the runtime compiled during them

    def summary_ms(self) -> dict:
        out = summarize(self.samples_s, 1e3)
        if self.cv is not None:
            out["cv"] = self.cv
        return out


def memory_figures(device: str, session) -> dict:
    """Peak host RSS, and on CUDA the session's device memory (from its own allocator)."""
    out = {"peak_rss_mb": peak_rss_mb()}
    if device == "cuda":
        out.update(session.device_memory())
    return out


def gpu(device: str) -> tuple[str | None, int | None]:
    """(name, SM count) of the GPU a CUDA cell runs on; (None, None) on CPU."""
    if device != "cuda":
        return None, None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return torch.cuda.get_device_name(), props.multi_processor_count


def compute_figures(
    model_config,
    cell: CellSpec,
    shapes: Sequence[tuple[int, int]],
    seconds: float,
    run_dir: Path,
    devices: int = 1,
) -> dict:
    """FLOPs executed over the timed iterations (padded shapes), TFLOP/s, and MFU against the
    datasheet peak (GPUs) and against the matmul ceiling measured for this run.

    `devices`: how many devices did the work (data-parallel GPUs); utilization is per device.
    """
    shape = flops.encoder_shape(model_config)
    train = cell.workload == "train"
    total = sum(flops.step_flops(shape, b, t, train) for b, t in shapes)
    achieved = total / seconds / 1e12 if seconds > 0 else 0.0
    per_device = achieved / devices
    # int8/fp8/int4: on CUDA no peak or ceiling of theirs (MFU null, with the reason), not the
    # fp32 one they would exceed many times; on CPU against the fp32 ceiling measured
    key = dtype_key(cell.precision) or (cell.precision if cell.device == "cuda" else "float32")
    measured = read_ceilings(run_dir).get(cell.device, {})
    ceiling = measured.get("matmul_tflops", {}).get(key)
    return {
        "model_params_non_embedding": shape["n_params"],
        "flops_total": total,
        "achieved_tflops": achieved,
        "mfu_dtype": key,
        **flops.mfu(per_device, *gpu(cell.device), key),
        **flops.against_ceiling(
            per_device,
            ceiling,
            f"{_size(measured, key)}^3 {key} matmul "
            + measured.get("source", "measured by this run")
            if ceiling
            else None,
        ),
    }


def _size(measured: dict, key: str) -> int:
    return measured.get("matmul_sizes", {}).get(key, measured["matmul_size"])


def batch_ran(asked: int, shapes: Sequence[tuple[int, int]]) -> dict:
    """The batch that really ran: the largest batch computed. Fewer sentences than asked for
    (the data holds fewer than --batch-size) flags the cell with `batch_capped`."""
    ran = max((rows for rows, _ in shapes), default=asked)
    if ran >= asked:
        return {"batch_size_ran": asked, "batch_capped": None}
    return {
        "batch_size_ran": ran,
        "batch_capped": f"batch {asked} asked for, but the data held {ran} sentences: "
        f"it ran at batch {ran}",
    }


def build(
    cell: CellSpec,
    work: TimedWork,
    *,
    model_config,
    run_dir: Path,
    memory: dict,
    telemetry: dict,
    devices: int = 1,
    latency: TimedWork | None = None,
) -> dict:
    """The record's metrics from what the timed loop(s) measured.

    `work` is the throughput loop: its samples give samples_per_s, tokens_per_s and the
    stability verdict, and are `step_time_ms` (train) or, for inference, `latency_ms` when the
    same loop measured request latency (CPU) and `device_time_ms` when `latency` (CUDA: host
    time per synchronized call) was measured apart."""
    total = sum(work.samples_s)
    timing = work.summary_ms()
    unit = "steps" if cell.workload == "train" else "batches"
    out = {
        "samples_per_s": work.sentences / total,
        "tokens_per_s": work.tokens / total,
        "padded_tokens_per_s": sum(rows * width for rows, width in work.shapes) / total,
        **batch_ran(cell.batch_size, work.shapes),
        f"timed_{unit}": len(work.samples_s),
        f"timed_{unit}_compiled": work.compiled,
        "cv_basis": work.cv_basis,
        "stability": verdict(timing, stability_reasons(telemetry["telemetry"])),
        **memory,
        **telemetry,
        **compute_figures(model_config, cell, work.shapes, total, run_dir, devices),
    }
    if cell.workload == "train":
        out["step_time_ms"] = timing
    elif latency is None:
        out["latency_ms"] = timing
    else:
        out["device_time_ms"] = timing
        out["latency_ms"] = latency.summary_ms()
        out["timed_batches_compiled"] += latency.compiled
    return out
