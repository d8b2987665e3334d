"""Serving on MLPerf LoadGen: one scenario per cell (single-stream, server or offline, see
scenarios.py), then LoadGen's accuracy mode over the test split, scored like the infer workload.

The cell infers with the run's checkpoint. Before LoadGen starts, every batch size the scenario
can form runs once (compilation, allocator warm-up) and the service time at batch 1 and at the
largest batch is measured: it sizes LoadGen's pre-generated load (single-stream's expected
latency, offline's expected QPS) and the server search's first target. A compile mode that
records CUDA graphs never serves (backends.compile.serving_refusal): its graphs are recorded
per (rows, width), and queries bring new shapes while they are timed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
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
from accelbench.measure.loadgen_log import accuracy_responses
from accelbench.measure.memory import reset_peaks
from accelbench.serving.loadgen_runs import RunSettings, start_test
from accelbench.serving.scenarios import Serving, performance
from accelbench.serving.sut import SampleLibrary, Sut
from accelbench.workloads.common import (
    CellData,
    load_cell_data,
    make_batches_for_eval,
)
from accelbench.workloads.infer import checkpoint_dir
from accelbench.workloads.metrics import memory_figures
from accelbench.workloads.reference import f1_gate, read_reference

CALIBRATION_REPEATS = 5
TAIL_REPEATS = 100  # server: batch-1 calls whose p99 says whether any load can meet the bound


def loadgen_dir(run_dir: Path, cell: CellSpec) -> Path:
    """Where a serve cell's LoadGen logs go: RUN_DIR/loadgen/<cell_id>/<mode>/."""
    return run_dir / "loadgen" / cell.cell_id


def _times_s(sut: Sut, groups: list[list[int]]) -> list[float]:
    times = []
    for indices in groups:
        t0 = time.perf_counter()
        sut.predict(indices)
        times.append(time.perf_counter() - t0)
    return times


def calibrate(sut: Sut) -> dict:
    """Run each batch size the scenario can form once, then time batch 1 and the largest
    batch (median of CALIBRATION_REPEATS, different sentences each time; server: batch 1
    TAIL_REPEATS times, for its p99 too), in the thread the SUT infers in. Seconds."""
    return sut.on_inference_thread(_calibrate, sut)


def _calibrate(sut: Sut) -> dict:
    n, top = len(sut.library), sut.max_batch
    everything = list(range(n))
    sut.library.load(everything)
    try:
        sizes = range(1, top + 1) if sut.scenario == "server" else {1, min(top, n)}
        for size in sizes:
            sut.predict(everything[: min(size, n)])
        repeats = TAIL_REPEATS if sut.scenario == "server" else CALIBRATION_REPEATS
        ones = _times_s(sut, [[i % n] for i in range(repeats)])
        fulls = [[(k * top + j) % n for j in range(top)] for k in range(CALIBRATION_REPEATS)]
        out = {
            "batch_1_s": statistics.median(ones),
            "batch_max_s": statistics.median(_times_s(sut, fulls)),
        }
        if sut.scenario == "server":
            out["batch_1_p99_s"] = float(np.percentile(ones, 99))
        return out
    finally:
        sut.library.unload(everything)


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


def _parity(word_ids: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Word-level agreement of the served predictions with the reference's argmax."""
    a = np.concatenate([w for w in word_ids if len(w)])
    b = np.concatenate([r.argmax(-1) for r in reference if len(r)])
    if a.shape != b.shape:
        raise ValueError(f"parity: {a.shape[0]} served words vs {b.shape[0]} in the reference")
    return float((a == b).mean())


def run_serve(
    cell: CellSpec,
    config: RunConfig,
    backend: Backend,
    run_dir: Path,
    progress: Callable[[int], object],
) -> dict:
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
    reset_peaks(cell.device)
    with sut.handles() as handles:
        serving = Serving(cell, config, sut, handles, calibration, logs, run_dir)
        metrics, settings = performance(serving)
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
        **memory_figures(cell.device, session),
    )
    out: dict = {"metrics": metrics, "data": data.corpus.summary()}
    reference = read_reference(run_dir)
    if reference is not None:
        ref_logits, ref_meta = reference
        gate, failed = f1_gate(scores["f1"], ref_meta, config)
        metrics.update(argmax_agreement=_parity(word_ids, ref_logits), **gate)
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
