"""Run directories -> one flat pandas row per cell (summary.csv); the table printed after a run."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from accelbench.errors import UserError
from accelbench.measure.scaling import efficiency, nproc, scaling_baselines
from accelbench.measure.stats import RatioCI
from accelbench.report.ratios import baselines, speed_ratio
from accelbench.runner.store import RESULTS, read_records

SPEC_KEYS = (
    "workload",
    "scenario",
    "runtime",
    "compile_mode",
    "device",
    "precision",
    "padding",
    "batch_size",
    "seq_len",
    "model",
    "dataset",
    "synthetic",
)
COLUMNS = [
    "run",
    "label",
    *SPEC_KEYS,
    "batch_size_ran",
    "nproc",
    "role",
    "status",
    "samples_per_s",
    "tokens_per_s",
    "speedup",
    "speedup_low",
    "speedup_high",
    "global_batch",
    "scaling_efficiency",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "step_p50_ms",
    "step_p99_ms",
    "cv",
    "cv_basis",
    "f1",
    "delta_f1",
    "f1_meaningful",
    "argmax_agreement",
    "max_abs_logit_diff",
    "final_loss",
    "achieved_tflops",
    "mfu",
    "mfu_reason",
    "peak_source",
    "peak_rss_mb",
    "cuda_peak_allocated_mb",
    "cuda_peak_reserved_mb",
    "stable",
    "unstable_reasons",
    "scenario_metric",
    "scenario_value",
    "served_qps_at_bound",
    "latency_bound_ms",
    "mean_batch_size",
    "loadgen_valid",
    "below_mlperf_minimum",
    "reason",
    "cell_id",
    "run_id",
    "duration_s",
]


# serve cells' metrics that are columns of their own
SERVE_KEYS = (
    "scenario_metric",
    "scenario_value",
    "served_qps_at_bound",
    "latency_bound_ms",
    "mean_batch_size",
    "loadgen_valid",
    "below_mlperf_minimum",
)


@dataclass(frozen=True)
class Run:
    """A run directory as stored: its records and run.json (empty if absent)."""

    name: str
    path: Path
    records: tuple[dict, ...]
    meta: dict


def load_run(path: Path) -> Run:
    path = Path(path)
    records = read_records(path / RESULTS)
    if not records:
        raise UserError(
            f"{path} holds no results ({RESULTS} missing or empty): give a "
            "directory written by accelbench run"
        )
    meta_path = path / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return Run(path.resolve().name, path, tuple(records), meta)


def _row(rec: dict, run: str = "") -> dict:
    spec, m = rec.get("spec", {}), rec.get("metrics", {})
    lat, step = m.get("latency_ms") or {}, m.get("step_time_ms") or {}
    stab = m.get("stability") or {}
    return {
        "run": run,
        "label": rec.get("label", ""),
        **{k: spec.get(k) for k in SPEC_KEYS},
        "batch_size_ran": m.get("batch_size_ran"),
        "nproc": nproc(spec),
        "role": rec.get("role"),
        "status": rec.get("status"),
        "samples_per_s": m.get("samples_per_s"),
        "tokens_per_s": m.get("tokens_per_s"),
        "global_batch": m.get("global_batch"),
        "latency_p50_ms": lat.get("p50"),
        "latency_p90_ms": lat.get("p90"),
        "latency_p99_ms": lat.get("p99"),
        "step_p50_ms": step.get("p50"),
        "step_p99_ms": step.get("p99"),
        "cv": (lat or step).get("cv"),
        "cv_basis": m.get("cv_basis"),
        "f1": m.get("f1"),
        "delta_f1": m.get("delta_f1"),
        "f1_meaningful": m.get("f1_meaningful"),
        "argmax_agreement": m.get("argmax_agreement"),
        "max_abs_logit_diff": m.get("max_abs_logit_diff"),
        "final_loss": m.get("final_loss"),
        "achieved_tflops": m.get("achieved_tflops"),
        "mfu": m.get("mfu"),
        "mfu_reason": m.get("mfu_reason"),
        "peak_source": m.get("peak_source"),
        "peak_rss_mb": m.get("peak_rss_mb"),
        "cuda_peak_allocated_mb": m.get("cuda_peak_allocated_mb"),
        "cuda_peak_reserved_mb": m.get("cuda_peak_reserved_mb"),
        "stable": stab.get("stable"),
        "unstable_reasons": "; ".join(stab.get("reasons", [])),
        **{k: m.get(k) for k in SERVE_KEYS},
        "reason": rec.get("reason", ""),
        "cell_id": rec.get("cell_id"),
        "run_id": rec.get("run_id"),
        "duration_s": rec.get("duration_s"),
    }


def _scaling(records: Sequence[dict]) -> dict[int, float]:
    """index of a multi-process train record -> its scaling efficiency over its 1-process cell."""
    return {
        i: efficiency(
            records[i]["metrics"]["samples_per_s"],
            nproc(records[i]["spec"]),
            base["metrics"]["samples_per_s"],
        )
        for i, base in scaling_baselines(records).items()
    }


def records_frame(records: Sequence[dict], run: str = "") -> pd.DataFrame:
    """One row per record; speedup over the fp32 eager cell of the same run and shape; scaling
    efficiency of multi-process training over its 1-process cell."""
    rows = [_row(r, run) for r in records]
    for i, value in _scaling(records).items():
        rows[i]["scaling_efficiency"] = value
    for i, base in baselines(records).items():
        ci = RatioCI(1.0, 1.0, 1.0, 0.95) if base is records[i] else speed_ratio(base, records[i])
        if ci is not None and rows[i]["workload"] != "serve":  # serve: see report/serving.py
            rows[i].update(speedup=ci.ratio, speedup_low=ci.low, speedup_high=ci.high)
        b_f1, f1 = base.get("metrics", {}).get("f1"), rows[i]["f1"]
        if rows[i]["delta_f1"] is None and f1 is not None and b_f1 is not None:
            rows[i]["delta_f1"] = f1 - b_f1
    return pd.DataFrame(rows, columns=COLUMNS)


def is_false(value: object) -> bool:
    """A boolean column's False (numpy or Python), not its missing values."""
    return value is not None and not pd.isna(value) and not bool(value)


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """The runs' rows; a multi-process cell without a 1-process cell in its own run is scaled
    against one of another run of the same host (e.g. a torchrun job and a plain run)."""
    df = pd.concat([records_frame(r.records, r.name) for r in runs], ignore_index=True)
    for i, value in _scaling([rec for r in runs for rec in r.records]).items():
        df.loc[i, "scaling_efficiency"] = value
    return df


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value, spec: str) -> str:
    return "-" if _missing(value) else format(value, spec)


