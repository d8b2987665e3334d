"""Run a matrix: validate, plan the reference, run each cell isolated, store each record."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from accelbench.config.specs import CellSpec, RunConfig, expand, reference_cell_on
from accelbench.errors import UserError
from accelbench.measure.scaling import efficiency
from accelbench.runner.child import ROLE_CEILINGS, ROLE_CELL, ROLE_REFERENCE, ROLE_REFERENCE_EVAL
from accelbench.runner.distributed import torchrun_world
from accelbench.runner.store import SCHEMA_VERSION, ResultStore

RUN_FILE = "run.json"
INFERS = {"infer", "serve"}  # workloads that infer with the run's checkpoint


def validate_inputs(config: RunConfig) -> None:
    """Fail fast, in the parent, on a dataset, model or checkpoint that cannot be loaded."""
    from accelbench.data.corpus import load_corpus
    from accelbench.data.models import checkpoint_labels, load_tokenizer, resolve_model

    load_tokenizer(resolve_model(config.model))
    if config.synthetic:
        return
    corpus = load_corpus(config.dataset, config.seed)
    if config.checkpoint:
        missing = sorted(set(corpus.labels) - set(checkpoint_labels(config.checkpoint)))
        if missing:
            raise UserError(
                f"checkpoint {config.checkpoint} has no labels for "
                f"{', '.join(missing[:5])} of {corpus.name}: fine-tune on this corpus"
            )


def probe(cell: CellSpec) -> tuple[bool, str]:
    from accelbench.backends import get_backend

    backend = get_backend(cell.runtime)
    cap = backend.probe(cell.workload, cell.device, cell.precision)
    if cap.ok and cell.nproc > 1 and not getattr(backend, "data_parallel", False):
        return False, f"runtime {cell.runtime} has no data-parallel (multi-process) training"
    if cap.ok and cell.workload == "serve" and not getattr(backend, "serves", False):
        return False, f"runtime {cell.runtime} has no serving path (any batch size from 1)"
    return cap.ok, cap.reason


def reference_cell(config: RunConfig) -> CellSpec | None:
    """fp32 eager on the first requested device that can run it; None if none can."""
    for device in config.devices:
        cell = reference_cell_on(config, device)
        if probe(cell)[0]:
            return replace(cell, extra=(("role", "reference-eval"),)) if config.checkpoint else cell
    return None


def make_record(
    run_id: str, cell: CellSpec, role: str, result: dict, started: float, env: dict | None
) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "cell_id": cell.cell_id,
        "label": cell.label,
        "role": role,
        "status": result.get("status", "error"),
        "reason": result.get("reason", ""),
        "spec": cell.to_json(),
        "metrics": result.get("metrics", {}),
        "details": result.get("details", {}),
        "data": result.get("data", {}),
        "samples": result.get("samples", {}),
        "traceback": result.get("traceback"),
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


def load_run_file(run_dir: Path) -> tuple[RunConfig, str]:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise UserError(
            f"{run_dir} has no {RUN_FILE}: --resume needs a directory written by accelbench run"
        )
    data = json.loads(path.read_text())
    return RunConfig.from_json(data["config"]), data["run_id"]


def plan_cells(config: RunConfig) -> list[tuple[CellSpec, str]]:
    """The matrix in run order, led by the reference cell when the run needs one."""
    cells = [(c, ROLE_CELL) for c in expand(config)]
    ref = None if config.synthetic else reference_cell(config)
    if ref is not None and config.checkpoint:
        if INFERS & set(config.workloads):
            cells.insert(0, (ref, ROLE_REFERENCE_EVAL))
    elif ref is not None:
        in_matrix = any(c.cell_id == ref.cell_id for c, _ in cells)
        if in_matrix or INFERS & set(config.workloads):
            cells = [(ref, ROLE_REFERENCE)] + [(c, r) for c, r in cells if c.cell_id != ref.cell_id]
    return with_scaling_baselines(cells)


def with_scaling_baselines(cells: list[tuple[CellSpec, str]]) -> list[tuple[CellSpec, str]]:
    """Every cell of N > 1 processes preceded by its 1-process cell, the scaling baseline
    (moved up from later in the matrix, or added)."""
    roles = {c.cell_id: r for c, r in cells}
    out: dict[str, tuple[CellSpec, str]] = {}
    for cell, _ in cells:
        for c in ([replace(cell, nproc=1)] if cell.nproc > 1 else []) + [cell]:
            out.setdefault(c.cell_id, (c, roles.get(c.cell_id, ROLE_CELL)))
    return list(out.values())


def add_scaling(record: dict, cell: CellSpec, recorded: dict[str, dict]) -> None:
    """An ok cell of N > 1 processes gets its scaling efficiency against the ok record of its
    1-process cell in this run (`recorded`: cell_id -> record)."""
    if cell.nproc == 1 or record["status"] != "ok":
        return
    base = recorded.get(replace(cell, nproc=1).cell_id)
    if base is None or base["status"] != "ok":
        return
    m = record["metrics"]
    m["scaling_efficiency"] = efficiency(
        m["samples_per_s"], cell.nproc, base["metrics"]["samples_per_s"]
    )
    m["scaling_baseline_cell_id"] = base["cell_id"]


def measure_ceilings(
    config: RunConfig, cells: list[tuple[CellSpec, str]], run_dir: Path, echo
) -> None:
    """Matmul/copy ceilings of each device the run uses, once, into RUN_DIR/ceilings.json."""
    from accelbench.backends.precision import dtype_key
    from accelbench.runner.isolate import run_isolated
    from accelbench.workloads.common import CEILINGS_FILE, read_ceilings

    known = read_ceilings(run_dir)
    for device in dict.fromkeys(c.device for c, _ in cells if probe(c)[0]):
        if device in known:
            continue
        keys = sorted({k for c, _ in cells if c.device == device and (k := dtype_key(c.precision))})
        echo(f"measuring {device} ceilings ({', '.join(keys)} matmul, copy) ...")
        payload = {"role": ROLE_CEILINGS, "device": device, "dtypes": keys}
        result = run_isolated(payload, min(config.cell_timeout, 600))
        if "ceilings" not in result:
            echo(f"  {device} ceilings not measured: {result.get('reason')}")
            continue
        known[device] = result["ceilings"]
        tmp = run_dir / (CEILINGS_FILE + ".tmp")
        tmp.write_text(json.dumps(known, indent=2))
        os.replace(tmp, run_dir / CEILINGS_FILE)


def run_cell(cell: CellSpec, role: str, config: RunConfig, run_dir: Path, echo) -> dict:
    """One cell in its own process; with --oom-backoff an OOM halves the batch and retries."""
    from accelbench.runner.isolate import run_isolated

    batch, tried = cell.batch_size, []
    while True:
        payload = {
            "cell": replace(cell, batch_size=batch).to_json(),
            "config": config.to_json(),
            "run_dir": str(run_dir),
            "role": role,
        }
        result = run_isolated(payload, config.cell_timeout)
        tried.append(batch)
        retry = config.oom_backoff and batch > 1 and not cell.auto_batch  # auto searches itself
        if result.get("status") != "oom" or not retry:
            break
        batch //= 2
        echo(f"  out of memory at batch {tried[-1]}: retrying at batch {batch}")
    if len(tried) > 1:
        result.setdefault("metrics", {})["batch_size_ran"] = batch
        result.setdefault("details", {})["oom_backoff_tried"] = tried
    return result


def run_matrix(
    config: RunConfig,
    run_dir: Path,
    resume_id: str | None = None,
    echo: Callable[[str], None] = print,
) -> list[dict]:
    """Run every cell of the matrix, one record each, in run_dir/results.jsonl. Under
    torchrun (several ranks), every rank runs this and `run_as_ranks` takes over."""
    from accelbench.measure.env import fingerprint

    world = torchrun_world()
    if world is not None:
        return run_as_ranks(torchrun_config(config, world), run_dir, resume_id, echo)
    validate_inputs(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = resume_id or uuid.uuid4().hex[:12]
    if resume_id is None:
        write_run_file(run_dir, config, run_id)
    store = ResultStore(run_dir)
    done = {r["cell_id"]: r for r in store.records()}
    cells = plan_cells(config)
    if config.ceilings:
        measure_ceilings(config, cells, run_dir, echo)
    parent_env = fingerprint()
    records = []
    reference: dict | None = None
    for i, (cell, role) in enumerate(cells, start=1):
        prefix = f"[{i}/{len(cells)}] {cell.label}" + (f" ({role})" if role != ROLE_CELL else "")
        if cell.cell_id in done:
            echo(f"{prefix}: already recorded ({done[cell.cell_id]['status']}), skipped")
            record = done[cell.cell_id]
        else:
            started = time.time()
            ok, reason = probe(cell)
            if not ok:
                result = {"status": "unsupported", "reason": reason}
            elif needs_reference(cell) and reference and reference["status"] != "ok":
                result = {
                    "status": "error",
                    "reason": f"no checkpoint: the reference cell ended {reference['status']} "
                    f"({reference['reason']})",
                }
            else:
                echo(f"{prefix} ...")
                result = run_cell(cell, role, config, run_dir, echo)
            record = make_record(run_id, cell, role, result, started, parent_env)
            add_scaling(record, cell, {**done, **{r["cell_id"]: r for r in records}})
            store.append(record)
            echo(f"{prefix}: {one_line(record)}")
        if role != ROLE_CELL:
            reference = record
        records.append(record)
    return records


def torchrun_config(config: RunConfig, world: int) -> RunConfig:
    """The run torchrun's `world` ranks can run: train cells of `world` processes, one device."""
    if config.workloads != ("train",):
        raise UserError(
            f"under torchrun (WORLD_SIZE={world}) only training runs distributed: "
            "give --workloads train"
        )
    if len(config.devices) != 1:
        raise UserError("under torchrun give one device (--devices cuda or --devices cpu)")
    if config.nprocs not in ((1,), (world,)):
        raise UserError(
            f"under torchrun the processes are torchrun's (WORLD_SIZE={world}): drop --nproc"
        )
    return replace(config, nprocs=(world,))


