"""Harness overhead: the same cell run by accelbench and by a bare hand-written loop.

    python bench/harness_overhead.py                         # CPU, infer and train, 9 rounds
    python bench/harness_overhead.py --device cuda --precision bf16 --batch-size 64
    python bench/harness_overhead.py --workload infer --rounds 15 --json overhead.json

Side A is accelbench itself: `runner.child.execute`, the function a cell's child process runs,
called in this process with an eager cell. It goes through everything a cell goes through
(progress bar, telemetry, per-iteration timers and bookkeeping, the accuracy pass of inference,
the F1 pass of training) and A's throughput is the `samples_per_s` the record would carry:
sentences over the sum of the timed iterations.

Side B is a bare loop with one clock around it: `model(**batch)` under `torch.inference_mode`,
or `forward, backward, AdamW step, scheduler step, zero_grad` for training; nothing else in the
loop. Set-up is shared on purpose (the same model-building, encoding and batching code), so that
only the loops differ, and both sides set up afresh every round (a new model, new batch tensors):
on CPU one model instance can run a few percent faster or slower than another (where its memory
lands), and a model kept across rounds would tilt every round the same way. Same work:

- the same batches in the same order: inference cycles over the cell's test batches (the
  library's batching), and B runs exactly as many iterations as A timed (A's `--iters` is
  exact because its minimum time is set to nothing), after the same untimed calls (one per
  batch, as A's accuracy pass and per-shape warm-up, then A's warm-up iterations): every shape
  is seen before either clock starts; training takes the same seeded stream of
  batches, the same number of untimed warm-up steps, then times the same steps;
- the same model, dtype and device: B loads the same checkpoint (inference) or builds the model
  after the same seed (training: same initial head, same dropout masks, same AdamW and linear
  schedule), so its last loss should equal A's `final_loss` (exactly on CPU) -- printed as a
  check that the two sides did the same work;
- the same precision mode (autocast, weight cast, TF32 flags), the same process and therefore
  the same intra-op threads;
- the same data placement: every batch is on the device before its timed work on both sides
  (inference: before either loop; training: A stages each step's batches before its timer
  starts, B copies all of them before its clock starts); a batch without padding goes to the
  model without an attention mask on both sides.

Rounds alternate the order (AB, BA, AB, ...) so drift of the machine falls on both sides alike.
Each round gives ratio = A / B; the summary is the median ratio, with min and max over rounds
and a bootstrap 95 % interval of the median, against the target (A at least 0.98 of the bare
loop). A ratio above 1/0.98 is reported too: it would mean accelbench's timer leaves out work
that the bare loop pays for. Each round records the load average; above the CPU count (+0.5)
the result is marked busy, since other processes then decide the ratios (on a 2-core machine
two OpenMP threads competing with another process can lose several times their speed). A last
line gives timed_loop's own cost inside its timed window (its timer around a call that does
nothing) per iteration. A miss is printed, not raised; bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from accelbench.backends.precision import MODES, apply_flags, torch_capability
from accelbench.config.job import CellJob
from accelbench.config.specs import CellSpec, RunConfig, cell_for
from accelbench.data.models import (
    build_model,
    checkpoint_labels,
    load_checkpoint,
    load_tokenizer,
    resolve_model,
    save_checkpoint,
)
from accelbench.errors import UserError
from accelbench.measure.env import fingerprint
from accelbench.measure.timing import synchronize, timed_loop
from accelbench.runner.child import execute
from accelbench.workloads.common import load_cell_data, make_batches_for_eval, to_device
from accelbench.workloads.train import train_input, warmup_steps

TARGET = 0.98
# a load average above the CPU count means other processes competed with this one
BUSY_LOAD = (os.cpu_count() or 1) + 0.5
WORKLOADS = ("infer", "train")


@dataclass(frozen=True)
class Setup:
    """One overhead measurement, as asked on the command line."""

    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 16
    seq_len: int = 128
    model: str = "bundled"
    rounds: int = 9
    warmup_rounds: int = 1  # both sides once, left out of the result
    sentences: int = 160  # test sentences the inference batches hold
    iters: int = 40  # timed inference iterations per side and round
    train_steps: int = 30  # of which warmup_steps() are untimed
    threads: int | None = None

    def __post_init__(self) -> None:
        for key in ("rounds", "sentences", "iters", "train_steps", "threads"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise UserError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
        if self.warmup_rounds < 0:
            raise UserError(f"--warmup-rounds must be at least 0, got {self.warmup_rounds}")


@dataclass
class Side:
    """What one side did in one round."""

    sentences: int
    seconds: float
    iterations: int
    final_loss: float | None = None

    @property
    def samples_per_s(self) -> float:
        return self.sentences / self.seconds


def run_config(setup: Setup, checkpoint: str | None) -> RunConfig:
    return RunConfig(
        model=setup.model,
        devices=(setup.device,),
        precisions=(setup.precision,),
        batch_sizes=(setup.batch_size,),
        seq_lens=(setup.seq_len,),
        train_steps=setup.train_steps,
        eval_limit=setup.sentences,
        checkpoint=checkpoint,
        min_iters=setup.iters,
        min_time=1e-9,  # the timed loop stops after exactly max(iters, 2 x batches) iterations
        threads=setup.threads,
        ceilings=False,
    )


def write_checkpoint(setup: Setup, directory: Path) -> str:
    """The model with a fresh head for the corpus labels: the speed of a fine-tuned one."""
    config = run_config(setup, None)
    cell = cell_for(config, "train", "eager", setup.device, setup.precision, "dynamic")
    source = resolve_model(setup.model)
    tokenizer = load_tokenizer(source)
    labels = load_cell_data(cell, tokenizer).labels
    meta = {"pretrained": False, "labels": list(labels)}
    save_checkpoint(build_model(source, labels), tokenizer, directory, meta)
    return str(directory)


def accelbench_side(cell: CellSpec, config: RunConfig, run_dir: Path) -> Side:
    result = execute(CellJob(cell, config, run_dir))
    metrics = result["metrics"]
    samples = result["samples"]["step_time_s" if cell.workload == "train" else "latency_s"]
    seconds = sum(samples)
    return Side(
        round(metrics["samples_per_s"] * seconds),
        seconds,
        len(samples),
        metrics.get("final_loss"),
    )


def bare_infer(cell: CellSpec, config: RunConfig, iterations: int) -> Side:
    """Load the cell's model and batches afresh, as the cell does, then time a bare loop."""
    mode = MODES[cell.precision]
    apply_flags(mode)
    model = load_checkpoint(cell.checkpoint).to(cell.device).eval()
    if mode.weights is not None:
        model = model.to(mode.weights)
    tokenizer = load_tokenizer(resolve_model(cell.checkpoint))
    data = load_cell_data(cell, tokenizer, checkpoint_labels(cell.checkpoint))
    batches = to_device(make_batches_for_eval(data, cell), cell.device)
    # one call per batch, as the cell's accuracy pass, then warm-up and timed calls cycling over
    # the batches, as timed_loop's do
    warm = batches + [batches[i % len(batches)] for i in range(config.warmup_iters)]
    order = [batches[i % len(batches)] for i in range(iterations)]
    feed = [(b.input_ids, b.model_mask) for b in order]
    with (
        torch.inference_mode(),
        torch.autocast(cell.device, mode.autocast, enabled=mode.autocast is not None),
    ):
        for b in warm:
            model(input_ids=b.input_ids, attention_mask=b.model_mask)
        synchronize(cell.device)
        t0 = time.perf_counter()
        for ids, mask in feed:
            model(input_ids=ids, attention_mask=mask)
        synchronize(cell.device)
        seconds = time.perf_counter() - t0
    return Side(sum(b.size for b in order), seconds, iterations)