def summary_table(records: Sequence[dict]) -> str:
    """A fixed-width table of every cell with its status, speed and F1."""
    head = ["cell", "status", "seq/s", "tok/s", "x fp32", "p50 ms", "F1", "dF1", "note"]
    rows = []
    for rec, row in zip(records, records_frame(records).to_dict("records"), strict=True):
        p50 = row["step_p50_ms"] if row["workload"] == "train" else row["latency_p50_ms"]
        note = (
            rec.get("reason", "")
            if row["status"] != "ok"
            else ("" if row["stable"] in (True, None) else "unstable: " + row["unstable_reasons"])
        )
        if rec.get("metrics", {}).get("scenario_result"):
            served = rec["metrics"]["scenario_result"]
            note = f"{served}; {note}" if note else served
        if not _missing(row["scaling_efficiency"]):
            scaled = f"scaling efficiency {row['scaling_efficiency']:.0%}"
            note = f"{scaled}; {note}" if note else scaled
        role = rec.get("role", "cell")
        rows.append(
            [
                rec.get("label", "") + ("" if role == "cell" else f" ({role})"),
                row["status"],
                _fmt(row["samples_per_s"], ",.1f"),
                _fmt(row["tokens_per_s"], ",.0f"),
                _fmt(row["speedup"], ".2f"),
                _fmt(p50, ".2f"),
                _fmt(row["f1"] * 100 if row["f1"] is not None else None, ".1f"),
                _fmt(row["delta_f1"] * 100 if row["delta_f1"] is not None else None, "+.2f"),
                note[:70],
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
