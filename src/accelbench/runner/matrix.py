"""Run a matrix: validate, plan, measure ceilings, then one loop over the cells that runs each
through an executor and stores one record per cell as it ends."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from accelbench.config.job import CellJob, Role
from accelbench.config.specs import RunConfig, expand
from accelbench.errors import UserError
from accelbench.measure.scaling import efficiency
from accelbench.measure.spread import mean_ci, training_f1_verdict
from accelbench.runner.executors import (
    AsRank,
    CellAborted,
    Echo,
    Executor,
    InProcess,
    Isolated,
    torchrun_config,
    torchrun_world,
)
from accelbench.runner.plan import (
    Planned,
    needs_reference,
    plan_cells,
    probe,
    require_runnable,
    validate_inputs,
)
from accelbench.runner.store import RESULTS, SCHEMA_VERSION, ResultStore

RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoint"  # the reference fine-tune's model, which inference cells run


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


Key = tuple[str, int]  # (cell_id, repeat)


def record_key(record: dict) -> Key:
    return record["cell_id"], record.get("repeat", 0)


@dataclass
class RunState:
    """The run directory as this process sees it: the run id, the records already there
    (resume) and, in the process that writes, the store."""

    run_id: str
    done: dict[Key, dict | None]  # (cell_id, repeat) -> record (None on ranks that do not write)
    store: ResultStore | None


def make_record(
    run_id: str, planned: Planned, result: dict, started: float, env: dict | None
) -> dict:
    cell = planned.cell
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "cell_id": cell.cell_id,
        "repeat": planned.repeat,
        "label": cell.label,
        "role": planned.role.value,
        "status": result.get("status", "error"),
        "reason": result.get("reason", ""),
        "spec": cell.to_json(),
        "metrics": result.get("metrics", {}),
        "details": result.get("details", {}),
        "data": result.get("data", {}),
        "samples": result.get("samples", {}),
        "traceback": result.get("traceback"),
        "log": result.get("log"),
        "env": result.get("env") or env,
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "duration_s": time.time() - started,
    }


def write_run_file(run_dir: Path, config: RunConfig, run_id: str) -> None:
    from accelbench import __version__

    tmp = run_dir / (RUN_FILE + ".tmp")
    tmp.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "accelbench": __version__,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "argv": sys.argv,
                "config": config.to_json(),
            },
            indent=2,
        )
    )
    os.replace(tmp, run_dir / RUN_FILE)


def with_absolute_paths(config: RunConfig) -> RunConfig:
    """The config with its local paths (--model DIR, --dataset conll:DIR, --checkpoint DIR)
    absolute, so that run.json resumes from any working directory."""
    from accelbench.data.models import ARCHITECTURES

    model = Path(config.model).expanduser()
    local = config.model not in ("bundled", *ARCHITECTURES) and model.exists()
    dataset = config.dataset
    if dataset.startswith("conll:"):
        dataset = "conll:" + str(Path(dataset.removeprefix("conll:")).expanduser().resolve())
    return replace(
        config,
        model=str(model.resolve()) if local else config.model,
        dataset=dataset,
        checkpoint=config.checkpoint and str(Path(config.checkpoint).expanduser().resolve()),
    )


def load_run_file(run_dir: Path) -> tuple[RunConfig, str]:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no {RUN_FILE}: --resume needs a directory written by accelbench run"
        )
    data = json.loads(path.read_text())
    return RunConfig.from_json(data["config"]), data["run_id"]


def open_run(config: RunConfig, run_dir: Path, resume_id: str | None) -> RunState:
    """Create (or, resuming, reopen) the run directory. A new run never writes into a directory
    that already holds results."""
    if resume_id is None and (run_dir / RESULTS).exists():
        raise UserError(f"{run_dir} already holds results: use --resume {run_dir} or another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = resume_id or uuid.uuid4().hex[:12]
    if resume_id is None:
        write_run_file(run_dir, config, run_id)
    store = ResultStore(run_dir)
    return RunState(run_id, {record_key(r): r for r in store.records()}, store)


def add_scaling(record: dict, planned: Planned, recorded: dict[Key, dict | None]) -> None:
    """An ok cell of N > 1 processes gets its scaling efficiency against the ok record of its
    1-process cell (same repeat) in this run."""
    cell = planned.cell
    if cell.nproc == 1 or record["status"] != "ok":
        return
    base = recorded.get((replace(cell, nproc=1).cell_id, planned.repeat))
    if base is None or base["status"] != "ok":
        return
    m = record["metrics"]
    m["scaling_efficiency"] = efficiency(
        m["samples_per_s"], cell.nproc, base["metrics"]["samples_per_s"]
    )
    m["scaling_baseline_cell_id"] = base["cell_id"]


def add_seed_verdict(
    record: dict, planned: Planned, config: RunConfig, recorded: dict[Key, dict | None]
) -> None:
    """The last repeat of a training cell with a meaningful F1 gets the cell's F1 across seeds
    and, held to the fp32 reference's seeds, its verdict: `numeric_fail` when it is worse by
    more than --f1-tolerance with the interval excluding zero."""
    m = record["metrics"]
    last = planned.repeat == config.repeats - 1
    if planned.cell.workload != "train" or not last or m.get("f1") is None:
        return
    if not m.get("f1_meaningful", True) or record["status"] != "ok":
        return

    def f1s(role: str | None, cell_id: str | None) -> list[float]:
        runs = [
            r
            for r in recorded.values()
            if r is not None
            and r["spec"]["workload"] == "train"
            and r["status"] == "ok"
            and (cell_id is None or r["cell_id"] == cell_id)
            and (role is None or r["role"] == role)
        ]
        return [r["metrics"]["f1"] for r in sorted(runs, key=lambda r: r.get("repeat", 0))]

    own = [*f1s(None, planned.cell.cell_id), m["f1"]]
    if planned.role is Role.REFERENCE:
        m["f1_seeds"] = mean_ci(own).to_json()
        m["f1_verdict"] = "the fp32 reference: the other training cells are held to its seeds"
        return
    weak = next(
        (
            r["metrics"]["reference_undertrained"]
            for r in recorded.values()
            if r is not None
            and r["role"] == Role.REFERENCE.value
            and r["metrics"].get("reference_undertrained")
        ),
        None,
    )
    if weak:
        m.update(f1_verdict="not checked", reference_undertrained=weak)
        return
    m.update(training_f1_verdict(own, f1s(Role.REFERENCE.value, None), config.f1_tolerance))
    if m["f1_verdict"].startswith("numeric_fail"):
        record["status"] = "numeric_fail"
        record["reason"] = m["f1_verdict"].removeprefix("numeric_fail: ")


def measure_ceilings(config: RunConfig, cells: list[Planned], run_dir: Path, echo: Echo) -> None:
    """Matmul/copy ceilings of each device the run uses, once, into RUN_DIR/ceilings.json;
    those of --ceilings FILE are copied there (marked with their source) and not measured."""
    from accelbench.backends.precision import dtype_key
    from accelbench.measure import ceilings
    from accelbench.runner.isolate import run_isolated
    from accelbench.workloads.common import read_ceilings

    known = read_ceilings(run_dir)
    if config.ceilings_file:
        for device, value in ceilings.load_file(config.ceilings_file).items():
            known.setdefault(device, {**value, "source": f"reused from {config.ceilings_file}"})
        _write_ceilings(run_dir, known)
    for device in dict.fromkeys(p.cell.device for p in cells if probe(p.cell)[0]):
        if device in known:
            continue
        keys = tuple(
            sorted(
                {k for p in cells if p.cell.device == device and (k := dtype_key(p.cell.precision))}
            )
        )
        echo(f"measuring {device} ceilings ({', '.join(keys)} matmul, copy) ...")
        log = run_dir / "logs" / f"ceilings-{device}.log"
        outcome = run_isolated(ceilings.measure, (device, keys), min(config.cell_timeout, 600), log)
        if outcome.status != "ok":
            echo(f"  {device} ceilings not measured: {outcome.status} {outcome.reason}")
            continue
        known[device] = outcome.value
        echo(f"  {ceilings_line(outcome.value)}")
        _write_ceilings(run_dir, known)


def _write_ceilings(run_dir: Path, known: dict) -> None:
    from accelbench.workloads.common import CEILINGS_FILE

    tmp = run_dir / (CEILINGS_FILE + ".tmp")
    tmp.write_text(json.dumps(known, indent=2))
    os.replace(tmp, run_dir / CEILINGS_FILE)


def ceilings_line(ceilings: dict) -> str:
    """What a device's ceilings measurement found, in one line."""
    size = ceilings.get("matmul_size")
    parts = []
    for key, tflops in ceilings.get("matmul_tflops", {}).items():
        n = ceilings.get("matmul_sizes", {}).get(key, size)
        parts.append(f"{key} {tflops:.3g} TFLOP/s ({n}x{n})" if tflops is not None else f"{key} -")
    copy = ceilings.get("copy_gbps")
    copied = f"; copy {copy:.3g} GB/s" if copy is not None else ""
    return f"{ceilings['device']} ceilings: matmul {', '.join(parts) or '-'}{copied}"


