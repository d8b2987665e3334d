"""Speed ratios of two cells from their raw per-iteration times, with bootstrap CIs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from accelbench.measure.stats import RatioCI, bootstrap_ratio

MEASURED = ("ok", "numeric_fail")  # statuses whose numbers were measured and kept


def timing(record: dict) -> tuple[list[float], int]:
    """Per-iteration seconds behind a record's throughput and how many distinct batches its
    loop cycled over (inference on CUDA: the back-to-back loop's device times, not the
    request latencies measured apart)."""
    samples = record.get("samples") or {}
    if record["spec"]["workload"] == "train":
        return list(samples.get("step_time_s") or []), 1
    distinct = int((record.get("metrics") or {}).get("distinct_batches") or 1)
    return list(samples.get("device_time_s") or samples.get("latency_s") or []), distinct


def speed_ratio(base: dict, new: dict) -> RatioCI | None:
    """How many times faster `new` runs than `base` (same work per iteration), or None.

    Inference loops cycle over the same batches: the ratio is one cycle's time, resampled per
    batch. Training cells of one shape and seed run the same batch sequence: steps are paired.
    """
    base_t, base_k = timing(base)
    new_t, new_k = timing(new)
    if not base_t or not new_t:
        return None
    strata = base_k if base_k == new_k and min(len(base_t), len(new_t)) >= 2 * base_k else 1
    paired = new["spec"]["workload"] == "train" and len(base_t) == len(new_t)
    return bootstrap_ratio(base_t, new_t, strata=strata, paired=paired)


def _baseline_key(spec: dict) -> str:
    """The spec with runtime and precision set to the fp32 eager baseline."""
    base = {**spec, "runtime": "eager", "precision": "fp32", "compile_mode": None, "extra": []}
    return json.dumps(base, sort_keys=True)


def _key(spec: dict) -> str:
    return json.dumps({**spec, "extra": list(spec.get("extra") or [])}, sort_keys=True)


def baselines(records: Sequence[dict]) -> dict[int, dict]:
    """index of a measured record -> the fp32 eager record of the same run and shape."""
    by_key: dict[tuple[str, str], dict] = {}
    for rec in records:
        if rec.get("status") in MEASURED and rec.get("role") != "reference-eval":
            by_key.setdefault((rec.get("run_id", ""), _key(rec["spec"])), rec)
    out = {}
    for i, rec in enumerate(records):
        if rec.get("status") not in MEASURED:
            continue
        base = by_key.get((rec.get("run_id", ""), _baseline_key(rec["spec"])))
        if base is not None:
            out[i] = base
    return out
