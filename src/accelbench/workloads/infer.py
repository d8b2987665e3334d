"""Inference over the test split: an untimed accuracy pass (F1, parity), then the timed loops.

Before any timer starts, every distinct batch shape is called `session.warm_calls` times (3
where CUDA graphs are recorded), then `--warmup-iters` more calls. Throughput: back-to-back
calls timed per iteration (CUDA events on CUDA), the telemetry window around them. Request
latency: on CUDA a second loop, host time per call with the device synchronized after each;
on CPU the calls are synchronous, so the one loop measures both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from accelbench.backends.base import Backend, InferSession
from accelbench.config.job import Role
from accelbench.config.specs import CellSpec, RunConfig
from accelbench.data.encode import Batch, synthetic_batch
from accelbench.data.models import (
    build_model,
    checkpoint_is_meaningful,
    checkpoint_labels,
    checkpoint_meta,
    load_checkpoint,
    load_tokenizer,
    resolve_model,
)
from accelbench.measure.accuracy import parity
from accelbench.measure.kernel_profile import cpu_matmul_ops, profile_call
from accelbench.measure.memory import reset_peaks
from accelbench.measure.stats import repeat_cv
from accelbench.measure.telemetry import Telemetry
from accelbench.measure.timing import (
    RequestTimer,
    TimedResult,
    synchronize,
    timed_loop,
    warm_shapes,
)
from accelbench.workloads import autobatch
from accelbench.workloads.common import (
    SYNTHETIC_LABELS,
    evaluate,
    load_cell_data,
    make_batches_for_eval,
    to_device,
)
from accelbench.workloads.metrics import TimedWork, build, memory_figures
from accelbench.workloads.reference import f1_gate, read_reference, write_reference


def checkpoint_dir(cell: CellSpec, run_dir: Path) -> str:
    return str(run_dir / "checkpoint") if cell.checkpoint == "run-reference" else cell.checkpoint


def synthetic_model(cell: CellSpec, run_dir: Path, tokenizer: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) a synthetic cell times: the --checkpoint when one is given, with its
    own labels; else --model with a new head of SYNTHETIC_LABELS (a synthetic run has no
    reference fine-tune, so "run-reference" means none was given); `tokenizer` is --tokenizer."""
    if cell.checkpoint not in (None, "run-reference"):
        ckpt = checkpoint_dir(cell, run_dir)
        return load_checkpoint(ckpt), load_tokenizer(resolve_model(ckpt))
    source = resolve_model(cell.model, tokenizer)
    return build_model(source, SYNTHETIC_LABELS), load_tokenizer(source)


def _search_batch(
    backend: Backend, model, make: Callable[[CellSpec], list[Batch]], cell: CellSpec, cap: int
) -> autobatch.Search:
    """Time whole passes over the same sentences at each candidate batch, each trial on a
    session of its own: memory a runtime's allocator grew to (or ran out of) in one trial
    does not carry into the next."""

    def measure(batch: int) -> float:
        trial = replace(cell, batch_size=batch)
        batches = make(trial)
        session = backend.prepare_infer(model, trial, batches[0])
        device_batches = to_device(batches, cell.device)
        warm_shapes(session.logits, device_batches, session.warm_calls, _signature)

        def once() -> int:
            for b in device_batches:
                session.logits(b)
            return sum(b.size for b in device_batches)

        return autobatch.rate(once, cell.device)

    return autobatch.search(measure, cap, cell.device)


def _signature(batch: Batch) -> tuple[int, int, bool]:
    return batch.signature


