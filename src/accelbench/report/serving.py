"""The serving section of a report: served QPS at the p99 bound, single-stream latency and
offline throughput (MLPerf LoadGen scenarios), and latency against offered load.

Each scenario's metric is compared with the fp32 eager cell of the same run, scenario and shape
("× fp32 eager", higher is better: QPS or samples/s over the baseline's, or the baseline's p90
over the cell's). LoadGen gives one figure per run, so these ratios carry no interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from accelbench.report import plots
from accelbench.report.doc import Block, Bullets, Cell, Figure, Heading, Para, Table
from accelbench.report.labels import cell_labels, ordered, varying
from accelbench.report.plots import png
from accelbench.report.ratios import MEASURED
from accelbench.report.tables import (
    SHAPE_COLUMNS,
    delta_cell,
    f1_cell,
    missing,
    num,
    runtime_text,
)

BASE_KEYS = ("run_id", "scenario", "device", "padding", "batch_size", "seq_len")
LEGEND = (
    ("× fp32 eager", "the scenario's metric against the fp32 eager cell of the same scenario"),
    ("LoadGen", "MLPerf LoadGen's verdict on the run the figures come from; notes: its reasons"),
    ("MLPerf", "short: the run was shorter than MLPerf's rules require (see notes)"),
    ("ΔF1", "entity F1 points against the run's fp32 eager reference (LoadGen accuracy mode)"),
)


def _ratio(row: pd.Series, base: pd.Series | None) -> Cell:
    if base is None or missing(row["scenario_value"]) or missing(base["scenario_value"]):
        return Cell("–", numeric=True)
    if row.name == base.name:
        return Cell("1 (baseline)", tone="muted", numeric=True)
    value, ref = float(row["scenario_value"]), float(base["scenario_value"])
    ratio = value / ref if row["scenario_metric"] != "p90_latency_ms" else ref / value
    return Cell(f"{ratio:.2f}×", "good" if ratio > 1 else "bad" if ratio < 1 else None, None, True)


def _verdict(row: pd.Series, record: dict) -> Cell:
    reasons = "; ".join(record["metrics"].get("loadgen_reasons") or []) or None
    if row["loadgen_valid"] is True:
        return Cell("VALID", note=reasons)
    return Cell("no VALID run" if row["scenario"] == "server" else "INVALID", "bad", reasons)


def _mlperf(record: dict) -> Cell:
    shortfall = record["metrics"].get("mlperf_shortfall") or []
    if not shortfall:
        return Cell("met")
    return Cell("short", "muted", "; ".join(shortfall))


def _table(df: pd.DataFrame, records: Sequence[dict], scenario: str) -> Table | None:
    part = df[(df["scenario"] == scenario) & df["status"].isin(MEASURED)]
    if part.empty:
        return None
    shapes = [c for c in SHAPE_COLUMNS if c in varying(part)]
    bases = {
        tuple(r[k] for k in BASE_KEYS): r
        for _, r in part.iterrows()
        if r["runtime"] == "eager" and r["precision"] == "fp32"
    }
    heads = [SHAPE_COLUMNS[c] for c in shapes] + ["runtime", "precision"]
    if scenario == "server":
        heads += ["bound ms", "QPS at bound", "× fp32 eager", "p50 ms", "p99 ms", "mean batch"]
        heads += ["trials"]
    elif scenario == "single-stream":
        heads += ["p50 ms", "p90 ms", "p99 ms", "p90 early-stop ms", "× fp32 eager", "QPS"]
    else:
        heads += ["samples/s", "tok/s", "× fp32 eager"]
    heads += ["LoadGen", "F1 %", "ΔF1", "MLPerf", "status"]
    rows = []
    for i, row in ordered(part).iterrows():
        record = records[i]
        base = bases.get(tuple(row[k] for k in BASE_KEYS))
        lat = record["metrics"].get("latency_ms") or {}
        cells = [Cell(str(row[c])) for c in shapes]
        cells += [Cell(runtime_text(row)), Cell(row["precision"])]
        if scenario == "server":
            trials = record["metrics"].get("server_trials") or []
            cells += [
                Cell(num(row["latency_bound_ms"]), numeric=True),
                Cell(num(row["served_qps_at_bound"]), numeric=True),
                _ratio(row, base),
                Cell(num(lat.get("p50")), numeric=True),
                Cell(num(lat.get("p99")), numeric=True),
                Cell(num(row["mean_batch_size"]), numeric=True),
                Cell(str(len(trials)), numeric=True),
            ]
        elif scenario == "single-stream":
            cells += [Cell(num(lat.get(p)), numeric=True) for p in ("p50", "p90", "p99")]
            cells += [
                Cell(num(row["scenario_value"]), numeric=True),
                _ratio(row, base),
                Cell(num(row["samples_per_s"]), numeric=True),
            ]
        else:
            cells += [
                Cell(num(row["samples_per_s"]), numeric=True),
                Cell(num(row["tokens_per_s"]), numeric=True),
                _ratio(row, base),
            ]
        status = Cell(row["status"], "bad" if row["status"] != "ok" else None)
        cells += [_verdict(row, record), f1_cell(row), delta_cell(row), _mlperf(record), status]
        rows.append(tuple(cells))
    return Table(tuple(heads), tuple(rows), TITLES[scenario])


TITLES = {
    "server": "Server: highest QPS whose p99 latency LoadGen judges within the bound",
    "single-stream": "Single-stream: one sentence at a time, latency per query",
    "offline": "Offline: all samples at once, throughput",
}


def _best(df: pd.DataFrame) -> list[str]:
    """One line per scenario: its best cell by the scenario's metric."""
    out = []
    for scenario, what in (
        ("server", "highest QPS at the p99 bound"),
        ("single-stream", "lowest p90 latency"),
        ("offline", "highest throughput"),
    ):
        cells = df[df["scenario"] == scenario]
        # an INVALID run's figure holds for nothing LoadGen vouches for: never a headline
        valid = cells["loadgen_valid"].map(lambda v: v is not None and not pd.isna(v) and bool(v))
        part = cells[cells["scenario_value"].notna() & (cells["status"] == "ok") & valid]
        if part.empty:
            if cells["status"].isin(MEASURED).any():
                out.append(f"{scenario}: no cell has a VALID LoadGen run: nothing to name")
            continue
        lower = scenario == "single-stream"
        top = part.loc[
            part["scenario_value"].idxmin() if lower else part["scenario_value"].idxmax()
        ]
        unit = {"server": "QPS", "single-stream": "ms", "offline": "samples/s"}[scenario]
        # named among all the scenario's cells, so that what sets it apart is in its name
        name = cell_labels(cells, exclude=("scenario",)).loc[top.name]
        out.append(f"{scenario}: {what}: {name}, {num(top['scenario_value'])} {unit}")
    return out


