"""What both workloads need: the cell's data, batches on the device, an evaluation pass."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from accelbench.backends.base import InferSession
from accelbench.config.specs import CellSpec
from accelbench.data.corpus import Corpus, load_corpus
from accelbench.data.encode import Batch, Encoded, encode, make_batches
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
    dev: Encoded
    dev_gold: list[list[str]]


def load_cell_data(cell: CellSpec, tokenizer, labels: tuple[str, ...] | None = None) -> CellData:
    """Corpus, label list and the encoded test and dev splits of a cell (each cut to
    --eval-limit sentences)."""
    corpus = load_corpus(cell.dataset, cell.seed)
    labels = labels or corpus.labels
    unknown = sorted(set(corpus.labels) - set(labels))
    if unknown:
        raise ValueError(f"the checkpoint has no labels {', '.join(unknown)} of {corpus.name}")
    test, dev = (split[: cell.eval_limit] for split in (corpus.test, corpus.dev))
    label2id = {name: i for i, name in enumerate(labels)}
    return CellData(
        corpus,
        labels,
        encode(test, tokenizer, label2id, cell.seq_len),
        [list(s.tags) for s in test],
        tokenizer.pad_token_id or 0,
        encode(dev, tokenizer, label2id, cell.seq_len),
        [list(s.tags) for s in dev],
    )


def dev_view(data: CellData) -> CellData:
    """The same data with the dev split where the test split was: what `evaluate` scores."""
    return replace(data, test=data.dev, test_gold=data.dev_gold)


def make_batches_for_eval(data: CellData, cell: CellSpec) -> list[Batch]:
    return make_batches(data.test, cell.batch_size, cell.padding, cell.seq_len, data.pad_id)


def to_device(batches: Sequence[Batch], device: str) -> list[Batch]:
    """The batches on the cell's device: pinned and copied asynchronously on CUDA."""
    if device == "cuda":
        return [b.pinned().to(device, True) for b in batches]
    return list(batches)


def evaluate(
    session: InferSession, data: CellData, batches: Sequence[Batch], device: str
) -> tuple[list[np.ndarray], dict]:
    """One untimed pass: word-level logits per sentence and entity scores."""
    logits = [session.logits(b).float().cpu().numpy() for b in to_device(batches, device)]
    word_logits = gather_word_logits(data.test, batches, logits)
    pred = decode(word_logits, data.test.n_words, data.labels)
    return word_logits, entity_scores(data.test_gold, pred)


def read_ceilings(run_dir: Path) -> dict:
    path = run_dir / CEILINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
