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


def _cycle(parts: list[np.ndarray], center: str, axis: int | None = None) -> np.ndarray:
    """One pass over the strata: the sum of each stratum's mean (or median)."""
    reduce = np.median if center == "median" else np.mean
    return sum(reduce(p, axis=axis) for p in parts)


def bootstrap_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    numerator_units: Sequence[float] | None = None,
    denominator_units: Sequence[float] | None = None,
    strata: int = 1,
    paired: bool = False,
    center: str = "mean",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RatioCI:
    """Percentile-bootstrap CI of a ratio of two cells' time per unit of work.

    With per-iteration times, numerator = the baseline's and denominator = the candidate's gives
    the candidate's speedup. `*_units`: the work each iteration did (sentences); the statistic of
    a side is then its time per unit (time of one pass over the strata / units of that pass), so
    cells whose iterations did unequal work (other batch sizes) compare honestly. Without units
    every iteration counts as one. `strata` > 1: sample i belongs to batch i % strata (a loop
    cycling over unequal batches); resampling stays within each batch. `paired`: both series
    are the same sequence of unequal steps (same seed and shape); step indices are resampled
    jointly so the differences between steps cancel. Deterministic for a given seed.
    """
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', got {center!r}")
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if num.size == 0 or den.size == 0:
        raise ValueError("bootstrap_ratio needs samples on both sides")
    if paired and num.size != den.size:
        raise ValueError(f"paired samples differ in length: {num.size} vs {den.size}")
    num_u = np.ones_like(num) if numerator_units is None else np.asarray(numerator_units, float)
    den_u = np.ones_like(den) if denominator_units is None else np.asarray(denominator_units, float)
    if num_u.shape != num.shape or den_u.shape != den.shape:
        raise ValueError("units must give one value per sample")
    parts = [_strata(x, strata) for x in (num, num_u, den, den_u)]
    if len(parts[0]) != len(parts[2]):
        raise ValueError("both sides need samples in every stratum")
    ratio = float(
        (_cycle(parts[0], center) / _cycle(parts[1], center))
        / (_cycle(parts[2], center) / _cycle(parts[3], center))
    )
    rng = np.random.default_rng(seed)
    # Blocks bound the index matrices to about 4M entries whatever the sample count.
    block = max(1, min(n_boot, 4_000_000 // max(num.size, den.size)))
    draws = []
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        num_idx = [rng.integers(0, p.size, (b, p.size)) for p in parts[0]]
        den_idx = num_idx if paired else [rng.integers(0, p.size, (b, p.size)) for p in parts[2]]

        def side(times: list[np.ndarray], units: list[np.ndarray], idx: list) -> np.ndarray:
            picked_t = [x[i] for x, i in zip(times, idx, strict=True)]
            picked_u = [u[i] for u, i in zip(units, idx, strict=True)]
            return _cycle(picked_t, center, axis=1) / _cycle(picked_u, center, axis=1)

        draws.append(side(parts[0], parts[1], num_idx) / side(parts[2], parts[3], den_idx))
    boot = np.concatenate(draws)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return RatioCI(ratio, float(low), float(high), confidence)
