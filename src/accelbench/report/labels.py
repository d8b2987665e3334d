"""Short cell names that show only the coordinates that vary among the cells shown."""

from __future__ import annotations

import pandas as pd

from accelbench.config.specs import AUTO_BATCH, PRECISIONS


def is_auto(batch_size: object) -> bool:
    """An auto batch as stored: "auto" (runs before 2026-12 stored 0)."""
    return batch_size in (AUTO_BATCH, 0)


# column -> how a value is written
DIMENSIONS: dict[str, str] = {
    "run": "{}",
    "scenario": "{}",
    "runtime": "{}",
    "compile_mode": "[{}]",
    "device": "{}",
    "nproc": "x{}",
    "precision": "{}",
    "padding": "{}",
    "batch_size": "b{}",
    "seq_len": "s{}",
}


def varying(df: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    return [
        c
        for c in DIMENSIONS
        if c in df and c not in exclude and df[c].astype(str).nunique(dropna=False) > 1
    ]


def cell_labels(df: pd.DataFrame, exclude: tuple[str, ...] = ()) -> pd.Series:
    """e.g. 'bf16 dynamic b32' when precision, padding and batch size vary; precision at least."""
    dims = varying(df, exclude) or ["precision"]

    def name(row: pd.Series) -> str:
        parts = [
            DIMENSIONS[c].format("auto" if c == "batch_size" and is_auto(row[c]) else row[c])
            for c in dims
            if row[c] is not None and not pd.isna(row[c])
        ]
        return " ".join(parts)

    return df.apply(name, axis=1).astype(str) if len(df) else pd.Series([], dtype=str)


def ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by shape, then runtime, then precision in the order of PRECISIONS."""
    rank = {p: i for i, p in enumerate(PRECISIONS)}
    keys = ("run", "scenario", "device", "padding", "_batch", "seq_len", "runtime", "nproc")
    batch = df["batch_size"].map(lambda b: -1 if is_auto(b) else b) if "batch_size" in df else None
    ordered_df = df.assign(_rank=df["precision"].map(rank), _batch=batch)
    keys = [c for c in keys if c in ordered_df]
    return ordered_df.sort_values([*keys, "_rank"], kind="stable").drop(columns=["_rank", "_batch"])
