"""The server scenario's result: the highest target QPS that LoadGen judges VALID at the p99
latency bound, found by bracketing and then bisecting over LoadGen performance runs.

Every run is a trial of its own (its logs in their own directory) and is kept: target QPS,
achieved QPS, p50/p90/p99, LoadGen's verdict and reasons, and the batches the SUT formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from accelbench.measure.loadgen_log import LoadGenResult
from accelbench.serving.loadgen_runs import RunSettings, run_performance
from accelbench.serving.sut import Sut

PRECISION = 0.10  # stop when the lowest INVALID QPS is within 10 % of the highest VALID one
MAX_TRIALS = 8
UP, DOWN = 2.0, 0.5  # bracketing steps before a VALID and an INVALID trial are both known
# an INVALID trial whose SUT was busy less than this share of the time: queueing is not what
# breaks the bound, so lower loads will not meet it either
IDLE = 0.25


@dataclass(frozen=True)
class Trial:
    target_qps: float
    result: LoadGenResult
    served: dict  # ServeStats.to_json() of the trial
    log_dir: str

    @property
    def utilization(self) -> float:
        """Share of the trial's time the SUT spent on batches."""
        batches_per_s = (self.result.samples_per_s or 0.0) / max(self.served["mean_batch"], 1)
        return batches_per_s * self.served["service_ms_mean"] / 1e3

    def to_json(self) -> dict:
        lat = self.result.latency_ms
        return {
            "target_qps": self.target_qps,
            "achieved_qps": self.result.samples_per_s,
            "scheduled_qps": self.result.scheduled_qps,
            "p50_ms": lat.get("p50"),
            "p90_ms": lat.get("p90"),
            "p99_ms": lat.get("p99"),
            "valid": self.result.valid,
            "reasons": self.result.reasons,
            "queries": self.result.queries,
            "overlatency_queries": self.result.overlatency_queries,
            **self.served,
            "utilization": self.utilization,
            "log_dir": self.log_dir,
        }


def search_qps(
    trial: Callable[[float], Trial],
    start_qps: float,
    floor_qps: float,
    precision: float = PRECISION,
    max_trials: int = MAX_TRIALS,
) -> tuple[list[Trial], str]:
    """Trials from `start_qps`: up by UP while VALID, down by DOWN while INVALID (to
    `floor_qps` at the lowest; not after an INVALID trial at a load the SUT was mostly IDLE
    for), then bisect (geometric mean) until the bracket is within `precision`.
    (trials, why it ended)"""
    trials: list[Trial] = []
    valid_at, invalid_at = 0.0, math.inf
    qps = start_qps
    while len(trials) < max_trials:
        t = trial(qps)
        trials.append(t)
        if t.result.valid:
            valid_at = max(valid_at, qps)
        else:
            invalid_at = min(invalid_at, qps)
        if valid_at and invalid_at < math.inf:
            if invalid_at <= valid_at * (1 + precision):
                return trials, f"VALID and INVALID targets within {precision:.0%}"
            qps = math.sqrt(valid_at * invalid_at)
        elif valid_at:
            qps = valid_at * UP
        elif t.utilization < IDLE:
            return trials, (
                f"INVALID at {qps:.1f} QPS with the SUT busy {t.utilization:.0%} of the time: "
                "queueing is not what breaks the bound"
            )
        elif invalid_at <= floor_qps * (1 + 1e-9):
            return trials, f"INVALID down to {invalid_at:.1f} QPS, the search's floor"
        else:
            qps = max(invalid_at * DOWN, floor_qps)
    return trials, f"{max_trials} trials"


def best(trials: list[Trial]) -> Trial | None:
    """The VALID trial of the highest target QPS, if any."""
    valid = [t for t in trials if t.result.valid]
    return max(valid, key=lambda t: t.target_qps) if valid else None


@dataclass(frozen=True)
class ServerSearch:
    """Server trials of one SUT: each a LoadGen performance run at a target QPS."""

    sut: Sut
    handles: tuple[int, int]  # LoadGen SUT and QSL
    latency_bound_ms: float
    min_time_s: float
    min_queries: int
    seed: int
    log_root: Path  # trial k logs into log_root/trial-k-qps-Q
    run_dir: Path  # log directories are recorded relative to it

    def settings(self, qps: float) -> RunSettings:
        return RunSettings(
            "server",
            accuracy=False,
            min_time_s=self.min_time_s,
            min_queries=self.min_queries,
            seed=self.seed,
            target_qps=qps,
            latency_bound_ms=self.latency_bound_ms,
            max_batch=self.sut.max_batch,
        )

    def trial(self, qps: float) -> Trial:
        k = len(list(self.log_root.glob("trial-*"))) + 1 if self.log_root.is_dir() else 1
        log_dir = self.log_root / f"trial-{k:02d}-qps-{qps:.1f}"
        self.sut.reset_stats()
        result = run_performance(*self.handles, self.settings(qps), log_dir)
        self.sut.raise_if_failed()
        served = self.sut.reset_stats().to_json()
        return Trial(qps, result, served, str(log_dir.relative_to(self.run_dir)))

    def run(self, start_qps: float, floor_qps: float) -> tuple[list[Trial], str]:
        return search_qps(self.trial, start_qps, floor_qps)
