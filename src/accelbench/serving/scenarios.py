"""The LoadGen performance run(s) of each scenario and the metrics they give.

single-stream: one run, its metric the p90 latency as MLPerf reports it (LoadGen's
early-stopping estimate); offline: one run, samples/s; server: the QPS search, its metric the
highest target QPS LoadGen judged VALID at the p99 bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from accelbench.config.specs import CellSpec, RunConfig
from accelbench.measure.loadgen_log import LoadGenResult
from accelbench.serving.loadgen_runs import (
    RunSettings,
    mlperf_minimum,
    mlperf_shortfall,
    run_performance,
)
from accelbench.serving.qps_search import ServerSearch, Trial, best
from accelbench.serving.sut import Sut

OFFLINE_SLACK = 1.5  # offline query: this many times the samples the calibration expects
START_LOAD = 0.5  # server: first target, as a share of the calibrated capacity within the bound
FLOOR = 1 / 8  # server: lowest target, as a share of the first
LONGEST_TRIAL = 12  # server: no trial longer than this many times --serve-min-time


@dataclass(frozen=True)
class Serving:
    """A serve cell's SUT, its LoadGen handles and calibration, where its logs go."""

    cell: CellSpec
    config: RunConfig
    sut: Sut
    handles: tuple[int, int]  # LoadGen SUT and QSL
    calibration: dict  # batch_1_s, batch_max_s: median service times before LoadGen
    logs: Path  # RUN_DIR/loadgen/<cell_id>
    run_dir: Path

    @property
    def bound_ms(self) -> float:
        return self.config.latency_bound(self.cell.device)

    def settings(self, **scenario_knobs: float) -> RunSettings:
        return RunSettings(
            str(self.cell.scenario),
            accuracy=False,
            min_time_s=self.config.serve_min_time,
            min_queries=self.config.serve_min_queries,
            seed=self.cell.seed,
            max_batch=self.sut.max_batch,
            **scenario_knobs,
        )


def capacity_within(calibration: dict, max_batch: int, bound_s: float) -> float:
    """Queries per second at the largest batch whose service time (linear between batch 1 and
    the largest) leaves half the bound for queueing."""
    one, full = calibration["batch_1_s"], calibration["batch_max_s"]
    per_sample = (full - one) / (max_batch - 1) if max_batch > 1 else 0.0
    fits = [b for b in range(1, max_batch + 1) if one + per_sample * (b - 1) <= bound_s / 2]
    b = max(fits, default=1)
    return b / (one + per_sample * (b - 1))


def _mlperf(settings: RunSettings) -> dict:
    shortfall = mlperf_shortfall(settings)
    return {
        "below_mlperf_minimum": bool(shortfall),
        "mlperf_shortfall": shortfall,
        "mlperf_minimum": mlperf_minimum(settings.scenario),
    }


def _figures(result: LoadGenResult | None, served: dict) -> dict:
    """Throughput and latency of the run a cell's figures come from."""
    if result is None:
        return {"samples_per_s": None, "tokens_per_s": None, "latency_ms": {}}
    rate = result.samples_per_s
    return {
        "samples_per_s": rate,
        "tokens_per_s": None if rate is None else rate * served["tokens_per_sample"],
        "latency_ms": {**result.latency_ms, "n": result.queries},
        "mean_batch_size": served["mean_batch"],
    }


