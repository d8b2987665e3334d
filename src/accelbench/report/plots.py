"""Figures of a run (matplotlib, Agg backend): throughput and F1 per cell."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def _labels(df: pd.DataFrame) -> list[str]:
    return [
        f"{r.runtime} {r.device} {r.precision}\n{r.padding} b{r.batch_size}"
        for r in df.itertuples()
    ]


def _bar(df: pd.DataFrame, column: str, title: str, xlabel: str, scale: float = 1.0) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(df) + 1.5))
    ax.barh(_labels(df), df[column] * scale, color="#4C72B0")
    for y, v in enumerate(df[column] * scale):
        ax.text(v, y, f" {v:,.1f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    fig.tight_layout()
    return fig


def figures(df: pd.DataFrame) -> dict[str, Figure]:
    """name -> figure, for every plot the data supports."""
    ok = df[df["status"].isin(["ok", "numeric_fail"])]
    out: dict[str, Figure] = {}
    for workload in ("train", "infer"):
        part = ok[(ok["workload"] == workload) & ok["samples_per_s"].notna()]
        if len(part):
            out[f"throughput_{workload}"] = _bar(
                part, "samples_per_s", f"{workload}: throughput", "sentences / s"
            )
        scored = part[part["f1"].notna()]
        if len(scored):
            out[f"f1_{workload}"] = _bar(
                scored, "f1", f"{workload}: entity F1", "entity micro F1 (%)", 100
            )
    return out
