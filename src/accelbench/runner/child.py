"""What runs inside a cell's child process: set up, dispatch to a workload, report back."""

from __future__ import annotations

import os
import random
import traceback
from pathlib import Path

from accelbench.config.specs import CellSpec, RunConfig
from accelbench.runner import distributed
from accelbench.runner.distributed import SINGLE, Rank

ROLE_CELL = "cell"
ROLE_REFERENCE = "reference"  # the fp32 eager train cell whose checkpoint the run infers with
ROLE_REFERENCE_EVAL = "reference-eval"  # the fp32 eager pass over a --checkpoint
ROLE_CEILINGS = "ceilings"  # matmul and copy ceilings of one device, measured before the cells


def _progress_bar(cell: CellSpec, shown: bool):
    from tqdm import tqdm

    total = cell.train_steps if cell.workload == "train" else None
    unit = "step" if cell.workload == "train" else "batch"
    hidden = None if shown else True  # None: shown on a terminal only
    return tqdm(total=total, desc=cell.label, unit=unit, leave=False, disable=hidden)


def reference_eval(cell: CellSpec, backend, run_dir: Path) -> dict:
    from accelbench.data.models import (
        checkpoint_is_meaningful,
        checkpoint_labels,
        load_checkpoint,
        load_tokenizer,
        resolve_model,
    )
    from accelbench.workloads.common import evaluate, load_cell_data, make_batches_for_eval
    from accelbench.workloads.reference import write_reference

    tokenizer = load_tokenizer(resolve_model(cell.checkpoint))
    data = load_cell_data(cell, tokenizer, checkpoint_labels(cell.checkpoint))
    batches = make_batches_for_eval(data, cell)
    session = backend.prepare_infer(load_checkpoint(cell.checkpoint), cell, batches[0])
    word_logits, scores = evaluate(session, data, batches, cell.device)
    meaningful = checkpoint_is_meaningful(cell.checkpoint)
    write_reference(run_dir, word_logits, scores, meaningful)
    return {
        "metrics": {**scores, "f1_meaningful": meaningful, "eval_sentences": len(data.test)},
        "data": data.corpus.summary(),
        "details": session.details(),
    }


def _cell_and_config(payload: dict) -> tuple[CellSpec, RunConfig]:
    cell = CellSpec(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in payload["cell"].items()}
    )
    return cell, RunConfig.from_json(payload["config"])


def execute(payload: dict, rank: Rank = SINGLE) -> dict:
    """Run the payload's cell in this process, as `rank` of its training processes; a cell of
    several processes run from a single one starts its ranks here and returns rank 0's result."""
    import torch

    if payload["role"] == ROLE_CEILINGS:
        from accelbench.measure import ceilings

        return {"ceilings": ceilings.measure(payload["device"], tuple(payload["dtypes"]))}

    from accelbench.backends import get_backend
    from accelbench.workloads.infer import run_infer
    from accelbench.workloads.train import run_train

    cell, config = _cell_and_config(payload)
    if cell.nproc != rank.world_size:
        if rank.world_size > 1:
            raise RuntimeError(f"a cell of {cell.nproc} processes ran in {rank.world_size}")
        return launch_ranks(cell, config, payload)
    run_dir, role = Path(payload["run_dir"]), payload["role"]
    if config.threads and rank.world_size == 1:
        torch.set_num_threads(config.threads)
    random.seed(cell.seed)
    torch.manual_seed(cell.seed)
    backend = get_backend(cell.runtime)
    if role == ROLE_REFERENCE_EVAL:
        return reference_eval(cell, backend, run_dir)
    with _progress_bar(cell, rank.leader) as bar:
        if cell.workload == "train":
            return run_train(cell, config, backend, run_dir, role, bar.update, rank)
        if cell.workload == "serve":
            from accelbench.workloads.serve import run_serve

            return run_serve(cell, config, backend, run_dir, bar.update)
        return run_infer(cell, config, backend, run_dir, bar.update)


def launch_ranks(cell: CellSpec, config: RunConfig, payload: dict) -> dict:
    """The cell's `nproc` ranks, started on this node by torch's elastic launcher."""
    import torch

    if cell.device == "cuda" and cell.nproc > torch.cuda.device_count():
        return {
            "status": "unsupported",
            "reason": f"{cell.nproc} training processes need {cell.nproc} GPUs; "
            f"this machine has {torch.cuda.device_count()}",
        }
    return distributed.launch(rank_main, payload, cell.nproc, config.dist_timeout)


def rank_main(payload: dict) -> dict:
    """Entry point of one rank process that launch_ranks started: join the group, run the cell.
    Exits when the cell process (its parent) is gone, e.g. killed at --cell-timeout."""
    exit_with_parent(os.getppid())
    cell, config = _cell_and_config(payload)
    rank = distributed.join(cell.device, config.threads, config.dist_timeout)
    try:
        return execute(payload, rank)
    finally:
        distributed.leave()


def failure(exc: BaseException) -> dict:
    """The result of a cell that raised: `oom` or `error`, the exception's last line."""
    from accelbench.workloads.autobatch import is_oom

    return {
        "status": "oom" if is_oom(exc) else "error",
        "reason": traceback.format_exception_only(type(exc), exc)[-1].strip(),
        "traceback": traceback.format_exc(limit=8),
    }


def exit_with_parent(parent: int, interval_s: float = 1.0) -> None:
    """End this process when the process that started it is gone (killed, crashed)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def child_main(conn, payload: dict, parent: int) -> None:
    """Entry point of the spawned child: always sends one result dict, unless killed."""
    exit_with_parent(parent)
    try:
        result = execute(payload)
        result.setdefault("status", "ok")
        result.setdefault("reason", "")
    except Exception as exc:  # a failed cell is data: the matrix goes on
        result = failure(exc)
    from accelbench.measure.env import fingerprint

    result["env"] = fingerprint()
    conn.send(result)
    conn.close()
