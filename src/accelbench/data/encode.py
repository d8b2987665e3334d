"""Tokenize word-split sentences once, align labels to the first subword, and batch them.

Padding policies:
- `pad-max`: every batch padded to seq_len (the naive way);
- `dynamic`: each batch padded to its longest sentence, corpus order kept;
- `bucket`: sentences sorted by length, each batch padded up to a multiple of BUCKET_STEP, so
  few distinct shapes reach the runtime (what compiled graphs want).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from accelbench.data.corpus import Sentence

IGNORE = -100
BUCKET_STEP = 16


@dataclass(frozen=True)
class Encoded:
    """A split, tokenized: per sentence its ids, aligned labels and first-subword positions."""

    input_ids: tuple[tuple[int, ...], ...]
    labels: tuple[tuple[int, ...], ...]
    first_subword: tuple[tuple[int, ...], ...]
    n_words: tuple[int, ...]
    words_lost: int

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None  # None where no labels are known (served requests)
    index: tuple[int, ...]
    real_tokens: int

    @property
    def size(self) -> int:
        return len(self.index)

    @property
    def full(self) -> bool:
        """Every position holds a real token (no padding): the attention mask is all ones.
        Read from the token count taken at collation, so it costs no device sync."""
        return self.real_tokens == self.input_ids.numel()

    @property
    def model_mask(self) -> torch.Tensor | None:
        """The attention mask to give the model: None for a full batch, so no runtime checks
        an all-ones mask on the device and every runtime runs the same unmasked attention."""
        return None if self.full else self.attention_mask

    @property
    def signature(self) -> tuple[int, int, bool]:
        """(rows, width, masked): what decides which compiled graph a batch runs."""
        rows, width = self.input_ids.shape
        return rows, width, not self.full

    def pinned(self) -> Batch:
        """A copy in page-locked host memory, for asynchronous copies to a GPU."""
        return Batch(
            self.input_ids.pin_memory(),
            self.attention_mask.pin_memory(),
            self.labels.pin_memory(),
            self.index,
            self.real_tokens,
        )

    def to(self, device: str, non_blocking: bool = False) -> Batch:
        return Batch(
            self.input_ids.to(device, non_blocking=non_blocking),
            self.attention_mask.to(device, non_blocking=non_blocking),
            None if self.labels is None else self.labels.to(device, non_blocking=non_blocking),
            self.index,
            self.real_tokens,
        )


def encode(
    sentences: Sequence[Sentence], tokenizer, label2id: dict[str, int], seq_len: int
) -> Encoded:
    """Tokenize all sentences in one call; words cut off by truncation are counted as lost."""
    enc = tokenizer(
        [list(s.words) for s in sentences],
        is_split_into_words=True,
        truncation=True,
        max_length=seq_len,
    )
    ids, labels, firsts, lost = [], [], [], 0
    for i, sent in enumerate(sentences):
        word_ids = enc.word_ids(i)
        row_labels, first, prev = [], [], None
        for pos, w in enumerate(word_ids):
            if w is None or w == prev:
                row_labels.append(IGNORE)
            else:
                row_labels.append(label2id[sent.tags[w]])
                first.append(pos)
            prev = w
        lost += len(sent.words) - len(first)
        ids.append(tuple(enc["input_ids"][i]))
        labels.append(tuple(row_labels))
        firsts.append(tuple(first))
    return Encoded(
        tuple(ids), tuple(labels), tuple(firsts), tuple(len(s.words) for s in sentences), lost
    )


def padded_width(length: int, policy: str, seq_len: int) -> int:
    """The width a batch whose longest sentence has `length` tokens is padded to."""
    if policy == "pad-max":
        return seq_len
    if policy == "bucket":
        return min(seq_len, -(-length // BUCKET_STEP) * BUCKET_STEP)
    return length


def batch_width(enc: Encoded, index: Sequence[int], policy: str, seq_len: int) -> int:
    return padded_width(max(len(enc.input_ids[i]) for i in index), policy, seq_len)


def signature(
    enc: Encoded, index: Sequence[int], policy: str, seq_len: int
) -> tuple[int, int, bool]:
    """Batch.signature of the batch `collate` would build, without building it."""
    width = batch_width(enc, index, policy, seq_len)
    return len(index), width, any(len(enc.input_ids[i]) < width for i in index)


def collate(enc: Encoded, index: Sequence[int], policy: str, seq_len: int, pad_id: int) -> Batch:
    width = batch_width(enc, index, policy, seq_len)
    ids = torch.full((len(index), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(index), width), dtype=torch.long)
    labels = torch.full((len(index), width), IGNORE, dtype=torch.long)
    for row, i in enumerate(index):
        n = len(enc.input_ids[i])
        ids[row, :n] = torch.tensor(enc.input_ids[i])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(enc.labels[i])
    return Batch(ids, mask, labels, tuple(index), int(mask.sum()))


def batch_order(
    enc: Encoded, batch_size: int, policy: str, rng: random.Random | None = None
) -> list[list[int]]:
    """Sentence indices per batch. With `rng` (training) the order is shuffled."""
    order = list(range(len(enc)))
    if policy == "bucket":
        if rng is not None:
            rng.shuffle(order)
        order.sort(key=lambda i: len(enc.input_ids[i]))
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if rng is not None:
            rng.shuffle(chunks)
        return chunks
    if rng is not None:
        rng.shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def make_batches(
    enc: Encoded,
    batch_size: int,
    policy: str,
    seq_len: int,
    pad_id: int,
    rng: random.Random | None = None,
) -> list[Batch]:
    return [
        collate(enc, idx, policy, seq_len, pad_id)
        for idx in batch_order(enc, batch_size, policy, rng)
    ]


def synthetic_batch(
    batch_size: int, seq_len: int, vocab_size: int, num_labels: int, seed: int
) -> Batch:
    """Fixed-shape random ids and labels: pure hardware speed, no accuracy."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab_size, (batch_size, seq_len), generator=gen)
    labels = torch.randint(0, num_labels, (batch_size, seq_len), generator=gen)
    mask = torch.ones_like(ids)
    return Batch(ids, mask, labels, tuple(range(batch_size)), batch_size * seq_len)
