"""One MLPerf LoadGen test: its settings per scenario, the call, and how far it falls short of
MLPerf's own minimum duration and query count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mlperf_loadgen as lg

from accelbench.measure.loadgen_log import LoadGenResult, performance_result

LG_SCENARIOS = {"single-stream": "SingleStream", "server": "Server", "offline": "Offline"}
MLPERF_BENCHMARK = "bert"  # whose rules in LoadGen's built-in mlperf.conf the record cites
# server: an overloaded trial ends early (INVALID) once this many times the queries that
# arrive within the latency bound are outstanding, plus two full batches
OUTSTANDING_FACTOR = 8


@dataclass(frozen=True)
class RunSettings:
    """What one LoadGen test is asked to do."""

    scenario: str  # a key of LG_SCENARIOS
    accuracy: bool  # AccuracyOnly: every sample once, responses logged
    min_time_s: float
    min_queries: int  # queries (single-stream, server) or samples (offline)
    seed: int
    target_qps: float = 1.0  # server: mean rate of the Poisson arrivals
    latency_bound_ms: float = 0.0  # server: the p99 bound LoadGen judges against
    max_batch: int = 1  # server: the SUT's largest batch (sets the early-out)
    expected_latency_s: float = 1e-3  # single-stream: how many queries LoadGen pre-generates
    expected_qps: float = 1.0  # offline: how many samples the one query holds

    def max_outstanding(self) -> int:
        """Server: outstanding queries at which LoadGen ends an overloaded trial early."""
        arriving = self.target_qps * self.latency_bound_ms / 1e3
        return math.ceil(OUTSTANDING_FACTOR * arriving) + 2 * self.max_batch

    def test_settings(self) -> lg.TestSettings:
        s = lg.TestSettings()
        s.scenario = getattr(lg.TestScenario, LG_SCENARIOS[self.scenario])
        s.mode = lg.TestMode.AccuracyOnly if self.accuracy else lg.TestMode.PerformanceOnly
        s.min_duration_ms = round(self.min_time_s * 1000)
        s.min_query_count = self.min_queries
        s.qsl_rng_seed = s.sample_index_rng_seed = s.schedule_rng_seed = self.seed
        if self.scenario == "server":
            s.server_target_qps = self.target_qps
            s.server_target_latency_ns = round(self.latency_bound_ms * 1e6)
            s.server_target_latency_percentile = 0.99
            s.server_max_async_queries = 0 if self.accuracy else self.max_outstanding()
        elif self.scenario == "single-stream":
            s.single_stream_expected_latency_ns = max(1, round(self.expected_latency_s * 1e9))
            s.single_stream_target_latency_percentile = 0.90
        else:
            s.offline_expected_qps = self.expected_qps
        return s

    def to_json(self) -> dict:
        out: dict = {"min_time_s": self.min_time_s, "min_queries": self.min_queries}
        if self.scenario == "server":
            out.update(
                target_qps=self.target_qps,
                latency_bound_ms=self.latency_bound_ms,
                max_outstanding=self.max_outstanding(),
            )
        return out


def start_test(sut: int, qsl: int, settings: RunSettings, log_dir: Path) -> None:
    """Run one LoadGen test on constructed SUT and QSL handles; logs go to `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logs = lg.LogSettings()
    logs.log_output.outdir = str(log_dir)
    logs.log_output.copy_summary_to_stdout = False
    logs.enable_trace = False
    # an audit.config in the working directory would override the settings: name one that
    # does not exist instead
    lg.StartTestWithLogSettings(
        sut, qsl, settings.test_settings(), logs, str(log_dir / "no-audit.config")
    )
    trace = log_dir / "mlperf_log_trace.json"
    if trace.is_file() and trace.stat().st_size == 0:
        trace.unlink()  # created even with tracing off


def run_performance(sut: int, qsl: int, settings: RunSettings, log_dir: Path) -> LoadGenResult:
    start_test(sut, qsl, settings, log_dir)
    return performance_result(log_dir)


def mlperf_minimum(scenario: str) -> dict:
    """MLPerf's minimum duration and query count for `scenario`, from the mlperf.conf built
    into the installed LoadGen (benchmark MLPERF_BENCHMARK)."""
    ref = lg.TestSettings()
    ref.FromConfig("", MLPERF_BENCHMARK, LG_SCENARIOS[scenario], 0)
    return {"min_duration_s": ref.min_duration_ms / 1000, "min_queries": ref.min_query_count}


def mlperf_shortfall(settings: RunSettings) -> list[str]:
    """Where a performance run's settings fall short of MLPerf's rules ([] if they do not)."""
    need = mlperf_minimum(settings.scenario)
    out = []
    if settings.min_time_s < need["min_duration_s"]:
        out.append(
            f"ran at least {settings.min_time_s:g} s; MLPerf requires {need['min_duration_s']:g} s"
        )
    if settings.min_queries < need["min_queries"]:
        what = "samples" if settings.scenario == "offline" else "queries"
        out.append(f"at least {settings.min_queries} {what}; MLPerf requires {need['min_queries']}")
    return out