def serving_blocks(df: pd.DataFrame, records: Sequence[dict]) -> list[Block]:
    """The serving section; `records` are the frame's records in its row order."""
    serve = df[df["workload"] == "serve"]
    if not serve["status"].isin(MEASURED).any():
        return []
    blocks: list[Block] = [Heading("Serving (MLPerf LoadGen scenarios)")]
    if best := _best(serve):
        blocks.append(Bullets(tuple(best)))
    measured = serve[serve["status"].isin(MEASURED)]
    short = measured[measured["below_mlperf_minimum"].map(lambda v: v is True)]
    if len(short):
        blocks.append(
            Para(
                f"{len(short)} of {len(measured)} serve cells ran shorter than MLPerf's rules "
                "require (e.g. 600 s per run): LoadGen's verdicts hold for the settings they "
                "ran with; they are not MLPerf results.",
                tone="warn",
            )
        )
    tables = [_table(df, records, s) for s in ("server", "single-stream", "offline")]
    tables = [t for t in tables if t is not None]
    if tables:  # the legend once, under the last table
        tables[-1] = replace(tables[-1], legend=LEGEND)
    blocks += tables
    server = df[(df["scenario"] == "server") & df["status"].isin(MEASURED)]
    curves = {
        name: (records[i]["spec"]["precision"], records[i]["metrics"].get("server_trials") or [])
        for i, name in cell_labels(ordered(server), exclude=("scenario",)).items()
    }
    fig = plots.latency_vs_load(curves, sorted(set(server["latency_bound_ms"].dropna())))
    if fig is not None:
        blocks.append(
            Figure(
                "serve_latency_vs_load",
                png(fig),
                "server: p50 (dashed) and p99 (solid) latency against offered load, one line per "
                "cell; filled: LoadGen VALID, hollow: INVALID; dotted: the p99 bound",
            )
        )
    return blocks
