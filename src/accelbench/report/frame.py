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
from accelbench.report.repeats import cells_frame
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
# training toward quality (measure/convergence.py), as recorded
QUALITY = (
    "dev_f1",
    "best_dev_f1",
    "target_f1",
    "target_reached",
    "steps_to_target",
    "sentences_to_target",
    "time_to_target_train_s",
    "time_to_target_wall_s",
    "undertrained",
    "undertrained_reason",
)
# serve cells' metrics that are columns of their own
SERVE_KEYS = (
    "scenario_metric",
    "scenario_result",
    "scenario_value",
    "served_qps_at_bound",
    "latency_bound_ms",
    "mean_batch_size",
    "loadgen_valid",
    "below_mlperf_minimum",
)
COLUMNS = [
    "run",
    "label",
    *SPEC_KEYS,
    "batch_size_ran",
    "batch_capped",
    "nproc",
    "role",
    "status",
    "repeats",
    "samples_per_s",
    "samples_per_s_low",
    "samples_per_s_high",
    "between_cv",
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
    "f1_low",
    "f1_high",
    "delta_f1",
    "delta_f1_low",
    "delta_f1_high",
    "f1_verdict",
    "f1_gate",
    "accuracy_target",
    "f1_required",
    "reference_undertrained",
    "f1_meaningful",
    *QUALITY,
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
    "device_memory_mb",
    "device_memory_reason",
    "stable",
    "unstable_reasons",
    *SERVE_KEYS,
    "reason",
    "cell_id",
    "run_id",
    "duration_s",
]
# per-record columns that the rows of one cell's repeats are combined from
PER_RECORD = ("repeat", "delta_f1_seeds")


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
        "batch_capped": m.get("batch_capped"),
        "nproc": nproc(spec),
        "role": rec.get("role"),
        "status": rec.get("status"),
        "repeat": rec.get("repeat", 0),
        "repeats": 1,
        "samples_per_s": m.get("samples_per_s"),
        "tokens_per_s": m.get("tokens_per_s"),
        "global_batch": m.get("global_batch"),
        "latency_p50_ms": lat.get("p50"),
        "latency_p90_ms": lat.get("p90"),
        "latency_p99_ms": lat.get("p99"),
        "step_p50_ms": step.get("p50"),
        "step_p99_ms": step.get("p99"),
        "cv": (m.get("device_time_ms") or lat or step).get("cv"),  # what the verdict judged
        "cv_basis": m.get("cv_basis"),
        "f1": m.get("f1"),
        "delta_f1": m.get("delta_f1"),
        "delta_f1_seeds": m.get("delta_f1_seeds"),
        "f1_verdict": m.get("f1_verdict"),
        "f1_gate": m.get("f1_gate"),
        "accuracy_target": m.get("accuracy_target"),
        "f1_required": m.get("f1_required"),
        "reference_undertrained": m.get("reference_undertrained"),
        **{k: m.get(k) for k in QUALITY},
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
        "device_memory_mb": m.get("device_memory_mb"),
        "device_memory_reason": m.get("device_memory_reason"),
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


def _record_rows(records: Sequence[dict], run: str = "") -> list[dict]:
    """One row per record; speedup over the fp32 eager record of the same run, shape and
    repeat; scaling efficiency of multi-process training over its 1-process cell."""
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
    return rows


def records_frame(records: Sequence[dict], run: str = "") -> pd.DataFrame:
    """One row per cell (the summary.csv columns): a cell run with --repeats gets the mean of
    its repeats with 95 % intervals across processes (report/repeats.py)."""
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    rows = pd.DataFrame(_record_rows(records, run)).reindex(columns=[*COLUMNS, *PER_RECORD])
    baseline_of = {records[i]["cell_id"]: b["cell_id"] for i, b in baselines(records).items()}
    return cells_frame(rows, baseline_of, COLUMNS)


def is_false(value: object) -> bool:
    """A boolean column's False (numpy or Python), not its missing values."""
    return value is not None and not pd.isna(value) and not bool(value)


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """The runs' cells; a multi-process cell without a 1-process cell in its own run is scaled
    against one of another run of the same host (e.g. a torchrun job and a plain run)."""
    df = pd.concat([records_frame(r.records, r.name) for r in runs], ignore_index=True)
    named = [(r.name, rec) for r in runs for rec in r.records]
    found: dict[tuple[str, str], list[float]] = {}
    for i, value in _scaling([rec for _, rec in named]).items():
        name, rec = named[i]
        found.setdefault((name, rec["cell_id"]), []).append(value)
    for (name, cell_id), values in found.items():
        rows = (df["run"] == name) & (df["cell_id"] == cell_id) & df["scaling_efficiency"].isna()
        df.loc[rows, "scaling_efficiency"] = sum(values) / len(values)
    return df


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value, spec: str) -> str:
    return "-" if _missing(value) else format(value, spec)


def summary_table(records: Sequence[dict]) -> str:
    """A fixed-width table of every cell with its status, speed and F1 (cells run with
    --repeats: the mean, and the 95 % interval across processes in the note)."""
    head = ["cell", "status", "seq/s", "tok/s", "x fp32", "p50 ms", "F1", "dF1", "note"]
    rows = []
    for row in records_frame(records).to_dict("records"):
        p50 = row["step_p50_ms"] if row["workload"] == "train" else row["latency_p50_ms"]
        notes = []
        if row["status"] != "ok":
            notes.append(row["reason"])
        if isinstance(row["batch_capped"], str):
            notes.append(f"ran at batch {int(row['batch_size_ran'])}: the data held no more")
        elif row["stable"] not in (True, None) and not _missing(row["stable"]):
            notes.append("unstable: " + row["unstable_reasons"])
        if not _missing(row["scenario_result"]) and row["scenario_result"]:
            notes.insert(0, row["scenario_result"])
        if not _missing(row["scaling_efficiency"]):
            notes.insert(0, f"scaling efficiency {row['scaling_efficiency']:.0%}")
        if row["repeats"] > 1 and not _missing(row["samples_per_s_low"]):
            half = (row["samples_per_s_high"] - row["samples_per_s_low"]) / 2
            notes.insert(0, f"{row['repeats']} repeats: ±{half / row['samples_per_s']:.1%}")
        role = row["role"] or "cell"
        rows.append(
            [
                row["label"] + ("" if role == "cell" else f" ({role})"),
                row["status"],
                _fmt(row["samples_per_s"], ",.1f"),
                _fmt(row["tokens_per_s"], ",.0f"),
                _fmt(row["speedup"], ".2f"),
                _fmt(p50, ".2f"),
                _fmt(None if _missing(row["f1"]) else row["f1"] * 100, ".1f"),
                _fmt(None if _missing(row["delta_f1"]) else row["delta_f1"] * 100, "+.2f"),
                "; ".join(notes)[:70],
            ]
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([*lines, *run_warnings(records)])


def reference_undertrained(records: Sequence[dict]) -> str | None:
    """Why the run's fp32 reference is undertrained (its F1 gates were not checked), or None."""
    return next(
        (
            r["metrics"]["reference_undertrained"]
            for r in records
            if r.get("role") == "reference"
            and (r.get("metrics") or {}).get("reference_undertrained")
        ),
        None,
    )


def run_warnings(records: Sequence[dict]) -> list[str]:
    """What a reader must know before any number of the run, printed under its table."""
    out = []
    if weak := reference_undertrained(records):
        out.append(f"WARNING: reference undertrained: {weak}")
    return out
