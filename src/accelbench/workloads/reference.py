"""The run's fp32 eager reference: word-level logits and F1 that every inference cell is held to.

Written by the reference train cell (or, with --checkpoint, by a reference pass over that
checkpoint) into RUN_DIR/reference/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelbench.config.specs import RunConfig, accuracy_target

# A reference whose test entity F1 is below this has learnt next to nothing (the default 300-step
# fine-tune of the bundled model reaches 0.175 on WNUT-16, docs/PERFORMANCE.md): a gate against
# it would pass any cell, so none is checked.
F1_FLOOR = 0.05


def reference_dir(run_dir: Path) -> Path:
    return run_dir / "reference"


def write_reference(
    run_dir: Path, word_logits, scores: dict, meaningful: bool, dev_f1: float | None = None
) -> str | None:
    """The reference's test-set word logits and F1; `dev_f1`: its final dev F1 (a fine-tune),
    what `--target-f1 ref:FRACTION` is a fraction of. Returns why it is undertrained, or
    None."""
    ref = reference_dir(run_dir)
    ref.mkdir(parents=True, exist_ok=True)
    np.savez(ref / "word_logits.npz", *word_logits)
    meta = {"f1": scores["f1"], "f1_meaningful": meaningful, "sentences": len(word_logits)}
    meta["undertrained"] = undertrained(meta)
    (ref / "reference.json").write_text(json.dumps({**meta, "dev_f1": dev_f1}))
    return meta["undertrained"]


def undertrained(meta: dict) -> str | None:
    """Why the reference is `undertrained` (a pretrained model whose test F1 is below
    F1_FLOOR), or None. A random-init model's F1 is marked not meaningful instead."""
    if not meta.get("f1_meaningful", True) or meta["f1"] >= F1_FLOOR:
        return None
    return (
        f"the fp32 reference's entity F1 {meta['f1']:.4f} is below the floor {F1_FLOOR:g}: "
        "it learnt next to nothing, so no cell's F1 was checked against it; give more "
        "--train-steps or a trained --checkpoint"
    )


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


def f1_gate(f1: float, ref_meta: dict, config: RunConfig) -> tuple[dict, str | None]:
    """A cell's entity F1 held to the fp32 reference: the metrics that say how (`f1_required`,
    `accuracy_target`, `f1_gate`: held / numeric_fail / not checked) and, when it fails, the
    `numeric_fail` reason. The rule: --accuracy-target PCT% of the reference's F1 when given
    (MLPerf's BERT-99 form), else --f1-tolerance points below it. Against an undertrained
    reference nothing is checked."""
    ref = ref_meta["f1"]
    out: dict = {"reference_f1": ref, "delta_f1": f1 - ref}
    out["accuracy_target"] = config.accuracy_target
    if config.accuracy_target is not None:
        required = accuracy_target(config.accuracy_target) * ref
        share = f"{config.accuracy_target} of the fp32 eager reference F1 {ref:.4f}"
        rule = f"below {share} = {required:.4f}"
    else:
        required = ref - config.f1_tolerance / 100
        rule = (
            f"more than {config.f1_tolerance:g} point(s) below the fp32 eager reference {ref:.4f}"
        )
    out["f1_required"] = required
    weak = ref_meta.get("undertrained", undertrained(ref_meta))
    if weak:
        out.update(f1_gate="not checked", reference_undertrained=weak)
        return out, None
    if f1 >= required:
        out["f1_gate"] = f"held: F1 {f1:.4f} >= {required:.4f}"
        return out, None
    out["f1_gate"] = "numeric_fail"
    return out, f"entity F1 {f1:.4f} is {rule}"
