"""Inference over the test split: an untimed accuracy pass (F1, parity), then the timed loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from accelbench.backends.base import Backend, InferSession
from accelbench.config.job import Role
from accelbench.config.specs import CellSpec, RunConfig
from accelbench.data.encode import Batch, synthetic_batch
from accelbench.data.models import (
    build_model,
    checkpoint_is_meaningful,
    checkpoint_labels,
    load_checkpoint,
    load_tokenizer,
    resolve_model,
)
from accelbench.measure.accuracy import parity
from accelbench.measure.kernel_profile import profile_call
from accelbench.measure.stats import repeat_cv, summarize, verdict
from accelbench.measure.telemetry import Telemetry, stability_reasons
from accelbench.measure.timing import timed_loop
from accelbench.workloads import autobatch
from accelbench.workloads.common import (
    SYNTHETIC_LABELS,
    compute_figures,
    evaluate,
    load_cell_data,
    make_batches_for_eval,
    memory_stats,
    reset_memory,
    to_device,
)
from accelbench.workloads.reference import read_reference, write_reference


def checkpoint_dir(cell: CellSpec, run_dir: Path) -> str:
    return str(run_dir / "checkpoint") if cell.checkpoint == "run-reference" else cell.checkpoint


def _search_batch(
    session: InferSession, make: Callable[[CellSpec], list[Batch]], cell: CellSpec, cap: int
) -> autobatch.Search:
    """Time whole passes over the same sentences at each candidate batch."""

    def measure(batch: int) -> float:
        device_batches = to_device(make(replace(cell, batch_size=batch)), cell.device)

        def once() -> int:
            for b in device_batches:
                session.logits(b)
            return sum(b.size for b in device_batches)

        return autobatch.rate(once, cell.device)

    return autobatch.search(measure, cap, cell.device)


def run_infer(
    cell: CellSpec, config: RunConfig, backend: Backend, run_dir: Path, role: Role, progress
) -> dict:
    out: dict = {"metrics": {}}
    metrics = out["metrics"]
    if cell.synthetic:
        source = resolve_model(cell.model)
        tokenizer = load_tokenizer(source)
        model = build_model(source, SYNTHETIC_LABELS)
        data, cap = None, autobatch.MAX_BATCH

        def make(c: CellSpec) -> list[Batch]:
            return [
                synthetic_batch(
                    c.batch_size, c.seq_len, tokenizer.vocab_size, len(SYNTHETIC_LABELS), c.seed
                )
            ]

    else:
        ckpt = checkpoint_dir(cell, run_dir)
        tokenizer = load_tokenizer(resolve_model(ckpt))
        data = load_cell_data(cell, tokenizer, checkpoint_labels(ckpt))
        model = load_checkpoint(ckpt)
        cap = len(data.test)

        def make(c: CellSpec) -> list[Batch]:
            return make_batches_for_eval(data, c)

    first = replace(cell, batch_size=min(autobatch.START, cap)) if cell.auto_batch else cell
    batches = make(first)
    session = backend.prepare_infer(model, first, batches[0])
    found = _search_batch(session, make, cell, cap) if cell.auto_batch else None
    if found is not None:
        cell = replace(cell, batch_size=found.chosen)
        batches = make(cell)
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
            write_reference(run_dir, word_logits, scores, metrics["f1_meaningful"])
        reference = read_reference(run_dir)
        if reference is not None:
            ref_logits, ref_meta = reference
            metrics.update(
                parity(word_logits, ref_logits),
                reference_f1=ref_meta["f1"],
                delta_f1=scores["f1"] - ref_meta["f1"],
            )
            if scores["f1"] < ref_meta["f1"] - config.f1_tolerance / 100:
                out["status"] = "numeric_fail"
                out["reason"] = (
                    f"entity F1 {scores['f1']:.4f} is more than "
                    f"{config.f1_tolerance:g} point(s) below the fp32 eager "
                    f"reference {ref_meta['f1']:.4f}"
                )

    device_batches = to_device(batches, cell.device)
    reset_memory(cell.device)
    min_iters = max(config.min_iters, 2 * len(batches))
    with Telemetry(cell.device) as telemetry:
        result = timed_loop(
            session.logits,
            device_batches,
            cell.device,
            config.warmup_iters,
            min_iters,
            config.min_time,
            on_iter=lambda: progress(1),
        )
    keys = [id(b) for b in result.items]
    by_id = {id(d): b for d, b in zip(device_batches, batches, strict=True)}
    cpu_items = [by_id[k] for k in keys]
    tele = telemetry.summary(sum(b.size for b in cpu_items))
    total = result.total_s
    latency = summarize(result.samples_s, 1e3)
    if len(batches) > 1:
        latency["cv"] = repeat_cv(result.samples_s, keys)
    metrics.update(
        {
            "samples_per_s": sum(b.size for b in cpu_items) / total,
            "tokens_per_s": sum(b.real_tokens for b in cpu_items) / total,
            "padded_tokens_per_s": sum(b.input_ids.numel() for b in cpu_items) / total,
            "latency_ms": latency,
            "cv_basis": "repeats of the same batch" if len(batches) > 1 else "batch latency",
            "stability": verdict(latency, stability_reasons(tele["telemetry"])),
            "batch_size_ran": cell.batch_size,
            "timed_batches": len(result.samples_s),
            "distinct_batches": len(batches),
            "inputs_resident_on_device": True,
            **memory_stats(cell.device),
            **tele,
            **compute_figures(
                model.config,
                cell,
                [tuple(b.input_ids.shape) for b in cpu_items],
                total,
                train=False,
                run_dir=run_dir,
            ),
        }
    )
    out["details"] = session.details()
    if found is not None:
        out["details"]["batch_search"] = found.to_json()
    if cell.device == "cuda":
        _, out["details"]["kernel_profile"] = profile_call(
            lambda: session.logits(device_batches[0]), cell.precision
        )
    out["samples"] = {"latency_s": result.samples_s}
    return out