def bare_train(cell: CellSpec, config: RunConfig) -> Side:
    """Build the model and the seeded batches afresh, as the cell does, then time a bare
    fine-tuning loop over the steps after the same warm-up steps."""
    from transformers import get_linear_schedule_with_warmup

    mode = MODES[cell.precision]
    apply_flags(mode)
    source = resolve_model(cell.model)
    inputs = train_input(cell, load_tokenizer(source))
    steps = cell.train_steps
    warm = warmup_steps(steps)
    plan = inputs.make_plan(cell, steps)
    batches = [plan.micro(step, 1)[0] for step in range(steps)]
    # on the device before the clock starts, as accelbench stages each step before its timer
    feed = to_device(batches, cell.device)
    torch.manual_seed(cell.seed)
    model = build_model(source, inputs.labels).to(cell.device).train()
    fused = {"fused": True} if cell.device == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, **fused)
    sched = get_linear_schedule_with_warmup(opt, int(config.warmup_ratio * steps), steps)
    scaler = torch.amp.GradScaler(cell.device, enabled=mode.grad_scaler)
    dev = cell.device
    for i, b in enumerate(feed):
        if i == warm:
            synchronize(dev)
            t0 = time.perf_counter()
        with torch.autocast(dev, mode.autocast, enabled=mode.autocast is not None):
            loss = model(input_ids=b.input_ids, attention_mask=b.model_mask, labels=b.labels).loss
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        opt.zero_grad(set_to_none=True)
    synchronize(dev)
    seconds = time.perf_counter() - t0
    return Side(sum(b.size for b in batches[warm:]), seconds, steps - warm, loss.item())


