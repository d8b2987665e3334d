"""Figures of a report (matplotlib, Agg backend). Each returns None when the data cannot show it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from accelbench.report.frame import is_false
from accelbench.report.labels import cell_labels, is_auto

PALETTE = {
    "fp32": "#4C72B0",
    "tf32": "#64B5CD",
    "bf16": "#DD8452",
    "fp16": "#55A868",
    "bf16-weights": "#C44E52",
    "fp16-weights": "#8172B3",
    "int8": "#937860",
    "fp8": "#DA8BC3",
    "int4-weight": "#CCB974",
}
UNSTABLE_HATCH = "///"
LINE_STYLES = ("-", "--", ":", "-.")


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _color(precision: str) -> str:
    return PALETTE.get(precision, "#7f7f7f")


def _line(precision: str, seen: dict[str, int]) -> tuple[str, str]:
    """Colour by precision; successive lines of one precision get successive line styles."""
    n = seen.get(precision, 0)
    seen[precision] = n + 1
    return _color(precision), LINE_STYLES[n % len(LINE_STYLES)]


def _barh(
    df: pd.DataFrame,
    values: pd.Series,
    title: str,
    xlabel: str,
    fmt: str,
    labels: pd.Series | None = None,
    text_at: pd.Series | None = None,
    hatch_unstable: bool = True,
) -> Figure:
    labels = cell_labels(df) if labels is None else labels
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(df) + 1.4))
    bars = ax.barh(labels, values, color=[_color(p) for p in df["precision"]])
    for bar, stable in zip(bars, df["stable"], strict=True):
        if hatch_unstable and is_false(stable):
            bar.set_hatch(UNSTABLE_HATCH)
            bar.set_edgecolor("#b58900")
    for y, (v, end) in enumerate(zip(values, values if text_at is None else text_at, strict=True)):
        ax.text(end, y, " " + format(v, fmt), va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, 1.2 * float(max(values.max(), 0 if text_at is None else text_at.max())))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def throughput(df: pd.DataFrame, workload: str) -> Figure | None:
    part = df[(df["workload"] == workload) & df["samples_per_s"].notna()]
    if part.empty:
        return None
    title = f"{workload}: throughput (hatched: unstable measurement)"
    return _barh(part, part["samples_per_s"], title, "sentences / s", ",.1f")


def speedup(df: pd.DataFrame, workload: str) -> Figure | None:
    part = df[(df["workload"] == workload) & df["speedup"].notna()]
    part = part[(part["runtime"] != "eager") | (part["precision"] != "fp32")]  # the baselines
    if part.empty:
        return None
    title = f"{workload}: speedup over fp32 eager (dashed line)"
    fig = _barh(part, part["speedup"], title, "×", ".2f", text_at=part["speedup_high"])
    ax = fig.axes[0]
    err = np.vstack([part["speedup"] - part["speedup_low"], part["speedup_high"] - part["speedup"]])
    ax.errorbar(part["speedup"], range(len(part)), xerr=err, fmt="none", ecolor="black", capsize=3)
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xlabel("× fp32 eager of the same shape (95% bootstrap CI)")
    return fig


def pareto_mask(speed: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """True where no other point is at least as fast and as accurate, and better in one."""
    mask = np.ones(len(speed), dtype=bool)
    for i in range(len(speed)):
        dominated = (speed >= speed[i]) & (f1 >= f1[i]) & ((speed > speed[i]) | (f1 > f1[i]))
        mask[i] = not dominated.any()
    return mask


MIN_F1_SPAN = 2.0  # F1 points: the smallest y range of the F1-vs-throughput panels


def f1_vs_throughput(df: pd.DataFrame) -> Figure | None:
    scored = df[df["f1"].notna() & df["samples_per_s"].notna()]
    workloads = [w for w in ("train", "infer") if (scored["workload"] == w).sum() > 1]
    if not workloads:
        return None
    fig, axes = plt.subplots(1, len(workloads), figsize=(6.2 * len(workloads), 4.6), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        part = scored[scored["workload"] == workload]
        speed, f1 = part["samples_per_s"].to_numpy(float), part["f1"].to_numpy(float) * 100
        front = pareto_mask(speed, f1)
        for precision in dict.fromkeys(part["precision"]):
            sel = (part["precision"] == precision).to_numpy()
            ax.scatter(
                speed[sel], f1[sel], color=_color(precision), s=40, zorder=3, label=precision
            )
        ax.scatter(speed[front], f1[front], s=160, facecolors="none", edgecolors="black", zorder=4)
        order = np.argsort(speed[front])
        ax.plot(speed[front][order], f1[front][order], "k--", lw=0.8, label="Pareto front")
        names = cell_labels(part).to_numpy()
        for x, y, text in zip(speed[front], f1[front], names[front], strict=True):
            ax.annotate(text, (x, y), fontsize=7, xytext=(6, -10), textcoords="offset points")
        ax.set_title(f"{workload}: entity F1 vs throughput")
        ax.set_xlabel("sentences / s")
        ax.set_ylabel("entity micro F1 (%)")
        ax.margins(x=0.25, y=0.15)
        low, high = ax.get_ylim()
        if high - low < MIN_F1_SPAN:  # do not blow hundredths of a point up to a full axis
            mid = (high + low) / 2
            ax.set_ylim(mid - MIN_F1_SPAN / 2, mid + MIN_F1_SPAN / 2)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    return fig


def latency(df: pd.DataFrame) -> Figure | None:
    part = df[(df["workload"] == "infer") & df["latency_p50_ms"].notna()]
    if part.empty:
        return None
    labels = cell_labels(part)
    y = np.arange(len(part))
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(part) + 1.5))
    for i, (col, name) in enumerate(
        (("latency_p50_ms", "p50"), ("latency_p90_ms", "p90"), ("latency_p99_ms", "p99"))
    ):
        ax.barh(y + (i - 1) * 0.27, part[col], height=0.27, label=name, alpha=0.55 + 0.2 * i)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_title("infer: latency per batch")
    ax.set_xlabel("ms")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep(df: pd.DataFrame, workload: str, axis: str) -> Figure | None:
    """Throughput against batch size or sequence length, one line per other coordinate."""
    part = df[(df["workload"] == workload) & df["samples_per_s"].notna()]
    if axis == "batch_size":  # an auto or capped cell sits at the batch that ran
        moved = part["batch_size"].map(is_auto) | part["batch_capped"].map(
            lambda v: isinstance(v, str)
        )
        ran = part["batch_size"].where(~moved, part["batch_size_ran"])
        part = part.assign(batch_size=pd.to_numeric(ran, errors="coerce")).dropna(subset=[axis])
    if part[axis].nunique() < 2:
        return None
    metric, unit = (
        ("samples_per_s", "sentences / s")
        if axis == "batch_size"
        else ("tokens_per_s", "tokens / s")
    )
    series = cell_labels(part, exclude=(axis,))
    fig, ax = plt.subplots(figsize=(7, 4.4))
    seen: dict[str, int] = {}
    for name, group in part.groupby(series.to_numpy(), sort=True):
        group = group.sort_values(axis)
        color, style = _line(group["precision"].iloc[0], seen)
        ax.plot(group[axis], group[metric], style, marker="o", label=name, color=color)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(part[axis].unique()), [str(v) for v in sorted(part[axis].unique())])
    what = "batch size" if axis == "batch_size" else "sequence length"
    ax.set_title(f"{workload}: throughput vs {what}")
    ax.set_xlabel(what)
    ax.set_ylabel(unit)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def scaling(df: pd.DataFrame) -> Figure | None:
    """Training throughput against the number of processes, one line per cell spec, each with
    its ideal (linear from the 1-process cell) and the efficiency at every point."""
    part = df[(df["workload"] == "train") & df["samples_per_s"].notna()]
    if not (part["nproc"] > 1).any():
        return None
    series = cell_labels(part, exclude=("nproc",))
    fig, ax = plt.subplots(figsize=(7, 4.6))
    seen: dict[str, int] = {}
    for name, group in part.groupby(series.to_numpy(), sort=True):
        if (group["nproc"] == 1).all():
            continue
        group = group.sort_values("nproc")
        color, style = _line(group["precision"].iloc[0], seen)
        procs, speed = group["nproc"].to_numpy(), group["samples_per_s"].to_numpy(float)
        ax.plot(procs, speed, style, marker="o", color=color, label=name)
        single = group[group["nproc"] == 1]
        if len(single):
            top = int(procs.max())
            base = float(single["samples_per_s"].iloc[0])
            ideal = f"{name}: ideal (linear)" if name else "ideal (linear)"
            ax.plot([1, top], [base, base * top], ":", color=color, lw=1, label=ideal)
        for x, y, eff in zip(procs, speed, group["scaling_efficiency"], strict=True):
            if not pd.isna(eff):
                ax.annotate(f"{eff:.0%}", (x, y), xytext=(6, -12), textcoords="offset points")
    ticks = sorted(part["nproc"].unique())
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlim(0.5, max(ticks) + 0.5)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    ax.set_title("train: throughput vs processes (annotated: scaling efficiency)")
    ax.set_xlabel("training processes (data-parallel ranks)")
    ax.set_ylabel("sentences / s (all ranks)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(curves: dict[str, tuple[str, list[list[float]]]]) -> Figure | None:
    """name -> (precision, [[step, loss], ...]); colour by precision, line style by the rest."""
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.4))
    seen: dict[str, int] = {}
    for name, (precision, curve) in curves.items():
        steps, loss = zip(*curve, strict=True)
        color, style = _line(precision, seen)
        ax.plot(steps, loss, style, label=name, lw=1.2, color=color)
    ax.set_title("train: loss per step")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def memory(df: pd.DataFrame, column: str, what: str) -> Figure | None:
    part = df[df[column].notna()].sort_values("workload", key=lambda w: w != "train", kind="stable")
    if part.empty:
        return None
    labels = part["workload"] + " " + cell_labels(part)
    return _barh(part, part[column], f"memory: {what}", "MB", ",.0f", labels, hatch_unstable=False)


def latency_vs_load(
    curves: dict[str, tuple[str, list[dict]]], bounds_ms: list[float]
) -> Figure | None:
    """Server trials: p50 (dashed) and p99 (solid) against the target QPS, one colour per cell;
    filled markers where LoadGen judged the trial VALID; dotted lines at the bounds."""
    curves = {name: c for name, c in curves.items() if c[1]}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, (_, trials)) in enumerate(curves.items()):
        trials = sorted(trials, key=lambda t: t["target_qps"])
        color = colors[k % len(colors)]
        qps = [t["target_qps"] for t in trials]
        ax.plot(qps, [t["p50_ms"] for t in trials], "--", color=color, lw=1)
        ax.plot(qps, [t["p99_ms"] for t in trials], "-", color=color, lw=1.4, label=name)
        for t in trials:
            face = color if t["valid"] else "white"
            ax.scatter(t["target_qps"], t["p99_ms"], s=30, color=face, edgecolors=color, zorder=3)
    for bound in bounds_ms:
        ax.axhline(bound, color="black", ls=":", lw=1)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title("server: latency vs offered load (dashed p50, solid p99)")
    ax.set_xlabel("target QPS (Poisson arrivals)")
    ax.set_ylabel("latency per query (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