def time_inference(
    session: InferSession,
    items: Sequence[Batch],
    device: str,
    config: RunConfig,
    window: AbstractContextManager | None = None,
    on_iter: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[TimedResult, TimedResult | None]:
    """(throughput loop, request-latency loop or None where the throughput loop is one).

    Every distinct shape gets `session.warm_calls` calls first, so no shape compiles or
    records a CUDA graph inside a timed iteration; one that compiles anyway is left out."""
    warm_shapes(session.logits, items, session.warm_calls, _signature)
    min_iters = max(config.min_iters, 2 * len(items))

    def loop(**kw) -> TimedResult:
        return timed_loop(
            session.logits,
            items,
            device,
            config.warmup_iters,
            min_iters,
            config.min_time,
            on_iter=on_iter,
            clock=clock,
            compiles=lambda: session.compiling_calls,
            **kw,
        )

    throughput = loop(window=window)
    if device != "cuda":
        return throughput, None
    return throughput, loop(timer=RequestTimer(lambda: synchronize(device), clock))


def _work(result: TimedResult, distinct: int) -> TimedWork:
    repeated = distinct > 1
    return TimedWork(
        result.samples_s,
        sum(b.size for b in result.items),
        sum(b.real_tokens for b in result.items),
        [tuple(b.input_ids.shape) for b in result.items],
        "repeats of the same batch" if repeated else "batch latency",
        repeat_cv(result.samples_s, [id(b) for b in result.items]) if repeated else None,
        result.dropped,
    )


def run_infer(
    cell: CellSpec, config: RunConfig, backend: Backend, run_dir: Path, role: Role, progress
) -> dict:
    out: dict = {"metrics": {}}
    metrics = out["metrics"]
    if cell.synthetic:
        model, tokenizer = synthetic_model(cell, run_dir, config.tokenizer)
        data, cap = None, autobatch.MAX_BATCH
        labels = model.config.num_labels

        def make(c: CellSpec) -> list[Batch]:
            return [synthetic_batch(c.batch_size, c.seq_len, tokenizer.vocab_size, labels, c.seed)]

    else:
        ckpt = checkpoint_dir(cell, run_dir)
        tokenizer = load_tokenizer(resolve_model(ckpt))
        data = load_cell_data(cell, tokenizer, checkpoint_labels(ckpt))
        model = load_checkpoint(ckpt)
        cap = len(data.test)

        def make(c: CellSpec) -> list[Batch]:
            return make_batches_for_eval(data, c)

    found = _search_batch(backend, model, make, cell, cap) if cell.auto_batch else None
    if found is not None:
        cell = replace(cell, batch_size=found.chosen)
    batches = make(cell)
    session = backend.prepare_infer(model, cell, batches[0])
    if data is not None:
        word_logits, scores = evaluate(session, data, batches, cell.device)
        metrics.update(
            scores,
            f1_meaningful=checkpoint_is_meaningful(ckpt),
            words_lost_to_truncation=data.test.words_lost,
            eval_sentences=len(data.test),
        )
        out["data"] = data.corpus.summary()
        if role is Role.REFERENCE:  # the fp32 eager pass over --checkpoint: the yardstick
            metrics["reference_undertrained"] = write_reference(
                run_dir, word_logits, scores, metrics["f1_meaningful"]
            )
        reference = read_reference(run_dir)
        if reference is not None:
            ref_logits, ref_meta = reference
            gate, failed = f1_gate(scores["f1"], ref_meta, config)
            metrics.update(parity(word_logits, ref_logits), **gate)
            if failed:
                out.update(status="numeric_fail", reason=failed)

    device_batches = to_device(batches, cell.device)
    reset_peaks(cell.device)
    telemetry = Telemetry(cell.device)
    throughput, latency = time_inference(
        session, device_batches, cell.device, config, telemetry, on_iter=lambda: progress(1)
    )
    work = _work(throughput, len(batches))
    metrics.update(
        build(
            cell,
            work,
            model_config=model.config,
            run_dir=run_dir,
            memory=memory_figures(cell.device, session),
            # every sentence of the telemetry window, dropped iterations' too
            telemetry=telemetry.summary(
                work.sentences + sum(b.size for b in throughput.dropped_items)
            ),
            latency=_work(latency, len(batches)) if latency is not None else None,
        ),
        distinct_batches=len(batches),
        inputs_resident_on_device=True,
    )
    out["details"] = session.details()
    if config.checkpoint and data is not None:  # what ran: the checkpoint, as it describes itself
        out["details"]["checkpoint"] = checkpoint_meta(ckpt)
    if found is not None:
        out["details"]["batch_search"] = found.to_json()
    if cell.device == "cuda":
        _, out["details"]["kernel_profile"] = profile_call(
            lambda: session.logits(device_batches[0]), cell.precision
        )
    elif isinstance(out["details"].get("quantization"), dict):  # torchao on the CPU
        out["details"]["matmul_ops"] = cpu_matmul_ops(lambda: session.logits(device_batches[0]))
    out["samples"] = {"latency_s": (latency or throughput).samples_s}
    if latency is not None:
        out["samples"]["device_time_s"] = throughput.samples_s
    # sentences of each throughput iteration: ratios between cells are per sentence
    out["samples"]["sentences"] = [b.size for b in throughput.items]
    return out