@dataclass
class Round:
    order: str
    accelbench: Side
    bare: Side
    load_1min: float  # the machine's load average when the round ended

    @property
    def ratio(self) -> float:
        return self.accelbench.samples_per_s / self.bare.samples_per_s

    def to_json(self) -> dict:
        def side(s: Side) -> dict:
            return {**asdict(s), "samples_per_s": s.samples_per_s}

        return {
            "order": self.order,
            "accelbench": side(self.accelbench),
            "bare": side(self.bare),
            "ratio": self.ratio,
            "load_1min": self.load_1min,
        }


def interleave(setup: Setup, run_a: Callable[[], Side], run_b: Callable[[], Side]) -> list[Round]:
    """AB, BA, AB, ...: each round runs both sides, the order alternating; the warm-up rounds
    come first and are left out of the result."""
    out = []
    for r in range(setup.warmup_rounds + setup.rounds):
        order = "AB" if r % 2 == 0 else "BA"
        done = {k: (run_a if k == "A" else run_b)() for k in order}
        result = Round(order, done["A"], done["B"], os.getloadavg()[0])
        n = r - setup.warmup_rounds + 1
        name = f"round {n}/{setup.rounds}" if n > 0 else "warm-up"
        print(f"  {name} {order}: {format_round(result)}", flush=True)
        if n > 0:
            out.append(result)
    return out


def format_round(r: Round) -> str:
    return (
        f"accelbench {r.accelbench.samples_per_s:9.2f} seq/s, "
        f"bare {r.bare.samples_per_s:9.2f} seq/s, ratio {r.ratio:.4f} (load {r.load_1min:.2f})"
    )


def timer_cost(device: str, iterations: int = 20_000) -> float:
    """Seconds per iteration that `timed_loop` itself puts inside its timed window: its timer
    around a call that does nothing (on CUDA: two events recorded back to back)."""
    result = timed_loop(lambda _: None, [None], device, 100, iterations, 1e-9)
    return statistics.median(result.samples_s)


