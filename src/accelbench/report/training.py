"""Training toward quality in a report: time to the target dev F1 per cell (how much sooner a
mode gives a usable model), and runs that had not converged, the reference above all."""

from __future__ import annotations

import pandas as pd

from accelbench.report.doc import Block, Bullets, Cell, Heading, Table
from accelbench.report.labels import cell_labels, ordered
from accelbench.report.ratios import MEASURED
from accelbench.report.tables import missing, num


def _seconds(value: object) -> str:
    return "–" if missing(value) else f"{float(value):,.1f}"


def time_to_target_table(df: pd.DataFrame) -> Table | None:
    """One row per training cell with a target: steps, sentences and seconds to reach it, and
    its training time against the fp32 reference's (lower is better)."""
    part = df[(df["workload"] == "train") & df["status"].isin(MEASURED)]
    part = ordered(part[part["target_f1"].notna()])
    if part.empty:
        return None
    names = cell_labels(part)
    reference = part[part["role"] == "reference"]
    ref_s = None if reference.empty else reference["time_to_target_train_s"].iloc[0]
    rows = []
    for i, row in part.iterrows():
        reached = row["target_reached"] is True or row["target_reached"] == 1
        vs = (
            f"{row['time_to_target_train_s'] / ref_s:.2f}×"
            if reached and not missing(ref_s) and ref_s
            else "–"
        )
        rows.append(
            (
                Cell(names.loc[i] + (" (reference)" if row["role"] == "reference" else "")),
                Cell(f"{row['target_f1'] * 100:.1f}", numeric=True),
                Cell("yes" if reached else "no", None if reached else "bad"),
                Cell(num(row["steps_to_target"]), numeric=True),
                Cell(num(row["sentences_to_target"]), numeric=True),
                Cell(_seconds(row["time_to_target_train_s"]), numeric=True),
                Cell(_seconds(row["time_to_target_wall_s"]), numeric=True),
                Cell(vs, numeric=True),
                Cell(f"{row['best_dev_f1'] * 100:.1f}", numeric=True),
            )
        )
    legend = (
        ("target", "dev-split entity F1 (%) to reach: --target-f1, absolute or of the reference's"),
        ("train s", "training steps only, warm-up and compilation included, evaluation not"),
        ("wall s", "the run's wall time to that point, dev evaluations included"),
        ("vs reference", "train s over the fp32 reference's: below 1 is a usable model sooner"),
    )
    columns = ("cell", "target F1 %", "reached", "steps", "sentences", "train s", "wall s")
    return Table((*columns, "vs reference", "best dev F1 %"), tuple(rows), legend=legend)


def undertrained_notes(df: pd.DataFrame) -> list[Block]:
    """A warning for every training cell whose run had not converged; the reference first,
    since every other cell is held to it."""
    part = df[(df["workload"] == "train") & (df["undertrained"] == True)]  # noqa: E712
    if part.empty:
        return []
    names = cell_labels(df[df["workload"] == "train"])
    lines = [
        ("The fp32 reference" if row["role"] == "reference" else names.loc[i])
        + f": {row['undertrained_reason']}"
        for i, row in part.sort_values("role", key=lambda s: s != "reference").iterrows()
    ]
    return [Heading("Runs that had not converged"), Bullets(tuple(lines), tone="warn")]