def fixed_load(s: Serving) -> tuple[dict, RunSettings]:
    """single-stream or offline: one LoadGen performance run. (metrics, its settings)"""
    if s.cell.scenario == "single-stream":
        settings = s.settings(expected_latency_s=s.calibration["batch_1_s"] / 2)
    else:
        expected = OFFLINE_SLACK * s.sut.max_batch / s.calibration["batch_max_s"]
        settings = s.settings(expected_qps=expected)
    result = run_performance(*s.handles, settings, s.logs / "performance")
    s.sut.raise_if_failed()
    served = s.sut.reset_stats().to_json()
    if s.cell.scenario == "single-stream":
        value = result.early_stopping_p90_ms or result.latency_ms.get("p90")
        name, higher, text = "p90_latency_ms", False, f"p90 {value:.2f} ms"
    else:
        value = result.samples_per_s
        name, higher, text = "samples_per_s", True, f"{value:.1f} samples/s"
    return {
        "scenario_metric": name,
        "scenario_value": value,
        "higher_is_better": higher,
        "scenario_result": f"{text} ({'VALID' if result.valid else 'INVALID'})",
        "loadgen_valid": result.valid,
        "loadgen_reasons": result.reasons,
        "early_stopping_p90_ms": result.early_stopping_p90_ms,
        **_figures(result, served),
        "loadgen_settings": settings.to_json(),
        **_mlperf(settings),
    }, settings


def server(s: Serving) -> tuple[dict, RunSettings]:
    """The QPS search, between the first target (half the calibrated capacity within the bound)
    and the lowest load whose trial lasts at most LONGEST_TRIAL x --serve-min-time. Latencies
    come from the best VALID trial, else the lowest load tried. (metrics, the settings
    accuracy mode runs with)"""
    bound_ms = s.bound_ms
    search = ServerSearch(
        s.sut,
        s.handles,
        bound_ms,
        s.config.serve_min_time,
        s.config.serve_min_queries,
        s.cell.seed,
        s.logs / "performance",
        s.run_dir,
    )
    start = START_LOAD * capacity_within(s.calibration, s.sut.max_batch, bound_ms / 1e3)
    # the lowest load whose trial (min_queries of them) lasts at most LONGEST_TRIAL min times
    longest_s = LONGEST_TRIAL * s.config.serve_min_time
    slowest = s.config.serve_min_queries / longest_s
    one_ms = s.calibration["batch_1_p99_s"] * 1e3
    trials: list[Trial] = []
    if one_ms > bound_ms:
        stopped = (
            f"one sentence alone took {one_ms:.1f} ms at p99 (batch 1, calibration), above the "
            f"{bound_ms:g} ms bound: no load can meet it, so no trial ran"
        )
    elif start < slowest:
        queries = s.config.serve_min_queries
        stopped = (
            f"the first target, {start:.1f} QPS, would take {queries / start:.0f} s for "
            f"--serve-min-queries {queries}, over {longest_s:g} s ({LONGEST_TRIAL}x "
            "--serve-min-time): no trial ran"
        )
    else:
        trials, stopped = search.run(start, max(start * FLOOR, slowest))
    reasons = [] if trials else [stopped]
    top = best(trials)
    shown = top or min(trials, key=lambda t: t.target_qps, default=None)
    if shown is not None:
        reasons += shown.result.reasons
    value = top.target_qps if top else None
    text = f"{value:.1f} QPS" if value is not None else "no VALID QPS"
    # accuracy mode at that load, or faster if the split would take longer than a trial may
    accuracy_qps = max(shown.target_qps if shown else start, len(s.sut.library) / longest_s)
    settings = search.settings(accuracy_qps)
    return {
        "scenario_metric": "served_qps_at_bound",
        "scenario_value": value,
        "higher_is_better": True,
        "scenario_result": f"{text} at p99 <= {bound_ms:g} ms",
        "served_qps_at_bound": value,
        "latency_bound_ms": bound_ms,
        "max_wait_ms": s.config.serve_max_wait_ms,
        "loadgen_valid": top is not None,
        "loadgen_reasons": reasons,
        **_figures(shown.result if shown else None, shown.served if shown else {}),
        "server_trials": [t.to_json() for t in trials],
        "server_search_stopped": stopped,
        "loadgen_settings": settings.to_json(),
        **_mlperf(settings),
    }, settings


def performance(s: Serving) -> tuple[dict, RunSettings]:
    return server(s) if s.cell.scenario == "server" else fixed_load(s)