def _result(
    job: CellJob, reference: dict | None, executor: Executor, announce: Callable[[], None]
) -> dict:
    ok, reason = probe(job.cell)
    if not ok:
        return {"status": "unsupported", "reason": reason}
    if needs_reference(job.cell) and reference is not None and reference["status"] != "ok":
        return {
            "status": "error",
            "reason": f"no checkpoint: the reference cell ended {reference['status']} "
            f"({reference['reason']})",
        }
    announce()
    return executor.run(job)


def walk(
    plan: list[Planned],
    config: RunConfig,
    run_dir: Path,
    state: RunState,
    executor: Executor,
    echo: Echo,
    env: dict,
) -> list[dict]:
    """The one loop: skip what is recorded, probe, run, record, append, echo."""
    records: list[dict] = []
    recorded = dict(state.done)
    say = echo if executor.writes else (lambda line: None)
    for i, planned in enumerate(plan):
        cell, role = planned.cell, planned.role
        prefix = f"[{i + 1}/{len(plan)}] {cell.label}"
        if config.repeats > 1:
            prefix += f" (repeat {planned.repeat + 1}/{config.repeats})"
        if role is not Role.CELL:
            prefix += f" ({role.value})"
        record = recorded.get(planned.key)
        if planned.key in recorded:
            if record is not None:
                say(f"{prefix}: already recorded ({record['status']}), skipped")
        else:
            started = time.time()
            job = CellJob(cell, config, run_dir, role, planned.repeat)
            reference = next((recorded.get(p.key) for p in plan if p.role is Role.REFERENCE), None)
            try:
                announce = functools.partial(say, f"{prefix} ...")
                result = _result(job, reference, executor, announce)
            except CellAborted as stop:
                if state.store is not None:
                    state.store.append(
                        make_record(state.run_id, planned, stop.result, started, env)
                    )
                raise
            record = make_record(state.run_id, planned, result, started, env)
            add_scaling(record, planned, recorded)
            add_seed_verdict(record, planned, config, recorded)
            recorded[planned.key] = record
            if state.store is not None:
                state.store.append(record)
            say(f"{prefix}: {one_line(record)}")
        if record is not None:
            records.append(record)
    return records


