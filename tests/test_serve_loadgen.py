"""The serve SUT under real MLPerf LoadGen, in this process: the server QPS search against the
queueing model of a session with a known service time, accuracy mode scored exactly like the
infer workload, and a session that raises.

How close the search comes to the queueing model depends on how busy the machine is: that
figure is bench/serve_queueing.py's (which reuses this file's session and model); here only what
holds under any load is checked."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from accelbench.config.specs import SCENARIOS, CellSpec
from accelbench.data.encode import Encoded
from accelbench.serving.loadgen_runs import RunSettings, run_performance
from accelbench.serving.qps_search import IDLE, PRECISION, ServerSearch, best
from accelbench.serving.sut import SampleLibrary, Sut

SERVICE_S = 0.002  # the fake session's sleep per batch
BOUND_MS = 20.0
MIN_QUERIES = 700  # LoadGen's early stopping then allows one query over the bound (p99, 99 %)


class SleepSession:
    """A session with a known service time: it sleeps, then answers label 0 everywhere."""

    def __init__(self, service_s: float, fail: bool = False) -> None:
        self.service_s, self.fail = service_s, fail

    def logits(self, batch):
        if self.fail:
            raise RuntimeError("injected session failure")
        time.sleep(self.service_s)
        return torch.zeros((*batch.input_ids.shape, 3))

    def details(self) -> dict:
        return {}


def library(n: int = 64) -> SampleLibrary:
    enc = Encoded(
        tuple((101, 2000 + i, 102) for i in range(n)),
        tuple((-100, 0, -100) for _ in range(n)),
        tuple((1,) for _ in range(n)),
        tuple(1 for _ in range(n)),
        0,
    )
    return SampleLibrary(enc, "cpu", 0, "dynamic", 16)


def md1_sojourn(qps: float, service_s: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sojourn times of n queries in an M/D/1 queue (Lindley's recursion, solved in closed
    form: W_k = U_k - min(U_0..U_k), U the partial sums of service minus inter-arrival)."""
    x = service_s - rng.exponential(1 / qps, n)
    u = np.concatenate([[0.0], np.cumsum(x[:-1])])
    return u - np.minimum.accumulate(u) + service_s


def md1_qps_at_p99(service_s: float, bound_s: float) -> float:
    """The arrival rate at which the M/D/1 p99 sojourn time equals the bound (bisection)."""
    rng = np.random.default_rng(0)
    low, high = 0.0, 1 / service_s
    for _ in range(30):
        mid = (low + high) / 2
        if np.percentile(md1_sojourn(mid, service_s, 400_000, rng), 99) <= bound_s:
            low = mid
        else:
            high = mid
    return low


@pytest.mark.slow
def test_server_search_finds_the_bound_the_queueing_model_predicts(tmp_path):
    sut = Sut(SleepSession(SERVICE_S), library(), "server", max_batch=1, max_wait_s=0.0)
    with sut.handles() as handles:
        search = ServerSearch(
            sut, handles, BOUND_MS, 0.5, MIN_QUERIES, 0, tmp_path / "perf", tmp_path
        )
        trials, stopped = search.run(start_qps=100.0, floor_qps=10.0)
    for t in trials:  # LoadGen's verdict as its detail log states it
        record = t.to_json()
        assert (tmp_path / record["log_dir"] / "mlperf_log_summary.txt").is_file()
        if record["valid"]:
            assert record["p99_ms"] <= BOUND_MS and record["reasons"] == []
        else:
            assert record["reasons"], record
    # batching off: every batch is one query, and an M/D/1 queue with the service time the
    # SUT really took (sleep overshoot and response handling included)
    assert all(t.served["max_batch_formed"] == 1 for t in trials)
    top = best(trials)
    if top is None:
        # so busy a machine that scheduling delays alone broke the bound at every load tried
        # (seen beside a 2-thread matmul loop on 2 cores): the search must have stopped for
        # the reason its own measurements give
        last = trials[-1]
        idle = stopped.startswith("INVALID at") and last.utilization < IDLE
        assert idle or stopped.startswith("INVALID down to"), (stopped, last.to_json())
        pytest.skip(f"no load met the {BOUND_MS:g} ms bound on this busy machine: {stopped}")
    service_s = np.mean([t.served["service_ms_mean"] for t in trials]) / 1e3
    predicted = md1_qps_at_p99(service_s, BOUND_MS / 1e3)
    # a search must never report more than the queue allows: scheduling delays on a busy
    # machine only lower the VALID targets (and raise the service times recorded), so the
    # ceiling holds under any load; how far below it the result sits is a benchmark's figure
    assert top.target_qps <= 1.25 * predicted, (predicted, top.target_qps)
    above = [t for t in trials if not t.result.valid and t.target_qps > top.target_qps]
    assert above, "the search never found where LoadGen says INVALID"
    if stopped != "8 trials":
        assert stopped == "VALID and INVALID targets within 10%"
        assert min(t.target_qps for t in above) <= top.target_qps * (1 + PRECISION) + 1e-9


@pytest.mark.slow  # LoadGen
def test_a_raising_session_is_raised_after_loadgen_finishes(tmp_path):
    sut = Sut(SleepSession(0.0, fail=True), library(), "single-stream", 4, 0.0)
    settings = RunSettings("single-stream", False, min_time_s=0.1, min_queries=50, seed=0)
    with sut.handles() as handles:
        result = run_performance(*handles, settings, tmp_path)  # LoadGen still completes
    assert result.queries >= 50
    with pytest.raises(RuntimeError, match="injected session failure"):
        sut.raise_if_failed()


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_accuracy_mode_scores_exactly_like_the_infer_workload(tiny_model_dir, tmp_path, scenario):
    from accelbench.backends.eager import EagerBackend
    from accelbench.data.corpus import load_corpus
    from accelbench.data.models import build_model, load_tokenizer, resolve_model
    from accelbench.serving.serve import score_accuracy_mode
    from accelbench.workloads.common import evaluate, load_cell_data, make_batches_for_eval

    cell = CellSpec(
        "serve", "eager", "cpu", "fp32", "dynamic", 8, 128, str(tiny_model_dir), "bundled", 42,
        False, eval_limit=48, scenario=scenario,
    )  # fmt: skip
    source = resolve_model(str(tiny_model_dir))
    data = load_cell_data(cell, load_tokenizer(source))
    torch.manual_seed(0)  # a random head: predictions spread over every label
    model = build_model(source, load_corpus("bundled", 42).labels)
    batches = make_batches_for_eval(data, cell)
    session = EagerBackend().prepare_infer(model, cell, batches[0])
    word_logits, infer_scores = evaluate(session, data, batches, "cpu")
    sut = Sut(session, SampleLibrary(data.test, "cpu", data.pad_id, "dynamic", 128), scenario, 8, 0)
    settings = RunSettings(
        scenario, True, min_time_s=0.1, min_queries=1, seed=0, target_qps=500.0,
        latency_bound_ms=50.0, max_batch=8,
    )  # fmt: skip
    with sut.handles() as handles:
        scores, word_ids = score_accuracy_mode(sut, handles, settings, data, Path(tmp_path))
    assert len({int(k) for w in word_ids for k in w}) > 3  # not one label everywhere
    for served, logits in zip(word_ids, word_logits, strict=True):
        np.testing.assert_array_equal(served, logits.argmax(-1))
    assert scores == infer_scores
