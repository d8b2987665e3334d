"""One row per cell from the rows of its repeats (`--repeats N`: N fresh processes; training
repeats are seeds): means with 95 % intervals across processes, beside the within-process
figures. A cell that ran once keeps its row as it is."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from accelbench.measure.spread import mean_ci, ratio_across
from accelbench.report.ratios import MEASURED

# figures averaged over the measured repeats of a cell (the within-process ones included)
MEAN = (
    "tokens_per_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "step_p50_ms",
    "step_p99_ms",
    "cv",
    "argmax_agreement",
    "final_loss",
    "achieved_tflops",
    "mfu",
    "scaling_efficiency",
    "dev_f1",
    "best_dev_f1",
    "steps_to_target",  # over the repeats that reached the target
    "sentences_to_target",
    "time_to_target_train_s",
    "time_to_target_wall_s",
)
MAX = (
    "max_abs_logit_diff",
    "peak_rss_mb",
    "cuda_peak_allocated_mb",
    "cuda_peak_reserved_mb",
    "device_memory_mb",
)


def _status(group: pd.DataFrame) -> tuple[str, str]:
    """ok when every repeat is; else the verdict across seeds (numeric_fail on the last
    repeat), else the first repeat that failed, with its reason."""
    bad = group[group["status"] != "ok"]
    if bad.empty:
        return "ok", ""
    failing = bad[bad["status"] == "numeric_fail"]
    row = (failing if not failing.empty else bad).iloc[-1 if not failing.empty else 0]
    repeat = "" if len(group) == 1 else f"repeat {int(row['repeat']) + 1}: "
    return row["status"], repeat + str(row["reason"])


def _combine(group: pd.DataFrame, speed: pd.Series | None) -> dict:
    out = group.iloc[0].to_dict()
    out["repeats"] = len(group)
    out["status"], out["reason"] = _status(group)
    measured = group[group["status"].isin(MEASURED)]
    if len(group) == 1 or measured.empty:
        return out
    out["duration_s"] = group["duration_s"].sum()
    out["stable"] = bool(measured["stable"].fillna(True).all())
    out["unstable_reasons"] = "; ".join(r for r in measured["unstable_reasons"].unique() if r)
    for column in MEAN:
        out[column] = measured[column].mean()
    for column in MAX:
        out[column] = measured[column].max()
    for flag in ("target_reached", "undertrained"):  # all repeats reached / any undertrained
        known = measured[flag].dropna()
        out[flag] = (
            (known.all() if flag == "target_reached" else known.any()) if len(known) else None
        )
    sps = mean_ci(measured["samples_per_s"].tolist())
    out.update(samples_per_s=sps.mean, samples_per_s_low=sps.low, samples_per_s_high=sps.high)
    out["between_cv"] = sps.stdev / sps.mean if sps.stdev is not None and sps.mean else None
    f1 = measured["f1"].dropna().tolist()
    if f1:
        spread = mean_ci(f1)
        out.update(f1=spread.mean, f1_low=spread.low, f1_high=spread.high)
    last = group.iloc[-1]
    if isinstance(last.get("delta_f1_seeds"), dict):  # training: paired with the reference
        d = last["delta_f1_seeds"]
        out.update(delta_f1=d["mean"], delta_f1_low=d["low"], delta_f1_high=d["high"])
    else:
        out["delta_f1"] = measured["delta_f1"].mean()
    if speed is not None and (base := speed.get(out["cell_id"])) is not None:
        ci = ratio_across(base, measured["samples_per_s"].tolist())
        if ci is not None:
            out.update(speedup=ci.ratio, speedup_low=ci.low, speedup_high=ci.high)
    return out


def cells_frame(rows: pd.DataFrame, baseline_of: dict[str, str], columns: Sequence[str]):
    """`rows`: one per record, with `run`, `cell_id` and `repeat`; `baseline_of`: cell_id ->
    the cell_id of its fp32 eager baseline (speedups across processes need both sides')."""
    per_process = {
        cell: g.loc[g["status"].isin(MEASURED), "samples_per_s"].tolist()
        for cell, g in rows.groupby("cell_id", sort=False)
    }
    speed = pd.Series(
        {cell: per_process.get(base) for cell, base in baseline_of.items() if cell != base},
        dtype=object,
    )
    cells = [
        _combine(group.sort_values("repeat", kind="stable"), speed)
        for _, group in rows.groupby(["run", "cell_id"], sort=False)
    ]
    frame = pd.DataFrame(cells, columns=list(columns))
    return frame.astype({"repeats": "Int64"}) if len(frame) else frame
