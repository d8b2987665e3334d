"""Speed ratios of two cells from their raw per-iteration times and the sentences each iteration
processed, with bootstrap CIs: time per sentence, so cells that ran other batch sizes (`auto`,
--oom-backoff, another machine) compare honestly."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from accelbench.measure.stats import RatioCI, bootstrap_ratio

# One process per side: a within-process interval cannot see run-to-run noise, so a slowdown
# decides the exit code only beyond this floor: NOISE_FLOOR_CVS x the larger within-process CV
# of the two cells, and at least NOISE_FLOOR_MIN_PCT (processes of one cell differed by up to
# 20 % on an idle machine: docs/PERFORMANCE.md, "Repeats").
NOISE_FLOOR_MIN_PCT = 20.0
NOISE_FLOOR_CVS = 2.0
SETTLE = "--repeats 3 on both sides settles it"

MEASURED = ("ok", "numeric_fail")  # statuses whose numbers were measured and kept


@dataclass(frozen=True)
class Timing:
    """A record's timed iterations: seconds, sentences each, and how many distinct batches the
    loop cycled over (iteration i ran batch i % strata)."""

    seconds: list[float]
    sentences: list[float]
    strata: int


def _sentences(record: dict, iterations: int) -> list[float]:
    """Sentences per timed iteration: stored since 2026-12 (`samples.sentences`); for older
    records rebuilt from the batch that ran (the last batch of a pass holds the rest)."""
    stored = (record.get("samples") or {}).get("sentences")
    if stored and len(stored) == iterations:
        return [float(n) for n in stored]
    m = record.get("metrics") or {}
    if record["spec"]["workload"] == "train":
        return [float(m.get("global_batch") or m.get("batch_size_ran") or 1)] * iterations
    batch = int(m.get("batch_size_ran") or record["spec"]["batch_size"])
    distinct = int(m.get("distinct_batches") or 1)
    total = int(m.get("eval_sentences") or batch * distinct)
    cycle = [batch] * (distinct - 1) + [total - batch * (distinct - 1)]
    return [float(cycle[i % distinct]) for i in range(iterations)]


def timing(record: dict) -> Timing:
    samples = record.get("samples") or {}
    if record["spec"]["workload"] == "train":
        seconds, strata = list(samples.get("step_time_s") or []), 1
    else:
        # CUDA inference: the back-to-back loop's device times, not the request latencies
        seconds = list(samples.get("device_time_s") or samples.get("latency_s") or [])
        strata = int((record.get("metrics") or {}).get("distinct_batches") or 1)
    return Timing(seconds, _sentences(record, len(seconds)), strata)


def speed_ratio(base: dict, new: dict) -> RatioCI | None:
    """How many times faster `new` processes a sentence than `base`, or None.

    Inference loops cycle over the same batches: a side's figure is one pass's time over its
    sentences, resampled per batch. Training cells of one shape and seed run the same batch
    sequence: steps are paired."""
    a, b = timing(base), timing(new)
    if not a.seconds or not b.seconds:
        return None
    same_batches = a.strata == b.strata and min(len(a.seconds), len(b.seconds)) >= 2 * a.strata
    paired = new["spec"]["workload"] == "train" and a.sentences == b.sentences
    return bootstrap_ratio(
        a.seconds,
        b.seconds,
        numerator_units=a.sentences,
        denominator_units=b.sentences,
        strata=a.strata if same_batches else 1,
        paired=paired,
    )


def _baseline_key(spec: dict) -> str:
    """The spec with runtime and precision set to the fp32 eager baseline."""
    base = {**spec, "runtime": "eager", "precision": "fp32", "compile_mode": None, "extra": []}
    return json.dumps(base, sort_keys=True)


def _key(spec: dict) -> str:
    return json.dumps({**spec, "extra": list(spec.get("extra") or [])}, sort_keys=True)


def baselines(records: Sequence[dict]) -> dict[int, dict]:
    """index of a measured record -> the fp32 eager record of the same run, shape and repeat."""
    by_key: dict[tuple[str, str, int], dict] = {}
    for rec in records:
        if rec.get("status") in MEASURED:
            key = (rec.get("run_id", ""), _key(rec["spec"]), rec.get("repeat", 0))
            by_key.setdefault(key, rec)
    out = {}
    for i, rec in enumerate(records):
        if rec.get("status") not in MEASURED:
            continue
        key = (rec.get("run_id", ""), _baseline_key(rec["spec"]), rec.get("repeat", 0))
        if (base := by_key.get(key)) is not None:
            out[i] = base
    return out
