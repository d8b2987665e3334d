"""Fine-tuning: AdamW with linear warmup/decay; steady-state steps timed; F1 on test at the end.

A run's micro-batches are fixed before its first step (the seeded batch order, this rank's
share), so every shape it will meet is known in advance:
- the session's `warm_shapes` gets one micro-batch of each, on the cell's device, before the
  first step (compile: every graph is compiled there, untimed); a timed step during which
  the runtime compiled anyway is left out of the timed samples, its time and its sentences,
  and counted (`timed_steps_compiled`, expected 0);
- each step's micro-batches are staged (pinned and copied to the device) before its timer
  starts, as inference's inputs are resident on the device before its timed loop: both time
  steady-state work without host-to-device copies.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from transformers import get_linear_schedule_with_warmup

from accelbench.backends.base import Backend
from accelbench.backends.distributed import SINGLE, Rank
from accelbench.config.job import Role
from accelbench.config.specs import CellSpec, RunConfig
from accelbench.data.encode import Batch, batch_order, collate, encode, signature, synthetic_batch
from accelbench.data.models import build_model, load_tokenizer, resolve_model, save_checkpoint
from accelbench.measure.kernel_profile import profile_call
from accelbench.measure.memory import reset_peaks
from accelbench.measure.stats import per_unit_cv
from accelbench.measure.telemetry import Telemetry
from accelbench.measure.timing import IterationTimer, synchronize
from accelbench.workloads import autobatch
from accelbench.workloads.common import (
    SYNTHETIC_LABELS,
    CellData,
    evaluate,
    load_cell_data,
    make_batches_for_eval,
    to_device,
)
from accelbench.workloads.dev_curve import DevCurve, curve_metrics
from accelbench.workloads.metrics import TimedWork, build, memory_figures
from accelbench.workloads.reference import write_reference

MAX_LOSS_POINTS = 200
TRIAL_STEPS = autobatch.TRIAL_ITERS + 1  # distinct steps a batch-size trial cycles over


def _orders(enc, cell: CellSpec, rank: Rank, seed: int) -> Iterator[list[int]]:
    """This rank's batches (sentence indices): numbers rank, rank + N, rank + 2N, ... of the
    batch order `seed` shuffles (all of it for a single process), epoch after epoch."""
    rng = random.Random(seed)
    n = 0
    while True:
        for idx in batch_order(enc, cell.batch_size, cell.padding, rng):
            if n % rank.world_size == rank.rank:
                yield idx
            n += 1


@dataclass(frozen=True)
class Plan:
    """The micro-batches a train cell steps over, fixed before its first step: one item per
    micro-batch (a batch of the seeded order, or the one synthetic batch), collated when read."""

    items: Sequence[Any]
    collate: Callable[[Any], Batch]
    signature: Callable[[Any], Hashable]

    def micro(self, step: int, accum: int) -> list[Batch]:
        return [self.collate(x) for x in self.items[step * accum : (step + 1) * accum]]

    def examples(self) -> list[Batch]:
        """One micro-batch of every distinct signature, in first-seen order."""
        firsts: dict[Hashable, Any] = {}
        for item in self.items:
            firsts.setdefault(self.signature(item), item)
        return [self.collate(x) for x in firsts.values()]


def staged(plan: Plan, steps: int, accum: int, device: str) -> Iterator[list[Batch]]:
    """Each step's micro-batches on the device, copied when the caller asks for the step
    (before its timer starts); a step whose batches are the previous step's (the synthetic
    batch) is not copied again."""
    last_cpu: list[Batch] = []
    last: list[Batch] = []
    for step in range(steps):
        cpu = plan.micro(step, accum)
        same = len(cpu) == len(last_cpu) and all(a is b for a, b in zip(cpu, last_cpu, strict=True))
        if not same:
            last_cpu, last = cpu, to_device(cpu, device)
        yield last


def _combine(ranks: list[dict]) -> dict:
    """The timed figures of ranks that step in lockstep (the gradient all-reduce): sentences,
    tokens and shapes of every rank; the step times (and padded tokens per step) of the rank
    whose timed total is the longest, since the run took that long; the loss averaged over
    ranks (the global batch's); the largest memory peaks."""
    slowest = max(ranks, key=lambda r: sum(r["samples"]))
    memory = {k: _largest(r["memory"][k] for r in ranks) for k in ranks[0]["memory"]}
    return {
        "samples": slowest["samples"],
        "step_units": slowest["units"],
        "sentences": sum(s for r in ranks for s, _ in r["sizes"]),
        "tokens": sum(t for r in ranks for _, t in r["sizes"]),
        "shapes": [shape for r in ranks for shape in r["shapes"]],
        "curve": [sum(v) / len(v) for v in zip(*(r["curve"] for r in ranks), strict=True)],
        "memory": memory,
        "compiled": sum(r["compiled"] for r in ranks),
        "step_sentences": _per_step_sentences([r["step_sentences"] for r in ranks]),
    }


def _per_step_sentences(ranks: list[list[int]]) -> list[int] | None:
    """Sentences of every rank per timed step (ranks step in lockstep); None when the ranks
    kept different steps (one compiled during a step another kept)."""
    if len({len(r) for r in ranks}) != 1:
        return None
    return [sum(s) for s in zip(*ranks, strict=True)]


def _largest(values) -> Any:
    known = [v for v in values if v is not None]
    return max(known) if known else None


@dataclass
class TrainInput:
    """What a train cell steps over: its labels, the eval data (None when synthetic), the
    number of training sentences, and `make_plan(cell, n)`: the first n micro-batches of
    this rank's training stream for a cell (shuffled per epoch with the cell's seed; one
    fixed batch when synthetic)."""

    labels: tuple[str, ...]
    data: CellData | None
    size: int
    make_plan: Callable[[CellSpec, int], Plan]


def train_input(
    cell: CellSpec, tokenizer, rank: Rank = SINGLE, seed: int | None = None
) -> TrainInput:
    """`seed` orders the batches (default: the cell's); the split always uses the cell's."""
    if cell.synthetic:

        def fixed_plan(c: CellSpec, n: int) -> Plan:
            fixed = synthetic_batch(
                c.batch_size, c.seq_len, tokenizer.vocab_size, len(SYNTHETIC_LABELS), c.seed
            )
            return Plan([None] * n, lambda _: fixed, lambda _: fixed.signature)

        return TrainInput(SYNTHETIC_LABELS, None, autobatch.MAX_BATCH, fixed_plan)
    data = load_cell_data(cell, tokenizer)
    label2id = {n: i for i, n in enumerate(data.labels)}
    enc = encode(data.corpus.train, tokenizer, label2id, cell.seq_len)

    def plan(c: CellSpec, n: int) -> Plan:
        order = _orders(enc, c, rank, c.seed if seed is None else seed)
        return Plan(
            list(itertools.islice(order, n)),
            lambda idx: collate(enc, idx, c.padding, c.seq_len, data.pad_id),
            lambda idx: signature(enc, idx, c.padding, c.seq_len),
        )

    return TrainInput(data.labels, data, len(enc), plan)


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
    new_model: Callable[[], torch.nn.Module],
    make_plan: Callable[[CellSpec, int], Plan],
    cap: int,
) -> autobatch.Search:
    """Time a few optimizer steps of a throw-away model at each candidate batch, cycling over
    the first TRIAL_STEPS steps of the trial's stream, their shapes warmed first."""

    def measure(batch: int) -> float:
        trial = replace(cell, batch_size=batch)
        model = new_model().to(cell.device)
        optimizer = _optimizer(model, cell, config.lr)
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
        session = backend.prepare_train(model, trial, optimizer, scheduler)
        plan = make_plan(trial, TRIAL_STEPS * cell.grad_accum)
        session.warm_shapes(to_device(plan.examples(), cell.device))
        steps = itertools.cycle(list(staged(plan, TRIAL_STEPS, cell.grad_accum, cell.device)))

        def once() -> int:
            micro = next(steps)
            session.step(micro)
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
    source = resolve_model(cell.model, config.tokenizer)
    tokenizer = load_tokenizer(source)
    inputs = train_input(cell, tokenizer, rank, seed)
    labels, data = inputs.labels, inputs.data
    found = None
    if cell.auto_batch:  # one process only (RunConfig refuses auto with --nproc > 1)
        new_model = functools.partial(build_model, source, labels)
        found = _search_batch(
            cell, config, backend, new_model, inputs.make_plan, inputs.size // cell.grad_accum
        )
        cell = replace(cell, batch_size=found.chosen)
    global_batch = cell.batch_size * cell.grad_accum * rank.world_size
    steps_per_epoch = 1 if cell.synthetic else math.ceil(inputs.size / global_batch)
    steps = cell.train_steps or math.ceil(cell.epochs * steps_per_epoch)
    warm = warmup_steps(steps)
    plan = inputs.make_plan(cell, steps * cell.grad_accum)

    torch.manual_seed(seed)
    model = build_model(source, labels).to(cell.device)
    optimizer = _optimizer(model, cell, config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    session = backend.prepare_train(model, cell, optimizer, scheduler)
    session.warm_shapes(to_device(plan.examples(), cell.device))

    reset_peaks(cell.device)
    timer = IterationTimer(cell.device)
    telemetry = Telemetry(cell.device)
    dev_curve = DevCurve(steps, config, cell, rank, telemetry) if data is not None else None
    losses, timed = [], []  # timed: per timed step, its batches' (size, tokens, shape), compiled
    # CUDA: the last warm-up step runs under the profiler (mode evidence), never a timed one
    profile_at = warm - 1 if cell.device == "cuda" and warm >= 2 else None
    kernel_profile = None
    if dev_curve is not None:
        dev_curve.start()
    for step, micro in enumerate(staged(plan, steps, cell.grad_accum, cell.device)):
        if step == warm:
            telemetry.start()
        compiled_before = session.compiling_calls
        if step >= warm:
            timer.start()
        if step == profile_at:
            with dev_curve.paused() if dev_curve is not None else contextlib.nullcontext():
                loss, kernel_profile = profile_call(
                    functools.partial(session.step, micro), cell.precision
                )
        else:
            loss = session.step(micro)
        if step >= warm:
            timer.stop()
            done = [(b.size, b.real_tokens, tuple(b.input_ids.shape)) for b in micro]
            timed.append((done, session.compiling_calls != compiled_before))
        losses.append(loss)
        if dev_curve is not None:
            dev_curve.after_step(step + 1, sum(b.size for b in micro), model)
        progress(1)
    synchronize(cell.device)
    telemetry.stop()
    # this rank's GPU, over the timed window: every timed step's sentences
    tele = telemetry.summary(sum(n for done, _ in timed for n, _, _ in done))
    kept = [(t, w) for t, (w, compiled) in zip(timer.samples(), timed, strict=True) if not compiled]
    if not kept:
        raise RuntimeError(f"the runtime compiled during every one of the {len(timed)} timed steps")
    gathered = rank.gather(
        {
            "samples": [t for t, _ in kept],
            "sizes": [(n, tokens) for _, w in kept for n, tokens, _ in w],
            "units": [sum(rows * width for _, _, (rows, width) in w) for _, w in kept],
            "step_sentences": [sum(n for n, _, _ in w) for _, w in kept],
            "shapes": [shape for _, w in kept for _, _, shape in w],
            "curve": torch.stack(losses).float().cpu().tolist(),
            "memory": memory_figures(cell.device, session),
            "compiled": len(timed) - len(kept),
        }
    )
    if not rank.leader:
        return {}
    run = _combine(gathered)
    samples, curve = run["samples"], run["curve"]
    every = max(1, len(curve) // MAX_LOSS_POINTS)
    varied = len(set(run["shapes"])) > 1
    work = TimedWork(
        samples,
        run["sentences"],
        run["tokens"],
        run["shapes"],
        "time per padded token" if varied else "step time",
        per_unit_cv(samples, run["step_units"]) if varied else None,
        run["compiled"],
    )
    details = session.details()
    if found is not None:
        details["batch_search"] = found.to_json()
    if kernel_profile is not None:
        details["kernel_profile"] = kernel_profile
    if rank.world_size > 1:
        details.update(dist_backend=rank.backend, threads_per_rank=rank.threads)
        details["rank_timed_s"] = [sum(r["samples"]) for r in gathered]
    metrics = {
        **build(
            cell,
            work,
            model_config=model.config,
            run_dir=run_dir,
            memory=run["memory"],
            telemetry=tele,
            devices=rank.world_size if cell.device == "cuda" else 1,
        ),
        "grad_accum": cell.grad_accum,
        "world_size": rank.world_size,
        "per_rank_batch": cell.batch_size,
        "global_batch": global_batch,
        "train_steps": steps,
        "warmup_steps": warm,
        "optimizer_steps_applied": steps - details.get("skipped_steps", 0),
        "epochs": steps / steps_per_epoch,
        "loss_curve": [[i + 1, curve[i]] for i in range(0, len(curve), every)],
        "final_loss": curve[-1],
    }
    out = {"metrics": metrics, "details": details, "samples": {"step_time_s": samples}}
    if run["step_sentences"] is not None:  # ratios between cells are per sentence
        out["samples"]["sentences"] = run["step_sentences"]
    if data is None:
        return out

    curve = dev_curve.score(model, session.evaluator, data, cell)
    metrics.update(curve_metrics(curve, config, run_dir, role is Role.REFERENCE))
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
                "model": cell.model,
                "trained": {
                    "label": cell.label,
                    "train_steps": steps,
                    "epochs": metrics["epochs"],
                    "lr": config.lr,
                    "seed": seed,
                    "run_dir": str(Path(run_dir).resolve()),
                },
                "test_f1": scores["f1"],
                "dev_f1": metrics["dev_f1"],
            },
        )
        metrics["reference_undertrained"] = write_reference(
            run_dir, word_logits, scores, source.pretrained, metrics["dev_f1"]
        )
    return out
