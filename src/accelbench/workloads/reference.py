"""The run's fp32 eager reference: word-level logits and F1 that every inference cell is held to.

Written by the reference train cell (or, with --checkpoint, by a reference pass over that
checkpoint) into RUN_DIR/reference/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def reference_dir(run_dir: Path) -> Path:
    return run_dir / "reference"


def write_reference(
    run_dir: Path, word_logits, scores: dict, meaningful: bool, dev_f1: float | None = None
) -> None:
    """The reference's test-set word logits and F1; `dev_f1`: its final dev F1 (a fine-tune),
    what `--target-f1 ref:FRACTION` is a fraction of."""
    ref = reference_dir(run_dir)
    ref.mkdir(parents=True, exist_ok=True)
    np.savez(ref / "word_logits.npz", *word_logits)
    meta = {"f1": scores["f1"], "f1_meaningful": meaningful, "sentences": len(word_logits)}
    (ref / "reference.json").write_text(json.dumps({**meta, "dev_f1": dev_f1}))


def read_reference(run_dir: Path) -> tuple[list[np.ndarray], dict] | None:
    ref = reference_dir(run_dir)
    if not (ref / "reference.json").is_file():
        return None
    meta = json.loads((ref / "reference.json").read_text())
    with np.load(ref / "word_logits.npz") as npz:
        logits = [npz[f"arr_{i}"] for i in range(meta["sentences"])]
    return logits, meta


def reference_dev_f1(run_dir: Path) -> float | None:
    """The reference fine-tune's final dev F1, None when the run has none (yet)."""
    path = reference_dir(run_dir) / "reference.json"
    return json.loads(path.read_text()).get("dev_f1") if path.is_file() else None


def below_reference(f1: float, reference_f1: float, tolerance_points: float) -> str | None:
    """Why a cell is `numeric_fail`: its entity F1 is more than `tolerance_points` below the
    reference's; None when it is within."""
    if f1 >= reference_f1 - tolerance_points / 100:
        return None
    return (
        f"entity F1 {f1:.4f} is more than {tolerance_points:g} point(s) below the fp32 eager "
        f"reference {reference_f1:.4f}"
    )
