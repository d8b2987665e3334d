"""Summary statistics of raw samples and a stability verdict with its reasons."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CV_LIMIT = 0.05
MIN_SAMPLES = 10


def summarize(samples: Sequence[float], scale: float = 1.0) -> dict:
    """median/mean/p50/p90/p99/min/max/stdev in the unit of samples x scale, CV unitless."""
    x = np.asarray(samples, dtype=np.float64) * scale
    if x.size == 0:
        return {"n": 0}
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if x.size > 1 else 0.0
    return {
        "n": int(x.size),
        "mean": mean,
        "median": float(np.median(x)),
        "p50": float(np.percentile(x, 50)),
        "p90": float(np.percentile(x, 90)),
        "p99": float(np.percentile(x, 99)),
        "min": float(x.min()),
        "max": float(x.max()),
        "stdev": stdev,
        "cv": stdev / mean if mean > 0 else math.nan,
    }


def verdict(
    summary: dict,
    extra_reasons: Sequence[str] = (),
    cv_limit: float = CV_LIMIT,
    min_samples: int = MIN_SAMPLES,
) -> dict:
    """`stable` unless the CV is too high, there are too few samples, or `extra_reasons` (e.g.
    clock drops seen in telemetry) say otherwise; reasons listed."""
    reasons = []
    if summary.get("n", 0) < min_samples:
        reasons.append(f"only {summary.get('n', 0)} samples (< {min_samples})")
    cv = summary.get("cv", math.nan)
    if not math.isnan(cv) and cv > cv_limit:
        reasons.append(f"CV {cv:.1%} > {cv_limit:.0%}")
    reasons.extend(extra_reasons)
    return {"stable": not reasons, "reasons": reasons}


def repeat_cv(samples: Sequence[float], keys: Sequence[object]) -> float:
    """Median CV over repeats of the same item (same batch), so unequal batches are not noise.

    NaN when no item was repeated."""
    groups: dict[object, list[float]] = {}
    for s, k in zip(samples, keys, strict=True):
        groups.setdefault(k, []).append(s)
    cvs = [float(np.std(g, ddof=1) / np.mean(g)) for g in groups.values() if len(g) > 1]
    return float(np.median(cvs)) if cvs else math.nan


def per_unit_cv(samples: Sequence[float], units: Sequence[float]) -> float:
    """CV of time per unit of work (e.g. per padded token), for steps of unequal size."""
    x = np.asarray(samples, dtype=np.float64) / np.asarray(units, dtype=np.float64)
    return float(x.std(ddof=1) / x.mean()) if x.size > 1 else math.nan
