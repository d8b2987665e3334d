"""What MLPerf LoadGen wrote: its verdict, latencies and throughput (mlperf_log_detail.txt) and
the responses of an accuracy run (mlperf_log_accuracy.json).

The detail log is one `:::MLLOG {json}` line per logged key. Reading it, rather than re-deriving
anything, keeps LoadGen the judge of every number and of VALID/INVALID.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DETAIL = "mlperf_log_detail.txt"
SUMMARY = "mlperf_log_summary.txt"
ACCURACY = "mlperf_log_accuracy.json"
PREFIX = ":::MLLOG "
# LoadGen's latency percentiles, as its keys spell them -> the name accelbench records
PERCENTILES = {"50.00": "p50", "90.00": "p90", "95.00": "p95", "97.00": "p97", "99.00": "p99"}
RESPONSE_DTYPE = np.int32  # per-word label ids, as the serve SUT responds


def read_detail(log_dir: Path) -> tuple[dict[str, object], list[str]]:
    """(key -> value, the errors and warnings LoadGen logged) from a run's detail log."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for line in (log_dir / DETAIL).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith(PREFIX):
            continue
        entry = json.loads(line[len(PREFIX) :])
        key, value = entry.get("key", ""), entry.get("value")
        if key.startswith(("error_", "warning_")):
            problems.append(f"{key}: {value}")
        values[key] = value
    return values, problems


@dataclass(frozen=True)
class LoadGenResult:
    """One LoadGen performance run, as LoadGen judged and measured it."""

    valid: bool
    reasons: list[str]  # why INVALID, early stopping's verdict, logged errors
    latency_ms: dict[str, float]  # p50 ... p99, mean, min, max (per query), n
    samples_per_s: float | None  # offline: samples/s; server: completed; single-stream: w/ LG
    scheduled_qps: float | None  # server: queries per second as scheduled
    queries: int
    overlatency_queries: int | None  # server: queries over the latency bound
    early_stopping_p90_ms: float | None  # single-stream: early stopping's p90 estimate
    settings: dict[str, object] = field(default_factory=dict)  # LoadGen's effective_* values

    def to_json(self) -> dict:
        return {
            "valid": self.valid,
            "reasons": self.reasons,
            "latency_ms": self.latency_ms,
            "samples_per_s": self.samples_per_s,
            "scheduled_qps": self.scheduled_qps,
            "queries": self.queries,
            "overlatency_queries": self.overlatency_queries,
            "early_stopping_p90_ms": self.early_stopping_p90_ms,
        }


def _ms(value: object) -> float | None:
    return None if value is None else float(value) / 1e6  # type: ignore[arg-type]


def performance_result(log_dir: Path) -> LoadGenResult:
    """LoadGen's verdict and figures for the performance run logged in `log_dir`."""
    v, problems = read_detail(log_dir)
    if "result_validity" not in v:
        raise RuntimeError(f"LoadGen logged no result in {log_dir / DETAIL}")
    reasons = []
    if v.get("result_invalid_reason"):
        reasons.append(str(v["result_invalid_reason"]).strip())
    if v.get("early_stopping_met") is False or v.get("result_validity") != "VALID":
        reasons += [str(v[k]).strip() for k in ("early_stopping_result",) if v.get(k)]
    reasons += problems
    latency = {
        name: _ms(v.get(f"result_{p}_percentile_latency_ns")) for p, name in PERCENTILES.items()
    }
    latency.update(
        mean=_ms(v.get("result_mean_latency_ns")),
        min=_ms(v.get("result_min_latency_ns")),
        max=_ms(v.get("result_max_latency_ns")),
    )
    throughput = (
        v.get("result_samples_per_second")
        or v.get("result_completed_samples_per_sec")
        or v.get("result_qps_with_loadgen_overhead")
    )
    return LoadGenResult(
        valid=v["result_validity"] == "VALID",
        reasons=[r for r in reasons if r],
        latency_ms={k: x for k, x in latency.items() if x is not None},
        samples_per_s=None if throughput is None else float(throughput),  # type: ignore[arg-type]
        scheduled_qps=v.get("result_scheduled_samples_per_sec"),  # type: ignore[arg-type]
        queries=int(v.get("result_query_count", 0)),  # type: ignore[arg-type]
        overlatency_queries=v.get("result_overlatency_query_count"),  # type: ignore[arg-type]
        early_stopping_p90_ms=_ms(v.get("early_stopping_latency_ss")),
        settings={k[len("effective_") :]: x for k, x in v.items() if k.startswith("effective_")},
    )


def accuracy_responses(log_dir: Path) -> dict[int, np.ndarray]:
    """Sample index -> the response bytes LoadGen logged in accuracy mode, as label ids."""
    entries = json.loads((log_dir / ACCURACY).read_text(encoding="utf-8"))
    return {
        int(e["qsl_idx"]): np.frombuffer(bytes.fromhex(e["data"]), dtype=RESPONSE_DTYPE)
        for e in entries
    }
