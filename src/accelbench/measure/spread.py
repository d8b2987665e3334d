"""Figures across processes and seeds: a mean with its Student-t confidence interval, a paired
difference (seed against seed), and the ratio of two cells' throughput across processes.

Within one process, iterations share the allocator, the clocks and the placement; between fresh
processes they do not. These intervals are built from one figure per process (or per seed), so
they carry run-to-run noise, which the within-process bootstrap of measure/stats.py cannot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from accelbench.measure.stats import RatioCI

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """`mean` of `n` values with a two-sided CI (None with fewer than two values)."""

    n: int
    mean: float
    low: float | None
    high: float | None
    stdev: float | None
    confidence: float = CONFIDENCE

    def to_json(self) -> dict:
        return asdict(self)

    def excludes(self, value: float) -> bool:
        """Whether the interval lies wholly on one side of `value`."""
        return self.low is not None and self.high is not None and not self.low <= value <= self.high


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Spread:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    if x.size < 2:
        return Spread(1, mean, None, None, None, confidence)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return Spread(int(x.size), mean, mean - half, mean + half, sd, confidence)


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> Spread:
    """Mean of a_i - b_i over pairs (e.g. a cell and the reference trained with the same seed):
    what the two runs share (data order, head init) cancels."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in number: {len(a)} vs {len(b)}")
    return mean_ci(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64), confidence)


def ratio_across(
    base: Sequence[float], new: Sequence[float], confidence: float = CONFIDENCE
) -> RatioCI | None:
    """new / base from one throughput per process on each side: the ratio of geometric means,
    with a Welch t interval on the logs (None unless both sides have two processes or more)."""
    x, y = np.log(np.asarray(base, dtype=np.float64)), np.log(np.asarray(new, dtype=np.float64))
    if x.size < 2 or y.size < 2:
        return None
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(y.mean() - x.mean())
    se = math.sqrt(vx + vy)
    if se == 0:
        return RatioCI(math.exp(diff), math.exp(diff), math.exp(diff), confidence)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return RatioCI(math.exp(diff), math.exp(diff - half), math.exp(diff + half), confidence)


def training_f1_verdict(
    cell_f1: Sequence[float], reference_f1: Sequence[float], tolerance_points: float
) -> dict:
    """Whether a training cell is as accurate as the fp32 reference, across seeds.

    `cell_f1[i]` and `reference_f1[i]` were trained with the same seed (data order, head init),
    so the difference is taken seed by seed. The cell fails (`numeric_fail`) when its F1 is
    below the reference's by more than `tolerance_points` AND the interval of the difference
    excludes zero; with one seed nothing is established either way."""
    pairs = min(len(cell_f1), len(reference_f1))
    out: dict = {"f1_seeds": mean_ci(cell_f1).to_json()}
    if pairs < 2:
        out["f1_verdict"] = (
            "not established: one seed; run --repeats 2 or more to hold training F1 "
            "to the fp32 reference across seeds"
        )
        return out
    delta = paired_difference(cell_f1[:pairs], reference_f1[:pairs])
    out["delta_f1_seeds"] = delta.to_json()
    below = delta.mean < -tolerance_points / 100 and delta.high is not None and delta.high < 0
    out["f1_verdict"] = (
        f"numeric_fail: entity F1 {delta.mean * 100:+.2f} points against the fp32 reference over "
        f"{pairs} seeds (95% CI {delta.low * 100:+.2f} to {delta.high * 100:+.2f}), beyond "
        f"the {tolerance_points:g}-point tolerance"
        if below
        else f"held: {delta.mean * 100:+.2f} points over {pairs} seeds "
        f"(95% CI {delta.low * 100:+.2f} to {delta.high * 100:+.2f})"
    )
    return out
