"""Entity-level F1 (seqeval, conlleval semantics) and word-level decoding of token logits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from seqeval.metrics import classification_report

from accelbench.data.encode import Batch, Encoded


def gather_word_logits(
    enc: Encoded, batches: Sequence[Batch], logits: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Per sentence, the logits at each kept word's first subword: shape (kept_words, labels)."""
    out: list[np.ndarray | None] = [None] * len(enc)
    for batch, batch_logits in zip(batches, logits, strict=True):
        for row, i in enumerate(batch.index):
            out[i] = np.asarray(batch_logits[row, list(enc.first_subword[i])], dtype=np.float32)
    missing = [i for i, x in enumerate(out) if x is None]
    if missing:
        raise ValueError(f"{len(missing)} sentences got no logits")
    return out  # type: ignore[return-value]


def decode(
    word_logits: Sequence[np.ndarray], n_words: Sequence[int], labels: Sequence[str]
) -> list[list[str]]:
    """Argmax per word; words lost to truncation are predicted "O"."""
    ids = [wl.argmax(axis=-1) if len(wl) else np.zeros(0, dtype=np.int64) for wl in word_logits]
    return decode_ids(ids, n_words, labels)


def decode_ids(
    word_ids: Sequence[np.ndarray], n_words: Sequence[int], labels: Sequence[str]
) -> list[list[str]]:
    """Label ids per kept word -> tags per word; words lost to truncation are predicted "O"."""
    preds = []
    for ids, n in zip(word_ids, n_words, strict=True):
        tags = [labels[k] for k in ids]
        preds.append(tags + ["O"] * (n - len(tags)))
    return preds


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Micro precision/recall/F1 over entities, and per entity type (values in 0..1)."""
    report = classification_report(
        [list(g) for g in gold], [list(p) for p in pred], output_dict=True, zero_division=0
    )
    micro = report["micro avg"]
    per_type = {
        name: {
            "precision": float(v["precision"]),
            "recall": float(v["recall"]),
            "f1": float(v["f1-score"]),
            "support": int(v["support"]),
        }
        for name, v in report.items()
        if not name.endswith(" avg")
    }
    return {
        "f1": float(micro["f1-score"]),
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "entities": int(micro["support"]),
        "f1_per_type": per_type,
    }


def parity(word_logits: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> dict:
    """Max absolute logit difference and argmax agreement against the fp32 reference."""
    a = np.concatenate([w for w in word_logits if len(w)])
    b = np.concatenate([w for w in reference if len(w)])
    if a.shape != b.shape:
        raise ValueError(f"parity: shapes differ {a.shape} vs {b.shape}")
    return {
        "max_abs_logit_diff": float(np.abs(a - b).max()),
        "argmax_agreement": float((a.argmax(-1) == b.argmax(-1)).mean()),
    }
