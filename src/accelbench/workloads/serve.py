"""Serving on MLPerf LoadGen: one scenario per cell (single-stream, server or offline), then
LoadGen's accuracy mode over the test split, scored like the infer workload.

The cell infers with the run's checkpoint. Before LoadGen starts, every batch size the scenario
can form runs once (compilation, allocator warm-up) and the service time at batch 1 and at the
largest batch is measured: it sizes LoadGen's pre-generated load (single-stream's expected
latency, offline's expected QPS) and the server search's first target.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from accelbench.backends.base import Backend
from accelbench.config.specs import CellSpec, RunConfig
from accelbench.data.models import (
    checkpoint_is_meaningful,
    checkpoint_labels,
    load_checkpoint,
    load_tokenizer,
    resolve_model,
)
from accelbench.measure.accuracy import decode_ids, entity_scores
from accelbench.measure.loadgen_log import LoadGenResult, accuracy_responses
from accelbench.workloads.common import (
    CellData,
    load_cell_data,
    make_batches_for_eval,
    memory_stats,
    reset_memory,
)
from accelbench.workloads.infer import checkpoint_dir
from accelbench.workloads.loadgen_runs import (
    RunSettings,
    mlperf_minimum,
    mlperf_shortfall,
    run_performance,
    start_test,
)
from accelbench.workloads.qps_search import ServerSearch, Trial, best
from accelbench.workloads.reference import below_reference, read_reference
from accelbench.workloads.sut import SampleLibrary, Sut

CALIBRATION_REPEATS = 5
OFFLINE_SLACK = 1.5  # offline query: this many times the samples the calibration expects
START_LOAD = 0.5  # server: first target, as a share of the calibrated capacity within the bound
FLOOR = 1 / 8  # server: lowest target, as a share of the first


def loadgen_dir(run_dir: Path, cell: CellSpec) -> Path:
    """Where a serve cell's LoadGen logs go: RUN_DIR/loadgen/<cell_id>/<mode>/."""
    return run_dir / "loadgen" / cell.cell_id


def _median_s(sut: Sut, groups: list[list[int]]) -> float:
    times = []
    for indices in groups:
        t0 = time.perf_counter()
        sut.predict(indices)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def calibrate(sut: Sut) -> dict:
    """Run each batch size the scenario can form once, then time batch 1 and the largest
    batch (median of CALIBRATION_REPEATS, different sentences each time). Seconds."""
    n, top = len(sut.library), sut.max_batch
    everything = list(range(n))
    sut.library.load(everything)
    try:
        sizes = range(1, top + 1) if sut.scenario == "server" else {1, min(top, n)}
        for size in sizes:
            sut.predict(everything[: min(size, n)])
        ones = [[i % n] for i in range(CALIBRATION_REPEATS)]
        fulls = [[(k * top + j) % n for j in range(top)] for k in range(CALIBRATION_REPEATS)]
        return {"batch_1_s": _median_s(sut, ones), "batch_max_s": _median_s(sut, fulls)}
    finally:
        sut.library.unload(everything)


def capacity_within(calibration: dict, max_batch: int, bound_s: float) -> float:
    """Queries per second at the largest batch whose service time (linear between batch 1 and
    the largest) leaves half the bound for queueing."""
    one, full = calibration["batch_1_s"], calibration["batch_max_s"]
    per_sample = (full - one) / (max_batch - 1) if max_batch > 1 else 0.0
    fits = [b for b in range(1, max_batch + 1) if one + per_sample * (b - 1) <= bound_s / 2]
    b = max(fits, default=1)
    return b / (one + per_sample * (b - 1))


def score_accuracy_mode(
    sut: Sut, handles: tuple[int, int], settings: RunSettings, data: CellData, log_dir: Path
) -> tuple[dict, list[np.ndarray]]:
    """LoadGen's accuracy mode: every test sentence once; entity scores of the responses."""
    start_test(*handles, settings, log_dir)
    sut.raise_if_failed()
    responses = accuracy_responses(log_dir)
    missing = sorted(set(range(len(data.test))) - set(responses))
    if missing:
        raise RuntimeError(f"LoadGen's accuracy log lacks {len(missing)} of the test sentences")
    word_ids = [responses[i] for i in range(len(data.test))]
    pred = decode_ids(word_ids, data.test.n_words, data.labels)
    return entity_scores(data.test_gold, pred), word_ids


