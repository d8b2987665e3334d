"""Fine-tuning: AdamW with linear warmup/decay; steady-state steps timed; F1 on test at the end."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup

from accelbench.backends.base import Backend
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
    CellData,
    compute_figures,
    evaluate,
    load_cell_data,
    make_batches_for_eval,
    memory_stats,
    reset_memory,
    to_device,
)

MAX_LOSS_POINTS = 200


def _epochs(enc, cell: CellSpec, pad_id: int, seed: int) -> Iterator[Batch]:
    rng = random.Random(seed)
    while True:
        for idx in batch_order(enc, cell.batch_size, cell.padding, rng):
            yield collate(enc, idx, cell.padding, cell.seq_len, pad_id)


@dataclass
class TrainInput:
    """What a train cell steps over: its labels, the eval data (None when synthetic) and the
    endless stream of training batches, shuffled per epoch with the cell's seed."""

    labels: tuple[str, ...]
    data: CellData | None
    stream: Iterator[Batch]
    steps_per_epoch: int


def train_input(cell: CellSpec, tokenizer) -> TrainInput:
    if cell.synthetic:
        fixed = synthetic_batch(
            cell.batch_size, cell.seq_len, tokenizer.vocab_size, len(SYNTHETIC_LABELS), cell.seed
        )
        return TrainInput(SYNTHETIC_LABELS, None, iter(lambda: fixed, None), 1)
    data = load_cell_data(cell, tokenizer)
    label2id = {n: i for i, n in enumerate(data.labels)}
    train_enc = encode(data.corpus.train, tokenizer, label2id, cell.seq_len)
    return TrainInput(
        data.labels,
        data,
        _epochs(train_enc, cell, data.pad_id, cell.seed),
        math.ceil(len(train_enc) / cell.batch_size),
    )


def warmup_steps(steps: int) -> int:
    """Untimed steps before the timed ones."""
    return min(10, steps // 5)


def run_train(
    cell: CellSpec, config: RunConfig, backend: Backend, run_dir: Path, role: str, progress
) -> dict:
    source = resolve_model(cell.model)
    tokenizer = load_tokenizer(source)
    inputs = train_input(cell, tokenizer)
    labels, data, stream = inputs.labels, inputs.data, inputs.stream
    steps = cell.train_steps or math.ceil(cell.epochs * inputs.steps_per_epoch)
    warm = warmup_steps(steps)

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
    tele = telemetry.summary(sentences)
    samples = timer.samples()
    total = sum(samples)
    curve = torch.stack(losses).float().cpu().numpy()
    every = max(1, len(curve) // MAX_LOSS_POINTS)
    step_ms = summarize(samples, 1e3)
    varied = len(set(shapes)) > 1
    if varied:
        step_ms["cv"] = per_unit_cv(samples, [b * t for b, t in shapes])
    details = session.details()
    if kernel_profile is not None:
        details["kernel_profile"] = kernel_profile
    metrics = {
        "samples_per_s": sum(s for s, _ in sizes) / total,
        "tokens_per_s": sum(t for _, t in sizes) / total,
        "step_time_ms": step_ms,
        "cv_basis": "time per padded token" if varied else "step time",
        "stability": verdict(step_ms, stability_reasons(tele["telemetry"])),
        "train_steps": steps,
        "timed_steps": len(samples),
        "warmup_steps": warm,
        "optimizer_steps_applied": steps - details.get("skipped_steps", 0),
        "epochs": steps / inputs.steps_per_epoch,
        "loss_curve": [[i + 1, float(curve[i])] for i in range(0, len(curve), every)],
        "final_loss": float(curve[-1]),
        **memory_stats(cell.device),
        **tele,
        **compute_figures(model.config, cell, shapes, total, train=True, run_dir=run_dir),
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
