"""Fine-tuning: AdamW with linear warmup/decay; steady-state steps timed; F1 on test at the end."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup

from accelbench.backends.base import Backend
from accelbench.backends.distributed import SINGLE, Rank
from accelbench.config.job import Role
from accelbench.config.specs import CellSpec, RunConfig
from accelbench.data.encode import Batch, batch_order, collate, encode, synthetic_batch
from accelbench.data.models import build_model, load_tokenizer, resolve_model, save_checkpoint
from accelbench.measure.kernel_profile import profile_call
from accelbench.measure.stats import per_unit_cv, summarize, verdict
from accelbench.measure.telemetry import Telemetry, stability_reasons
from accelbench.measure.timing import IterationTimer, synchronize
from accelbench.workloads import autobatch
from accelbench.workloads.common import (
    SYNTHETIC_LABELS,
    CellData,
    compute_figures,
    evaluate,
    load_cell_data,
    make_batches_for_eval,
    memory_stats,
    reset_memory,
    to_device,
)
from accelbench.workloads.reference import write_reference

MAX_LOSS_POINTS = 200


def _epochs(enc, cell: CellSpec, pad_id: int, seed: int, rank: Rank) -> Iterator[Batch]:
    """This rank's batches: numbers rank, rank + N, rank + 2N, ... of the seeded batch order
    (all of it for a single process), epoch after epoch."""
    rng = random.Random(seed)
    n = 0
    while True:
        for idx in batch_order(enc, cell.batch_size, cell.padding, rng):
            if n % rank.world_size == rank.rank:
                yield collate(enc, idx, cell.padding, cell.seq_len, pad_id)
            n += 1


def _combine(ranks: list[dict]) -> dict:
    """The timed figures of ranks that step in lockstep (the gradient all-reduce): sentences,
    tokens and shapes of every rank; the step times (and padded tokens per step) of the rank
    whose timed total is the longest, since the run took that long; the loss averaged over
    ranks (the global batch's); the largest memory peaks."""
    slowest = max(ranks, key=lambda r: sum(r["samples"]))
    memory = {k: max(r["memory"][k] for r in ranks) for k in ranks[0]["memory"]}
    return {
        "samples": slowest["samples"],
        "step_units": slowest["units"],
        "sentences": sum(s for r in ranks for s, _ in r["sizes"]),
        "tokens": sum(t for r in ranks for _, t in r["sizes"]),
        "shapes": [shape for r in ranks for shape in r["shapes"]],
        "curve": [sum(v) / len(v) for v in zip(*(r["curve"] for r in ranks), strict=True)],
        "memory": memory,
    }


@dataclass
class TrainInput:
    """What a train cell steps over: its labels, the eval data (None when synthetic), the
    number of training sentences, and this rank's endless stream of training batches for a
    cell (shuffled per epoch with the cell's seed; one fixed batch when synthetic)."""

    labels: tuple[str, ...]
    data: CellData | None
    size: int
    make_stream: Callable[[CellSpec], Iterator[Batch]]


def train_input(
    cell: CellSpec, tokenizer, rank: Rank = SINGLE, seed: int | None = None
) -> TrainInput:
    """`seed` orders the batches (default: the cell's); the split always uses the cell's."""
    if cell.synthetic:

        def fixed_batch(c: CellSpec) -> Iterator[Batch]:
            fixed = synthetic_batch(
                c.batch_size, c.seq_len, tokenizer.vocab_size, len(SYNTHETIC_LABELS), c.seed
            )
            return iter(lambda: fixed, None)

        return TrainInput(SYNTHETIC_LABELS, None, autobatch.MAX_BATCH, fixed_batch)
    data = load_cell_data(cell, tokenizer)
    label2id = {n: i for i, n in enumerate(data.labels)}
    train_enc = encode(data.corpus.train, tokenizer, label2id, cell.seq_len)

    def epochs(c: CellSpec) -> Iterator[Batch]:
        return _epochs(train_enc, c, data.pad_id, c.seed if seed is None else seed, rank)

    return TrainInput(data.labels, data, len(train_enc), epochs)


def warmup_steps(steps: int) -> int:
    """Untimed steps before the timed ones."""
    return min(10, steps // 5)


def _optimizer(model: torch.nn.Module, cell: CellSpec, lr: float) -> torch.optim.Optimizer:
    fused = {"fused": True} if cell.device == "cuda" else {}
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, **fused)


def _search_batch(
    cell: CellSpec,
    config: RunConfig,
    backend: Backend,
    build: Callable[[], torch.nn.Module],
    make_stream: Callable[[CellSpec], Iterator[Batch]],
    cap: int,
) -> autobatch.Search:
    """Time a few optimizer steps of a throw-away model at each candidate batch."""

    def measure(batch: int) -> float:
        trial = replace(cell, batch_size=batch)
        model = build().to(cell.device)
        optimizer = _optimizer(model, cell, config.lr)
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
        session = backend.prepare_train(model, trial, optimizer, scheduler)
        stream = make_stream(trial)

        def once() -> int:
            micro = [next(stream) for _ in range(cell.grad_accum)]
            session.step(to_device(micro, cell.device))
            return sum(b.size for b in micro)

        return autobatch.rate(once, cell.device)

    return autobatch.search(measure, cap, cell.device)


def run_train(
    cell: CellSpec,
    config: RunConfig,
    backend: Backend,
    run_dir: Path,
    role: Role,
    progress,
    rank: Rank = SINGLE,
    seed: int | None = None,
) -> dict:
    """Fine-tune the cell's model; `seed` (default: the cell's) initializes the head and orders
    the batches, so repeats of a cell are seeds of it."""
    seed = cell.seed if seed is None else seed
    source = resolve_model(cell.model)
    tokenizer = load_tokenizer(source)
    inputs = train_input(cell, tokenizer, rank, seed)
    labels, data, make_stream = inputs.labels, inputs.data, inputs.make_stream
    found = None
    if cell.auto_batch:  # one process only (RunConfig refuses auto with --nproc > 1)
        build = functools.partial(build_model, source, labels)
        found = _search_batch(
            cell, config, backend, build, make_stream, inputs.size // cell.grad_accum
        )
        cell = replace(cell, batch_size=found.chosen)
    stream = make_stream(cell)
    global_batch = cell.batch_size * cell.grad_accum * rank.world_size
    steps_per_epoch = 1 if cell.synthetic else math.ceil(inputs.size / global_batch)
    steps = cell.train_steps or math.ceil(cell.epochs * steps_per_epoch)
    warm = warmup_steps(steps)

    torch.manual_seed(seed)
    model = build_model(source, labels).to(cell.device)
    optimizer = _optimizer(model, cell, config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    session = backend.prepare_train(model, cell, optimizer, scheduler)

    reset_memory(cell.device)
    timer = IterationTimer(cell.device)
    losses, sizes, units, shapes, sentences = [], [], [], [], 0
    # CUDA: the last warm-up step runs under the profiler (mode evidence), never a timed one
    profile_at = warm - 1 if cell.device == "cuda" and warm >= 2 else None
    kernel_profile = None
    with Telemetry(cell.device) as telemetry:
        for step in range(steps):
            micro = [next(stream) for _ in range(cell.grad_accum)]
            if step >= warm:
                timer.start()
            if step == profile_at:
                run_step = functools.partial(session.step, to_device(micro, cell.device))
                loss, kernel_profile = profile_call(run_step, cell.precision)
            else:
                loss = session.step(to_device(micro, cell.device))
            if step >= warm:
                timer.stop()
                sizes.extend((b.size, b.real_tokens) for b in micro)
                step_shapes = [tuple(b.input_ids.shape) for b in micro]
                shapes.extend(step_shapes)
                units.append(sum(n * length for n, length in step_shapes))
            losses.append(loss)
            sentences += sum(b.size for b in micro)
            progress(1)
        synchronize(cell.device)
    tele = telemetry.summary(sentences)  # this rank's GPU and sentences
    timed = rank.gather(
        {
            "samples": timer.samples(),
            "sizes": sizes,
            "units": units,
            "shapes": shapes,
            "curve": torch.stack(losses).float().cpu().tolist(),
            "memory": memory_stats(cell.device),
        }
    )
    if not rank.leader:
        return {}
    run = _combine(timed)
    samples, curve = run["samples"], run["curve"]
    total = sum(samples)
    every = max(1, len(curve) // MAX_LOSS_POINTS)
    step_ms = summarize(samples, 1e3)
    varied = len(set(run["shapes"])) > 1
    if varied:
        step_ms["cv"] = per_unit_cv(samples, run["step_units"])
    details = session.details()
    if found is not None:
        details["batch_search"] = found.to_json()
    if kernel_profile is not None:
        details["kernel_profile"] = kernel_profile
    if rank.world_size > 1:
        details.update(dist_backend=rank.backend, threads_per_rank=rank.threads)
        details["rank_timed_s"] = [sum(r["samples"]) for r in timed]
    metrics = {
        "samples_per_s": run["sentences"] / total,
        "tokens_per_s": run["tokens"] / total,
        "batch_size_ran": cell.batch_size,
        "grad_accum": cell.grad_accum,
        "world_size": rank.world_size,
        "per_rank_batch": cell.batch_size,
        "global_batch": global_batch,
        "step_time_ms": step_ms,
        "cv_basis": "time per padded token" if varied else "step time",
        "stability": verdict(step_ms, stability_reasons(tele["telemetry"])),
        "train_steps": steps,
        "timed_steps": len(samples),
        "warmup_steps": warm,
        "optimizer_steps_applied": steps - details.get("skipped_steps", 0),
        "epochs": steps / steps_per_epoch,
        "loss_curve": [[i + 1, curve[i]] for i in range(0, len(curve), every)],
        "final_loss": curve[-1],
        **run["memory"],
        **tele,
        **compute_figures(
            model.config,
            cell,
            run["shapes"],
            total,
            train=True,
            run_dir=run_dir,
            devices=rank.world_size if cell.device == "cuda" else 1,
        ),
    }
    out = {"metrics": metrics, "details": details, "samples": {"step_time_s": samples}}
    if data is None:
        return out

    evaluator = session.evaluator()
    word_logits, scores = evaluate(evaluator, data, make_batches_for_eval(data, cell), cell.device)
    metrics.update(
        scores, f1_meaningful=source.pretrained, words_lost_to_truncation=data.test.words_lost
    )
    out["data"] = data.corpus.summary()
    if role is Role.REFERENCE:
        save_checkpoint(
            model,
            tokenizer,
            run_dir / "checkpoint",
            {
                "pretrained": source.pretrained,
                "cell_id": cell.cell_id,
                "labels": list(labels),
                **data.corpus.summary(),
            },
        )
        write_reference(run_dir, word_logits, scores, source.pretrained)
    return out
