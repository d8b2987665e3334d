"""Summary statistics of raw samples, a stability verdict with its reasons, bootstrap ratio CIs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class RatioCI:
    """`ratio` = stat(numerator) / stat(denominator), with a bootstrap confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float


def _strata(x: np.ndarray, strata: int) -> list[np.ndarray]:
    """Sample i belongs to stratum i % strata (a timed loop cycling over `strata` batches)."""
    return [x[k::strata] for k in range(strata) if x[k::strata].size]


def _cycle_stat(parts: list[np.ndarray], center: str) -> float:
    reduce = np.median if center == "median" else np.mean
    return float(sum(reduce(p) for p in parts))


def _boot(parts: list[np.ndarray], idx: list[np.ndarray], center: str) -> np.ndarray:
    reduce = np.median if center == "median" else np.mean
    return sum(reduce(p[i], axis=1) for p, i in zip(parts, idx, strict=True))


def bootstrap_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    strata: int = 1,
    paired: bool = False,
    center: str = "mean",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RatioCI:
    """Percentile-bootstrap CI of a ratio of means (or medians) of two sets of raw samples.

    With per-iteration times, numerator = the baseline's and denominator = the candidate's gives
    the candidate's speedup. `strata` > 1: sample i belongs to batch i % strata (a loop cycling
    over unequal batches); the statistic is the sum over batches of their mean time (one cycle),
    and resampling stays within each batch. `paired`: both series are the same sequence of
    unequal steps (same seed and shape); step indices are resampled jointly so the differences
    between steps cancel. Deterministic for a given seed.
    """
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', got {center!r}")
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if num.size == 0 or den.size == 0:
        raise ValueError("bootstrap_ratio needs samples on both sides")
    if paired and num.size != den.size:
        raise ValueError(f"paired samples differ in length: {num.size} vs {den.size}")
    num_parts, den_parts = _strata(num, strata), _strata(den, strata)
    if len(num_parts) != len(den_parts):
        raise ValueError("both sides need samples in every stratum")
    ratio = _cycle_stat(num_parts, center) / _cycle_stat(den_parts, center)
    rng = np.random.default_rng(seed)
    # Blocks bound the index matrices to about 4M entries whatever the sample count.
    block = max(1, min(n_boot, 4_000_000 // max(num.size, den.size)))
    draws = []
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        num_idx = [rng.integers(0, p.size, (b, p.size)) for p in num_parts]
        den_idx = num_idx if paired else [rng.integers(0, p.size, (b, p.size)) for p in den_parts]
        draws.append(_boot(num_parts, num_idx, center) / _boot(den_parts, den_idx, center))
    boot = np.concatenate(draws)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return RatioCI(ratio, float(low), float(high), confidence)