def _latency_metrics(result: LoadGenResult) -> dict:
    return {**result.latency_ms, "n": result.queries}


def _scenario(
    cell: CellSpec, config: RunConfig, sut: Sut, handles, calibration: dict, logs: Path, run_dir
) -> tuple[dict, RunSettings]:
    """The scenario's LoadGen performance run(s): metrics, and the settings accuracy mode
    reuses."""
    base = {
        "min_time_s": config.serve_min_time,
        "min_queries": config.serve_min_queries,
        "seed": cell.seed,
    }
    if cell.scenario == "server":
        return _server(cell, config, sut, handles, calibration, logs, run_dir, base)
    if cell.scenario == "single-stream":
        settings = RunSettings(
            "single-stream", False, expected_latency_s=calibration["batch_1_s"] / 2, **base
        )
    else:
        expected = OFFLINE_SLACK * sut.max_batch / calibration["batch_max_s"]
        settings = RunSettings("offline", False, expected_qps=expected, **base)
    result = run_performance(*handles, settings, logs / "performance")
    sut.raise_if_failed()
    served = sut.reset_stats().to_json()
    if cell.scenario == "single-stream":
        p90 = result.early_stopping_p90_ms or result.latency_ms.get("p90")
        metric = ("p90_latency_ms", p90, False, f"p90 {p90:.2f} ms")
    else:
        rate = result.samples_per_s or 0.0
        metric = ("samples_per_s", rate, True, f"{rate:.1f} samples/s")
    name, value, higher, text = metric
    verdict = "VALID" if result.valid else "INVALID"
    return {
        "scenario_metric": name,
        "scenario_value": value,
        "higher_is_better": higher,
        "scenario_result": f"{text} ({verdict})",
        "loadgen_valid": result.valid,
        "loadgen_reasons": result.reasons,
        "early_stopping_p90_ms": result.early_stopping_p90_ms,
        "samples_per_s": result.samples_per_s,
        "tokens_per_s": (result.samples_per_s or 0.0) * served["tokens_per_sample"],
        "latency_ms": _latency_metrics(result),
        "mean_batch_size": served["mean_batch"],
        "loadgen_settings": settings.to_json(),
        **_mlperf(settings),
    }, settings


def _server(
    cell: CellSpec, config, sut: Sut, handles, calibration: dict, logs: Path, run_dir, base: dict
) -> tuple[dict, RunSettings]:
    bound_ms = config.latency_bound(cell.device)
    search = ServerSearch(
        sut,
        handles,
        bound_ms,
        config.serve_min_time,
        config.serve_min_queries,
        cell.seed,
        logs / "performance",
        run_dir,
    )
    start = START_LOAD * capacity_within(calibration, sut.max_batch, bound_ms / 1e3)
    trials: list[Trial] = []
    one_ms = calibration["batch_1_s"] * 1e3
    reasons = []
    if one_ms > bound_ms:
        reasons.append(
            f"one sentence alone takes {one_ms:.1f} ms (median, batch 1), above the "
            f"{bound_ms:g} ms bound: no load meets it, so no trial ran"
        )
    else:
        trials = search.run(start, start * FLOOR)
    top = best(trials)
    # the run the latencies come from: the best VALID trial, else the lowest load tried
    shown = top or min(trials, key=lambda t: t.target_qps, default=None)
    result = shown.result if shown else None
    served = shown.served if shown else {}
    if result is not None:
        reasons += result.reasons
    value = top.target_qps if top else None
    text = (
        f"{value:.1f} QPS at p99 <= {bound_ms:g} ms"
        if value is not None
        else f"no VALID QPS at p99 <= {bound_ms:g} ms"
    )
    # accuracy mode runs at the load the latencies come from
    settings = search.settings(shown.target_qps if shown else start)
    rate = result.samples_per_s if result else None
    return {
        "scenario_metric": "served_qps_at_bound",
        "scenario_value": value,
        "higher_is_better": True,
        "scenario_result": text,
        "served_qps_at_bound": value,
        "latency_bound_ms": bound_ms,
        "max_wait_ms": config.serve_max_wait_ms,
        "loadgen_valid": top is not None,
        "loadgen_reasons": reasons,
        "samples_per_s": rate,
        "tokens_per_s": rate * served["tokens_per_sample"] if rate else None,
        "latency_ms": _latency_metrics(result) if result else {},
        "mean_batch_size": served.get("mean_batch"),
        "server_trials": [t.to_json() for t in trials],
        "loadgen_settings": settings.to_json(),
        **_mlperf(settings),
    }, settings


