"""What runs inside a cell's child process: set up, dispatch to a workload, report back."""

from __future__ import annotations

import random
import traceback
from pathlib import Path

from accelbench.specs import CellSpec, RunConfig

ROLE_CELL = "cell"
ROLE_REFERENCE = "reference"  # the fp32 eager train cell whose checkpoint the run infers with
ROLE_REFERENCE_EVAL = "reference-eval"  # the fp32 eager pass over a --checkpoint
ROLE_CEILINGS = "ceilings"  # matmul and copy ceilings of one device, measured before the cells


def _progress_bar(cell: CellSpec):
    from tqdm import tqdm

    total = cell.train_steps if cell.workload == "train" else None
    unit = "step" if cell.workload == "train" else "batch"
    return tqdm(total=total, desc=cell.label, unit=unit, leave=False, disable=None)


def reference_eval(cell: CellSpec, backend, run_dir: Path) -> dict:
    from accelbench.models import (
        checkpoint_is_meaningful,
        checkpoint_labels,
        load_checkpoint,
        load_tokenizer,
        resolve_model,
    )
    from accelbench.reference import write_reference
    from accelbench.workloads.common import evaluate, load_cell_data, make_batches_for_eval

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


def execute(payload: dict) -> dict:
    import torch

    if payload["role"] == ROLE_CEILINGS:
        from accelbench import ceilings

        return {"ceilings": ceilings.measure(payload["device"], tuple(payload["dtypes"]))}

    from accelbench.backends import get_backend
    from accelbench.workloads.infer import run_infer
    from accelbench.workloads.train import run_train

    cell = CellSpec(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in payload["cell"].items()}
    )
    config = RunConfig.from_json(payload["config"])
    run_dir, role = Path(payload["run_dir"]), payload["role"]
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(cell.seed)
    torch.manual_seed(cell.seed)
    backend = get_backend(cell.runtime)
    if role == ROLE_REFERENCE_EVAL:
        return reference_eval(cell, backend, run_dir)
    with _progress_bar(cell) as bar:
        if cell.workload == "train":
            return run_train(cell, config, backend, run_dir, role, bar.update)
        return run_infer(cell, config, backend, run_dir, bar.update)


def _exit_with_parent(parent: int, interval_s: float = 1.0) -> None:
    """End this cell process when the run that started it is gone (killed, crashed)."""
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def child_main(conn, payload: dict, parent: int) -> None:
    """Entry point of the spawned child: always sends one result dict, unless killed."""
    _exit_with_parent(parent)
    try:
        result = execute(payload)
        result.setdefault("status", "ok")
        result.setdefault("reason", "")
    except Exception as exc:  # a failed cell is data: the matrix goes on
        from accelbench.autobatch import is_oom

        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result = {
            "status": "oom" if is_oom(exc) else "error",
            "reason": last,
            "traceback": traceback.format_exc(limit=8),
        }
    from accelbench.env import fingerprint

    result["env"] = fingerprint()
    conn.send(result)
    conn.close()
