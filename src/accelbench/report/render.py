"""`accelbench report`: report.html (self-contained), report.md (+ figures/), summary.csv."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure as MplFigure

from accelbench.measure.stats import CV_LIMIT
from accelbench.report import plots
from accelbench.report.doc import Block, Bullets, Figure, Heading, Para
from accelbench.report.frame import (
    Run,
    is_false,
    load_run,
    reference_undertrained,
    runs_frame,
)
from accelbench.report.html import to_html
from accelbench.report.labels import cell_labels, ordered
from accelbench.report.markdown import to_markdown
from accelbench.report.mlperf import mlperf_blocks
from accelbench.report.plots import png
from accelbench.report.ratios import MEASURED
from accelbench.report.serving import serving_blocks
from accelbench.report.tables import (
    environment_tables,
    not_run_table,
    num,
    workload_table,
)
from accelbench.report.training import time_to_target_table, undertrained_notes

HALF = ("bf16", "fp16", "bf16-weights", "fp16-weights")  # precisions that compute in 16 bits

TITLES = {"train": "Training (fine-tuning)", "infer": "Inference"}


def _figure(name: str, fig: MplFigure | None, caption: str) -> list[Figure]:
    return [] if fig is None else [Figure(name, png(fig), caption)]


def _baseline(df: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    """The fp32 eager row of the same run, workload and shape as `row`."""
    keys = ("run", "workload", "device", "padding", "batch_size", "seq_len", "nproc")
    same = df[(df["runtime"] == "eager") & (df["precision"] == "fp32")]
    for key in keys:
        same = same[same[key] == row[key]]
    return None if same.empty else same.iloc[0]


def _unsettled(df: pd.DataFrame, row: pd.Series) -> str | None:
    """Why a speedup is not settled: the cell or its fp32 baseline measured unstable."""
    base = _baseline(df, row)
    sides = [("this cell", row)] + ([("its fp32 eager baseline", base)] if base is not None else [])
    why = [f"{name}: {r['unstable_reasons']}" for name, r in sides if is_false(r["stable"])]
    return "; ".join(why) or None


def headline(df: pd.DataFrame, workload: str) -> tuple[str, bool] | None:
    """The overview's line for a workload's fastest cell against fp32 eager, and whether it is
    a settled win. An unstable cell or baseline shows `unsettled` instead of an interval; when
    no cell is faster than fp32 eager the line says so."""
    part = df[(df["workload"] == workload) & df["speedup"].notna() & (df["status"] == "ok")]
    others = part[~((part["runtime"] == "eager") & (part["precision"] == "fp32"))]
    if others.empty:
        return None
    top = others.loc[others["speedup"].idxmax()]
    name = cell_labels(part).loc[top.name]
    title = TITLES[workload]
    if top["speedup"] <= 1:
        return (
            f"{title}: no cell beats fp32 eager (the closest: {name}, {top['speedup']:.2f}×)",
            False,
        )
    delta = "" if pd.isna(top["delta_f1"]) else f", ΔF1 {top['delta_f1'] * 100:+.2f} points"
    unsettled = _unsettled(df, top)
    if unsettled:
        figure = f"{top['speedup']:.2f}×, unsettled ({unsettled}; rerun with --repeats 3)"
    else:
        figure = (
            f"{top['speedup']:.2f}× (95% CI {top['speedup_low']:.2f}–{top['speedup_high']:.2f})"
        )
    line = (
        f"{title}: largest speedup over fp32 eager: {name}, {figure}, "
        f"{num(top['samples_per_s'])} sentences/s{delta}"
    )
    return line, not unsettled and bool(top["speedup_low"] > 1)


def _overview(runs: Sequence[Run], df: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = []
    weak = [
        f"{run.name}: {reason}" for run in runs if (reason := reference_undertrained(run.records))
    ]
    if weak:  # before any number: nothing below was held to a real reference
        blocks.append(Para("Reference undertrained. " + " ".join(weak), tone="bad"))
    lines = []
    for run in runs:
        part = df[df["run"] == run.name]
        counts = ", ".join(f"{n} {s}" for s, n in part["status"].value_counts().items())
        created = run.meta.get("created_at", "")[:19].replace("T", " ")
        when = f" started {created} UTC" if created else ""
        lines.append(f"{run.name}: run {run.records[0].get('run_id', '?')}{when}, {counts}")
    blocks.append(Bullets(tuple(lines)))
    found = [h for w in ("train", "infer") if (h := headline(df, w)) is not None]
    if found:
        tone = "good" if all(settled for _, settled in found) else None
        blocks.append(Bullets(tuple(line for line, _ in found), tone=tone))
    unstable = df[df["status"].isin(MEASURED) & df["stable"].map(is_false)]
    if len(unstable):
        blocks.append(
            Para(
                f"{len(unstable)} of {df['status'].isin(MEASURED).sum()} measured cells are "
                f"unstable (too few samples or CV above {CV_LIMIT:.0%}): their numbers carry ⚠ "
                "and a note.",
                tone="warn",
            )
        )
    emulated = [run.name for run in runs if _bf16_emulated(run, df[df["run"] == run.name])]
    if emulated:
        blocks.append(
            Para(
                f"{', '.join(emulated)}: this CPU has no bf16 instructions (avx512_bf16, "
                "amx_bf16), so its bf16/fp16 cells ran emulated: they say what this machine "
                "does, not what bf16 gives on a CPU that has them.",
                tone="warn",
            )
        )
    inline = [run.name for run in runs if any(_in_process(rec) for rec in run.records)]
    if inline:
        blocks.append(
            Para(
                f"{', '.join(inline)}: cells ran in one process (--in-process), each after what "
                "the earlier ones left (imports, caches, memory pools; host memory peaks are the "
                "process's): a debugging run; rerun without --in-process for figures to hand on.",
                tone="warn",
            )
        )
    capped = df[df["batch_capped"].map(lambda v: isinstance(v, str))]
    if len(capped):
        blocks.append(
            Para(
                f"{len(capped)} cell(s) asked for a batch larger than the data holds and ran "
                "at the smaller one: " + "; ".join(sorted(set(capped["batch_capped"]))),
                tone="warn",
            )
        )
    failed = df[df["status"] == "numeric_fail"]
    if len(failed):
        blocks.append(
            Para(
                f"{len(failed)} cell(s) lost more entity F1 than the tolerance: numeric_fail.",
                tone="bad",
            )
        )
    return blocks


def _in_process(record: dict) -> bool:
    return bool((record.get("details") or {}).get("in_process"))


def _bf16_emulated(run: Run, df: pd.DataFrame) -> bool:
    env = next((rec["env"] for rec in run.records if rec.get("env")), {})
    half = df[(df["device"] == "cpu") & df["precision"].isin(HALF) & df["status"].isin(MEASURED)]
    return env.get("cpu_bf16") is False and len(half) > 0


def _workload(df: pd.DataFrame, workload: str, curves: dict) -> list[Block]:
    table = workload_table(df, workload)
    if table is None:
        return []
    out: list[Block] = [Heading(TITLES[workload]), table]
    measured = ordered(df[df["status"].isin(MEASURED)])
    out += _figure(
        f"speedup_{workload}",
        plots.speedup(measured, workload),
        f"{workload}: speedup over fp32 eager with 95% bootstrap CI from the raw timings",
    )
    out += _figure(
        f"throughput_{workload}",
        plots.throughput(measured, workload),
        f"{workload}: sentences per second (hatched bars: unstable)",
    )
    for axis, what in (("batch_size", "batch size"), ("seq_len", "sequence length")):
        out += _figure(
            f"{what.replace(' ', '_')}_{workload}",
            plots.sweep(measured, workload, axis),
            f"{workload}: throughput vs {what}",
        )
    if workload == "train":
        target = time_to_target_table(df)
        out += [Heading("Time to target F1"), target] if target is not None else []
        out += undertrained_notes(df)
        out += _figure(
            "scaling_train",
            plots.scaling(measured),
            "train: throughput of N data-parallel processes against N; dotted: linear from the "
            "1-process cell; annotated: throughput_N / (N · throughput_1)",
        )
        out += _figure("loss_curves", plots.loss_curves(curves), "training loss per step")
    return out


def _loss_curves(runs: Sequence[Run], df: pd.DataFrame) -> dict[str, list]:
    first = {(run.name, rec["cell_id"]): rec for run in runs for rec in reversed(run.records)}
    train = df[(df["workload"] == "train") & df["status"].isin(MEASURED)]
    names = cell_labels(train)
    out = {}
    for i in train.index:
        rec = first[(train.loc[i, "run"], train.loc[i, "cell_id"])]
        if (rec.get("metrics") or {}).get("loss_curve"):
            out[names.loc[i]] = (train.loc[i, "precision"], rec["metrics"]["loss_curve"])
    return out


def build(runs: Sequence[Run]) -> tuple[list[Block], pd.DataFrame]:
    df = runs_frame(runs)
    measured = ordered(df[df["status"].isin(MEASURED)])
    blocks: list[Block] = [Heading("Overview"), *_overview(runs, df)]
    blocks += [Heading("Environment"), *environment_tables(list(runs))]
    for workload in ("train", "infer"):
        blocks += _workload(df, workload, _loss_curves(runs, df))
    records = [rec for run in runs for rec in run.records]
    blocks += serving_blocks(df, records)
    blocks += mlperf_blocks(df, records)
    blocks.append(Heading("Accuracy, latency and memory"))
    blocks += _figure(
        "f1_vs_throughput",
        plots.f1_vs_throughput(measured),
        "entity F1 against throughput; circled: the Pareto front (nothing is both faster and "
        "more accurate)",
    )
    blocks += _figure("latency_infer", plots.latency(measured), "infer: p50 / p90 / p99 per batch")
    blocks += _figure(
        "memory_rss", plots.memory(measured, "peak_rss_mb", "process peak RSS"), "peak RSS"
    )
    blocks += _figure(
        "memory_cuda",
        plots.memory(measured, "cuda_peak_allocated_mb", "CUDA peak allocated"),
        "CUDA peak allocated",
    )
    table = not_run_table(df)
    blocks += [Heading("Cells that did not run")]
    blocks += [table] if table else [Para("Every cell ran.")]
    return blocks, df


def write_report(run_dirs: Sequence[Path], out_dir: Path | None = None) -> list[Path]:
    runs = [load_run(Path(d)) for d in run_dirs]
    out = Path(out_dir or run_dirs[0])
    (out / "figures").mkdir(parents=True, exist_ok=True)
    blocks, df = build(runs)
    for b in blocks:
        if isinstance(b, Figure):
            (out / "figures" / f"{b.name}.png").write_bytes(b.png)
    title = "accelbench report: " + ", ".join(r.name for r in runs)
    paths = [out / "report.html", out / "report.md", out / "summary.csv"]
    paths[0].write_text(to_html(title, blocks), encoding="utf-8")
    paths[1].write_text(f"# {title}\n\n" + to_markdown(blocks), encoding="utf-8")
    df.to_csv(paths[2], index=False)
    return paths
