"""Shared fixtures: a tiny BERT saved to disk with the bundled vocabulary, a tiny CoNLL dir."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 512,
}

CONLL_TRAIN = """-DOCSTART- O

John I-PER
Smith I-PER
lives O
in O
Paris I-LOC
. O

Mary I-PER
went O
to O
Berlin I-LOC
"""


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT plus the bundled tokenizer, saved like a hub model."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from accelbench.data.models import bundled_dir

    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(BertConfig(vocab_size=30522, **TINY)).save_pretrained(path)
    AutoTokenizer.from_pretrained(bundled_dir()).save_pretrained(path)
    return path


@pytest.fixture
def conll_dir(tmp_path) -> Path:
    for name in ("train.txt", "valid.txt", "test.txt"):
        (tmp_path / name).write_text(CONLL_TRAIN)
    return tmp_path
