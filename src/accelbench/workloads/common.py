"""What both workloads need: the cell's data, an evaluation pass, memory and FLOPs figures."""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from accelbench.backends.base import InferSession
from accelbench.backends.precision import dtype_key
from accelbench.config.specs import CellSpec
from accelbench.data.corpus import Corpus, load_corpus
from accelbench.data.encode import Batch, Encoded, encode, make_batches
from accelbench.measure import flops
from accelbench.measure.accuracy import decode, entity_scores, gather_word_logits

CEILINGS_FILE = "ceilings.json"

SYNTHETIC_LABELS = ("O", "B-X", "I-X")


@dataclass
class CellData:
    corpus: Corpus
    labels: tuple[str, ...]
    test: Encoded
    test_gold: list[list[str]]
    pad_id: int


def load_cell_data(cell: CellSpec, tokenizer, labels: tuple[str, ...] | None = None) -> CellData:
    """Corpus, label list and the encoded (eval-limited) test split of a cell."""
    corpus = load_corpus(cell.dataset, cell.seed)
    labels = labels or corpus.labels
    unknown = sorted(set(corpus.labels) - set(labels))
    if unknown:
        raise ValueError(f"the checkpoint has no labels {', '.join(unknown)} of {corpus.name}")
    test = corpus.test[: cell.eval_limit] if cell.eval_limit else corpus.test
    label2id = {name: i for i, name in enumerate(labels)}
    return CellData(
        corpus,
        labels,
        encode(test, tokenizer, label2id, cell.seq_len),
        [list(s.tags) for s in test],
        tokenizer.pad_token_id or 0,
    )


def make_batches_for_eval(data: CellData, cell: CellSpec) -> list[Batch]:
    return make_batches(data.test, cell.batch_size, cell.padding, cell.seq_len, data.pad_id)


def to_device(batches: Sequence[Batch], device: str) -> list[Batch]:
    if device == "cuda":
        return [
            Batch(
                b.input_ids.pin_memory(),
                b.attention_mask.pin_memory(),
                b.labels.pin_memory(),
                b.index,
                b.real_tokens,
            ).to(device, True)
            for b in batches
        ]
    return list(batches)


def evaluate(
    session: InferSession, data: CellData, batches: Sequence[Batch], device: str
) -> tuple[list[np.ndarray], dict]:
    """One untimed pass: word-level logits per sentence and entity scores."""
    logits = [session.logits(b).float().cpu().numpy() for b in to_device(batches, device)]
    word_logits = gather_word_logits(data.test, batches, logits)
    pred = decode(word_logits, data.test.n_words, data.labels)
    return word_logits, entity_scores(data.test_gold, pred)


def reset_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def memory_stats(device: str) -> dict:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": rss / (1024 * 1024 if sys.platform == "darwin" else 1024)}
    if device == "cuda":
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["cuda_peak_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
    return out


def gpu_name(device: str) -> str | None:
    return torch.cuda.get_device_name() if device == "cuda" else None


def read_ceilings(run_dir: Path) -> dict:
    path = run_dir / CEILINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def compute_figures(
    model_config,
    cell: CellSpec,
    shapes: Sequence[tuple[int, int]],
    seconds: float,
    train: bool,
    run_dir: Path,
    devices: int = 1,
) -> dict:
    """FLOPs executed over the timed iterations (padded shapes), TFLOP/s, and MFU against the
    datasheet peak (GPUs) and against the matmul ceiling measured for this run.

    `devices`: how many devices did the work (data-parallel GPUs); utilization is per device.
    """
    shape = flops.encoder_shape(model_config)
    total = sum(flops.step_flops(shape, b, t, train) for b, t in shapes)
    achieved = total / seconds / 1e12 if seconds > 0 else 0.0
    per_device = achieved / devices
    key = dtype_key(cell.precision) or "float32"
    measured = read_ceilings(run_dir).get(cell.device, {})
    ceiling = measured.get("matmul_tflops", {}).get(key)
    return {
        "model_params_non_embedding": shape["n_params"],
        "flops_total": total,
        "achieved_tflops": achieved,
        "mfu_dtype": key,
        **flops.mfu(per_device, gpu_name(cell.device), key),
        "ceiling_tflops": ceiling,
        "mfu_vs_ceiling": per_device / ceiling if ceiling else None,
        "ceiling_source": f"{measured['matmul_size']}^3 {key} matmul measured by this run"
        if ceiling
        else None,
    }