def run_as_ranks(
    config: RunConfig, run_dir: Path, resume_id: str | None, echo: Callable[[str], None]
) -> list[dict]:
    """One rank of a torchrun job: every rank runs every cell in this process (torchrun is the
    isolation), with the rank code of `--nproc` cells; rank 0 alone writes and reports. A cell
    that raises ends the job, as a failed torchrun worker does (rank 0 records the error if it
    was its own); `--resume` goes on from there."""
    from accelbench.measure.env import fingerprint
    from accelbench.runner import distributed
    from accelbench.runner.child import execute, failure

    validate_inputs(config)
    rank = distributed.join(config.devices[0], config.threads, config.dist_timeout)
    try:
        store, done, cells, records = None, {}, [(c, ROLE_CELL) for c in expand(config)], []
        if rank.leader:
            run_dir.mkdir(parents=True, exist_ok=True)
            if resume_id is None:
                resume_id = uuid.uuid4().hex[:12]
                write_run_file(run_dir, config, resume_id)
            store = ResultStore(run_dir)
            done = {r["cell_id"]: r for r in store.records()}
            if config.ceilings:
                measure_ceilings(config, cells, run_dir, echo)
        run_id, done_ids = rank.broadcast((resume_id, set(done)))
        env = fingerprint()
        for i, (cell, _) in enumerate(cells, start=1):
            prefix = f"[{i}/{len(cells)}] {cell.label}"
            if cell.cell_id in done_ids:
                if rank.leader:
                    echo(f"{prefix}: already recorded ({done[cell.cell_id]['status']}), skipped")
                    records.append(done[cell.cell_id])
                continue
            started = time.time()
            ok, reason = probe(cell)
            result: dict = {"status": "unsupported", "reason": reason}
            if ok:
                if rank.leader:
                    echo(f"{prefix} ...")
                payload = {
                    "cell": cell.to_json(),
                    "config": config.to_json(),
                    "run_dir": str(run_dir),
                    "role": ROLE_CELL,
                }
                try:
                    result = {"status": "ok", "reason": "", **execute(payload, rank)}
                except Exception as exc:
                    if store is not None:
                        result = failure(exc)
                        result["reason"] = f"rank 0: {result['reason']}"
                        store.append(make_record(run_id, cell, ROLE_CELL, result, started, env))
                    raise
            if store is not None:
                record = make_record(run_id, cell, ROLE_CELL, result, started, env)
                add_scaling(record, cell, {**done, **{r["cell_id"]: r for r in records}})
                store.append(record)
                echo(f"{prefix}: {one_line(record)}")
                records.append(record)
    finally:
        distributed.leave()
    return records


def needs_reference(cell: CellSpec) -> bool:
    return cell.workload in INFERS and cell.checkpoint == "run-reference"


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
    return ", ".join(parts)