def _mlperf(settings: RunSettings) -> dict:
    shortfall = mlperf_shortfall(settings)
    return {
        "below_mlperf_minimum": bool(shortfall),
        "mlperf_shortfall": shortfall,
        "mlperf_minimum": mlperf_minimum(settings.scenario),
    }


def _parity(word_ids: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Word-level agreement of the served predictions with the reference's argmax."""
    a = np.concatenate([w for w in word_ids if len(w)])
    b = np.concatenate([r.argmax(-1) for r in reference if len(r)])
    if a.shape != b.shape:
        raise ValueError(f"parity: {a.shape[0]} served words vs {b.shape[0]} in the reference")
    return float((a == b).mean())


def run_serve(cell: CellSpec, config: RunConfig, backend: Backend, run_dir: Path, progress):
    ckpt = checkpoint_dir(cell, run_dir)
    data = load_cell_data(cell, load_tokenizer(resolve_model(ckpt)), checkpoint_labels(ckpt))
    session = backend.prepare_infer(
        load_checkpoint(ckpt), cell, make_batches_for_eval(data, cell)[0]
    )
    library = SampleLibrary(data.test, cell.device, data.pad_id, cell.padding, cell.seq_len)
    sut = Sut(session, library, cell.scenario, cell.batch_size, config.serve_max_wait_ms / 1e3)
    logs = loadgen_dir(run_dir, cell)
    calibration = calibrate(sut)
    compiled_before = session.details().get("compiling_calls")
    reset_memory(cell.device)
    with sut.handles() as handles:
        metrics, settings = _scenario(cell, config, sut, handles, calibration, logs, run_dir)
        progress(1)
        accuracy = replace(settings, accuracy=True)
        scores, word_ids = score_accuracy_mode(sut, handles, accuracy, data, logs / "accuracy")
        progress(1)
    sut.raise_if_failed()
    metrics.update(
        scores,
        scenario=cell.scenario,
        batch_size_ran=cell.batch_size,
        f1_meaningful=checkpoint_is_meaningful(ckpt),
        words_lost_to_truncation=data.test.words_lost,
        eval_sentences=len(data.test),
        **memory_stats(cell.device),
    )
    out: dict = {"metrics": metrics, "data": data.corpus.summary()}
    reference = read_reference(run_dir)
    if reference is not None:
        ref_logits, ref_meta = reference
        metrics.update(
            argmax_agreement=_parity(word_ids, ref_logits),
            reference_f1=ref_meta["f1"],
            delta_f1=scores["f1"] - ref_meta["f1"],
        )
        failed = below_reference(scores["f1"], ref_meta["f1"], config.f1_tolerance)
        if failed:
            out.update(status="numeric_fail", reason=failed)
    details = session.details()
    serve = {
        "calibration_ms": {k.replace("_s", "_ms"): v * 1e3 for k, v in calibration.items()},
        "max_batch": cell.batch_size,
        "log_dir": str(logs.relative_to(run_dir)),
    }
    if compiled_before is not None:
        serve["compiled_while_serving"] = details["compiling_calls"] - compiled_before
    out["details"] = {**details, "serve": serve}
    return out