def median_ci(values: list[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95 % interval of the median."""
    x = np.asarray(values)
    draws = np.random.default_rng(seed).choice(x, (n_boot, x.size))
    low, high = np.percentile(np.median(draws, axis=1), [2.5, 97.5])
    return float(low), float(high)


def summarize(rounds: list[Round], timer_s: float) -> dict:
    ratios = [r.ratio for r in rounds]
    median = statistics.median(ratios)
    per_iteration = statistics.median(
        r.accelbench.seconds / r.accelbench.iterations for r in rounds
    )
    return {
        "rounds": [r.to_json() for r in rounds],
        "ratios": ratios,
        "median_ratio": median,
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "median_ci95": median_ci(ratios),
        "target": TARGET,
        "pass": median >= TARGET,
        "above_bare": median > 1 / TARGET,
        "load_1min_max": max(r.load_1min for r in rounds),
        "busy": max(r.load_1min for r in rounds) > BUSY_LOAD,
        "timer_cost_fraction": timer_s / per_iteration,
    }


def verdict_line(workload: str, summary: dict) -> str:
    line = (
        f"{workload}: median ratio {summary['median_ratio']:.4f} "
        f"(95 % CI {summary['median_ci95'][0]:.4f}-{summary['median_ci95'][1]:.4f}, "
        f"min {summary['min_ratio']:.4f}, max {summary['max_ratio']:.4f}, "
        f"{len(summary['ratios'])} rounds, load up to {summary['load_1min_max']:.2f}), "
        f"target >= {TARGET}: "
        + ("PASS" if summary["pass"] else "MISS: accelbench is slower than a bare loop")
    )
    if summary["above_bare"]:
        line += " -- NOTE: accelbench reports more than the bare loop achieves"
    if summary["busy"]:
        line += (
            f" -- MACHINE BUSY: load above {BUSY_LOAD:g} on {os.cpu_count()} CPUs, "
            "the ratios measure contention more than the harness"
        )
    return line


def measure_infer(setup: Setup, workdir: Path) -> list[Round]:
    config = run_config(setup, write_checkpoint(setup, workdir / "checkpoint"))
    cell = cell_for(config, "infer", "eager", setup.device, setup.precision, "dynamic")
    timed: list[int] = []  # batches accelbench timed per round; the bare loop runs as many

    def run_a() -> Side:
        side = accelbench_side(cell, config, workdir)
        timed.append(side.iterations)
        return side

    rounds = interleave(setup, run_a, lambda: bare_infer(cell, config, timed[-1]))
    if len(set(timed)) > 1:
        raise RuntimeError(f"accelbench timed unequal numbers of batches per round: {timed}")
    return rounds


def measure_train(setup: Setup, workdir: Path) -> list[Round]:
    config = run_config(setup, None)
    cell = cell_for(config, "train", "eager", setup.device, setup.precision, "dynamic")
    return interleave(
        setup, lambda: accelbench_side(cell, config, workdir), lambda: bare_train(cell, config)
    )


def check_capability(setup: Setup, workloads: tuple[str, ...]) -> None:
    for workload in workloads:
        ok, reason = torch_capability(workload, setup.device, setup.precision)
        if not ok:
            raise UserError(f"{workload} {setup.device} {setup.precision}: {reason}")


def environment() -> dict:
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return {"date": date, **fingerprint()}


def measure(setup: Setup, workloads: tuple[str, ...]) -> dict:
    if setup.threads:
        torch.set_num_threads(setup.threads)
    out: dict = {"setup": asdict(setup), "env": environment(), "workloads": {}}
    out["load_avg_before"] = os.getloadavg()
    out["timer_cost_s"] = timer_cost(setup.device)
    with tempfile.TemporaryDirectory(prefix="accelbench-overhead-") as tmp:
        for workload in workloads:
            print(f"{workload}: {describe(setup)}", flush=True)
            run = measure_infer if workload == "infer" else measure_train
            out["workloads"][workload] = summarize(run(setup, Path(tmp)), out["timer_cost_s"])
    out["load_avg_after"] = os.getloadavg()
    return out


def describe(setup: Setup) -> str:
    return (
        f"eager {setup.device} {setup.precision}, batch {setup.batch_size}, seq {setup.seq_len}, "
        f"dynamic padding, model {setup.model}, {torch.get_num_threads()} threads"
    )


def print_report(result: dict) -> None:
    for workload, summary in result["workloads"].items():
        rounds = summary["rounds"]
        if workload == "train":
            losses = ", ".join(
                f"{r['accelbench']['final_loss']:.6f}/{r['bare']['final_loss']:.6f}" for r in rounds
            )
            print(f"train last loss accelbench/bare per round: {losses}")
        sent = {(r["accelbench"]["sentences"], r["bare"]["sentences"]) for r in rounds}
        print(f"{workload} sentences timed per side (accelbench, bare): {sorted(sent)}")
        print(verdict_line(workload, summary))
    fractions = ", ".join(
        f"{w} {100 * s['timer_cost_fraction']:.5f} %" for w, s in result["workloads"].items()
    )
    print(
        f"timed_loop's own cost inside the timed window: {1e6 * result['timer_cost_s']:.2f} us "
        f"per iteration ({fractions} of a timed iteration)"
    )
    load = result["load_avg_before"][0], result["load_avg_after"][0]
    print(f"load average (1 min) before/after: {load[0]:.2f}/{load[1]:.2f}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        raise UserError(f"{message} (see --help)")


def parse(argv: list[str] | None) -> tuple[Setup, tuple[str, ...], Path | None]:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    p.add_argument("--precision", default=Setup.precision)
    p.add_argument("--batch-size", type=int, default=Setup.batch_size)
    p.add_argument("--seq-len", type=int, default=Setup.seq_len)
    p.add_argument("--model", default=Setup.model, help="anything accelbench --model takes")
    p.add_argument("--rounds", type=int, default=Setup.rounds)
    p.add_argument("--warmup-rounds", type=int, default=Setup.warmup_rounds)
    p.add_argument("--sentences", type=int, default=Setup.sentences, help="inference sentences")
    p.add_argument("--iters", type=int, default=Setup.iters, help="timed inference iterations")
    p.add_argument("--train-steps", type=int, default=Setup.train_steps)
    p.add_argument("--threads", type=int, default=None, help="default: torch's")
    p.add_argument("--json", type=Path, default=None, help="write the full result here")
    a = p.parse_args(argv)
    setup = Setup(**{f.name: getattr(a, f.name) for f in fields(Setup)})
    workloads = WORKLOADS if a.workload == "both" else (a.workload,)
    run_config(setup, None)  # validates batch size, sequence length, precision name
    check_capability(setup, workloads)
    return setup, workloads, a.json


def main(argv: list[str] | None = None) -> int:
    try:
        setup, workloads, json_out = parse(argv)
        resolve_model(setup.model)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = measure(setup, workloads)
    print_report(result)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
