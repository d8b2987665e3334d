"""Records -> one flat pandas row per cell; the summary table printed after a run."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

COLUMNS = [
    "workload",
    "runtime",
    "device",
    "precision",
    "padding",
    "batch_size",
    "seq_len",
    "role",
    "status",
    "samples_per_s",
    "tokens_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "step_p50_ms",
    "f1",
    "delta_f1",
    "argmax_agreement",
    "max_abs_logit_diff",
    "achieved_tflops",
    "mfu",
    "peak_rss_mb",
    "cuda_peak_allocated_mb",
    "stable",
    "unstable_reasons",
    "reason",
    "cell_id",
]


def _row(rec: dict) -> dict:
    spec, m = rec.get("spec", {}), rec.get("metrics", {})
    lat, step = m.get("latency_ms") or {}, m.get("step_time_ms") or {}
    stab = m.get("stability") or {}
    return {
        **{
            k: spec.get(k)
            for k in (
                "workload",
                "runtime",
                "device",
                "precision",
                "padding",
                "batch_size",
                "seq_len",
            )
        },
        "role": rec.get("role"),
        "status": rec.get("status"),
        "samples_per_s": m.get("samples_per_s"),
        "tokens_per_s": m.get("tokens_per_s"),
        "latency_p50_ms": lat.get("p50"),
        "latency_p99_ms": lat.get("p99"),
        "step_p50_ms": step.get("p50"),
        "f1": m.get("f1"),
        "delta_f1": m.get("delta_f1"),
        "argmax_agreement": m.get("argmax_agreement"),
        "max_abs_logit_diff": m.get("max_abs_logit_diff"),
        "achieved_tflops": m.get("achieved_tflops"),
        "mfu": m.get("mfu"),
        "peak_rss_mb": m.get("peak_rss_mb"),
        "cuda_peak_allocated_mb": m.get("cuda_peak_allocated_mb"),
        "stable": stab.get("stable"),
        "unstable_reasons": "; ".join(stab.get("reasons", [])),
        "reason": rec.get("reason", ""),
        "cell_id": rec.get("cell_id"),
    }


def records_frame(records: Sequence[dict]) -> pd.DataFrame:
    return pd.DataFrame([_row(r) for r in records], columns=COLUMNS)


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def summary_table(records: Sequence[dict]) -> str:
    """A fixed-width table of every cell with its status, speed and F1."""
    head = ["cell", "status", "seq/s", "tok/s", "p50 ms", "F1", "dF1", "note"]
    rows = []
    for rec, row in zip(records, records_frame(records).to_dict("records"), strict=True):
        p50 = row["latency_p50_ms"] if row["workload"] == "infer" else row["step_p50_ms"]
        note = (
            rec.get("reason", "")
            if row["status"] != "ok"
            else ("" if row["stable"] in (True, None) else "unstable: " + row["unstable_reasons"])
        )
        rows.append(
            [
                rec.get("label", ""),
                row["status"],
                _fmt(row["samples_per_s"], ",.1f"),
                _fmt(row["tokens_per_s"], ",.0f"),
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