def run_matrix(
    config: RunConfig, run_dir: Path, resume_id: str | None = None, echo: Echo = _stderr
) -> list[dict]:
    """Run every cell of the matrix, one record each, in run_dir/results.jsonl; progress lines
    go to `echo`. Under torchrun (several ranks) every rank calls this, runs the cells in its own
    process, and rank 0 alone writes and returns the records."""
    from accelbench.measure.env import fingerprint

    if resume_id is None:
        config = with_absolute_paths(config)
    world = torchrun_world()
    if world is None:
        validate_inputs(config)
        require_runnable(config)
        state = open_run(config, run_dir, resume_id)
        plan = plan_cells(config)
        if config.ceilings:
            measure_ceilings(config, plan, run_dir, echo)
        executor = InProcess(echo) if config.in_process else Isolated(echo)
        records = walk(plan, config, run_dir, state, executor, echo, fingerprint())
        if not config.keep_checkpoint:
            drop_checkpoint(run_dir, echo)
        return records
    return _run_as_ranks(torchrun_config(config, world), run_dir, resume_id, echo)


def _run_as_ranks(
    config: RunConfig, run_dir: Path, resume_id: str | None, echo: Echo
) -> list[dict]:
    from accelbench.backends import distributed
    from accelbench.measure.env import fingerprint

    validate_inputs(config)
    rank = distributed.join(config.devices[0], config.threads, config.dist_timeout)
    try:
        plan = [Planned(c) for c in expand(config)]  # no 1-process baselines: the ranks are fixed
        state = RunState("", {}, None)
        if rank.leader:
            state = open_run(config, run_dir, resume_id)
            if config.ceilings:
                measure_ceilings(config, plan, run_dir, echo)
        run_id, done_ids = rank.broadcast((state.run_id, set(state.done)))
        if not rank.leader:
            state = RunState(run_id, dict.fromkeys(done_ids), None)
        records = walk(plan, config, run_dir, state, AsRank(rank), echo, fingerprint())
        if rank.leader and not config.keep_checkpoint:
            drop_checkpoint(run_dir, echo)
        return records
    finally:
        distributed.leave()


def drop_checkpoint(run_dir: Path, echo: Echo) -> None:
    """--no-keep-checkpoint: every cell is recorded, so no cell (nor --resume) needs the
    reference's checkpoint any more."""
    import shutil

    path = run_dir / CHECKPOINT_DIR
    if path.is_dir():
        shutil.rmtree(path)
        echo(f"deleted {path} (--no-keep-checkpoint)")


def one_line(record: dict) -> str:
    m = record.get("metrics", {})
    if record["status"] not in ("ok", "numeric_fail"):
        return f"{record['status']}: {record['reason']}"
    parts = [record["status"]]
    if m.get("samples_per_s") is not None:
        parts.append(f"{m['samples_per_s']:.1f} seq/s, {m['tokens_per_s']:.0f} tok/s")
    if m.get("scenario_result"):
        parts.append(m["scenario_result"])
    if m.get("f1") is not None:
        parts.append(f"F1 {m['f1'] * 100:.1f}")
    if m.get("scaling_efficiency") is not None:
        parts.append(f"scaling efficiency {m['scaling_efficiency']:.0%} of {m['world_size']}x")
    if record["status"] == "numeric_fail":
        parts.append(record["reason"])
    if record.get("role") == Role.REFERENCE.value and m.get("reference_undertrained"):
        parts.append("UNDERTRAINED: " + m["reference_undertrained"])
    return ", ".join(parts)
