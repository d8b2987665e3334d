"""Fine-tuning: AdamW with linear warmup/decay; steady-state steps timed; F1 on test at the end."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup

from accelbench.backends.base import Backend
from accelbench.distributed import SINGLE, Rank
from accelbench.encode import Batch, batch_order, collate, encode, synthetic_batch
from accelbench.kernel_profile import profile_call
from accelbench.measure import IterationTimer, synchronize
from accelbench.models import build_model, load_tokenizer, resolve_model, save_checkpoint
from accelbench.reference import write_reference
from accelbench.specs import CellSpec, RunConfig
from accelbench.stats import per_unit_cv, summarize, verdict
from accelbench.telemetry import Telemetry, stability_reasons
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
    tokens and shapes of every rank; the step times (and step shapes) of the rank whose timed
    total is the longest, since the run took that long; the loss averaged over ranks (the
    global batch's); the largest memory peaks."""
    slowest = max(ranks, key=lambda r: sum(r["samples"]))
    memory = {k: max(r["memory"][k] for r in ranks) for k in ranks[0]["memory"]}
    return {
        "samples": slowest["samples"],
        "step_shapes": slowest["shapes"],
        "sentences": sum(s for r in ranks for s, _ in r["sizes"]),
        "tokens": sum(t for r in ranks for _, t in r["sizes"]),
        "shapes": [shape for r in ranks for shape in r["shapes"]],
        "curve": [sum(v) / len(v) for v in zip(*(r["curve"] for r in ranks), strict=True)],
        "memory": memory,
    }


def run_train(
    cell: CellSpec,
    config: RunConfig,
    backend: Backend,
    run_dir: Path,
    role: str,
    progress,
    rank: Rank = SINGLE,
) -> dict:
    source = resolve_model(cell.model)
    tokenizer = load_tokenizer(source)
    if cell.synthetic:
        labels, data = SYNTHETIC_LABELS, None
        fixed = synthetic_batch(
            cell.batch_size, cell.seq_len, tokenizer.vocab_size, len(labels), cell.seed
        )
        stream: Iterator[Batch] = iter(lambda: fixed, None)
        steps_per_epoch = 1
    else:
        data = load_cell_data(cell, tokenizer)
        labels = data.labels
        label2id = {n: i for i, n in enumerate(labels)}
        train_enc = encode(data.corpus.train, tokenizer, label2id, cell.seq_len)
        stream = _epochs(train_enc, cell, data.pad_id, cell.seed, rank)
        steps_per_epoch = math.ceil(len(train_enc) / (cell.batch_size * rank.world_size))
    steps = cell.train_steps or math.ceil(cell.epochs * steps_per_epoch)
    warm = min(10, steps // 5)

    torch.manual_seed(cell.seed)
    model = build_model(source, labels).to(cell.device)
    fused = {"fused": True} if cell.device == "cuda" else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, **fused)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    session = backend.prepare_train(model, cell, optimizer, scheduler)

    reset_memory(cell.device)
    timer = IterationTimer(cell.device)
    losses, sizes, shapes, sentences = [], [], [], 0
    # CUDA: the last warm-up step runs under the profiler (mode evidence), never a timed one
    profile_at = warm - 1 if cell.device == "cuda" and warm >= 2 else None
    kernel_profile = None
    with Telemetry(cell.device) as telemetry:
        for step in range(steps):
            batch = next(stream)
            if step >= warm:
                timer.start()
            if step == profile_at:
                run_step = functools.partial(session.step, to_device([batch], cell.device)[0])
                loss, kernel_profile = profile_call(run_step, cell.precision)
            else:
                loss = session.step(to_device([batch], cell.device)[0])
            if step >= warm:
                timer.stop()
                sizes.append((batch.size, batch.real_tokens))
                shapes.append(tuple(batch.input_ids.shape))
            losses.append(loss)
            sentences += batch.size
            progress(1)
        synchronize(cell.device)
    tele = telemetry.summary(sentences)  # this rank's GPU and sentences
    timed = rank.gather(
        {
            "samples": timer.samples(),
            "sizes": sizes,
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
        step_ms["cv"] = per_unit_cv(samples, [b * t for b, t in run["step_shapes"]])
    details = session.details()
    if kernel_profile is not None:
        details["kernel_profile"] = kernel_profile
    if rank.world_size > 1:
        details.update(dist_backend=rank.backend, threads_per_rank=rank.threads)
        details["rank_timed_s"] = [sum(r["samples"]) for r in timed]
    metrics = {
        "samples_per_s": run["sentences"] / total,
        "tokens_per_s": run["tokens"] / total,
        "world_size": rank.world_size,
        "per_rank_batch": cell.batch_size,
        "global_batch": cell.batch_size * rank.world_size,
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
    if role == "reference":
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
