"""The server search's steps and stops, against a SUT whose verdict is a known function of the
load (no LoadGen here; test_serve_loadgen.py runs the search under LoadGen)."""

from __future__ import annotations

from accelbench.measure.loadgen_log import LoadGenResult
from accelbench.serving.qps_search import IDLE, MAX_TRIALS, PRECISION, Trial, best, search_qps


def judge(limit_qps: float, service_ms: float):
    """A trial function: VALID below `limit_qps`; the SUT busy qps x service time."""

    def trial(qps: float) -> Trial:
        valid = qps < limit_qps
        result = LoadGenResult(valid, [] if valid else ["Reduce target QPS"], {}, qps, qps, 0, 0, 0)
        served = {"mean_batch": 1.0, "service_ms_mean": service_ms}
        return Trial(qps, result, served, "")

    return trial


def test_brackets_then_bisects_to_the_precision():
    trials, stopped = search_qps(judge(130.0, 5.0), start_qps=40.0, floor_qps=5.0)
    assert [round(t.target_qps) for t in trials[:3]] == [40, 80, 160]
    assert stopped == f"VALID and INVALID targets within {PRECISION:.0%}"
    top = best(trials)
    invalid = min(t.target_qps for t in trials if not t.result.valid)
    assert top.target_qps < 130.0 <= invalid <= top.target_qps * (1 + PRECISION)


def test_goes_down_to_the_floor_and_no_further():
    trials, stopped = search_qps(judge(1.0, 100.0), start_qps=40.0, floor_qps=6.0)
    assert [t.target_qps for t in trials] == [40.0, 20.0, 10.0, 6.0]
    assert best(trials) is None
    assert stopped == "INVALID down to 6.0 QPS, the search's floor"
    trials, _ = search_qps(judge(7.0, 100.0), start_qps=40.0, floor_qps=6.0)
    assert trials[3].target_qps == 6.0 and trials[3].result.valid
    assert 6.0 <= best(trials).target_qps < 7.0


def test_stops_when_the_bound_breaks_without_queueing():
    # at 40 QPS x 5 ms the SUT is busy 20 % of the time (< IDLE): lower loads cannot help
    trials, stopped = search_qps(judge(1.0, 5.0), start_qps=40.0, floor_qps=1.0)
    assert trials[0].utilization < IDLE and len(trials) == 1
    assert stopped.startswith("INVALID at 40.0 QPS with the SUT busy 20% of the time")


def test_stops_after_max_trials():
    trials, stopped = search_qps(judge(1e9, 0.001), start_qps=1.0, floor_qps=0.1)
    assert len(trials) == MAX_TRIALS and stopped == f"{MAX_TRIALS} trials"
