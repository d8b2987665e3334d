import pytest

from accelbench.data.corpus import Sentence
from accelbench.data.encode import BUCKET_STEP, IGNORE, encode, make_batches, synthetic_batch
from accelbench.data.models import bundled_dir


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_dir())


SENTS = [
    Sentence(
        ("Empire", "State", "Buildingxyz", "@paulwalk"),
        ("B-facility", "I-facility", "I-facility", "O"),
    ),
    Sentence(("hello",), ("O",)),
]
L2I = {"O": 0, "B-facility": 1, "I-facility": 2}


def test_first_subword_labelled_rest_ignored(tokenizer):
    enc = encode(SENTS, tokenizer, L2I, 128)
    # [CLS] empire state building ##x ##yz @ paul ##walk [SEP]
    assert enc.labels[0] == (IGNORE, 1, 2, 2, IGNORE, IGNORE, 0, IGNORE, IGNORE, IGNORE)
    assert enc.first_subword[0] == (1, 2, 3, 6)
    assert enc.words_lost == 0


def test_truncation_counts_lost_words(tokenizer):
    enc = encode(SENTS, tokenizer, L2I, 5)  # [CLS] + 3 pieces + [SEP]
    assert enc.first_subword[0] == (1, 2, 3)
    assert enc.words_lost == 1
    assert all(len(ids) <= 5 for ids in enc.input_ids)


@pytest.mark.parametrize(
    "policy,width", [("pad-max", 64), ("dynamic", 10), ("bucket", BUCKET_STEP)]
)
def test_padding_policies(tokenizer, policy, width):
    enc = encode(SENTS, tokenizer, L2I, 64)
    (batch,) = make_batches(enc, 8, policy, 64, tokenizer.pad_token_id)
    assert batch.input_ids.shape == (2, width)
    assert batch.real_tokens == 10 + 3
    assert int(batch.attention_mask.sum()) == 13
    assert (batch.labels[batch.attention_mask == 0] == IGNORE).all()


def test_bucket_sorts_by_length(tokenizer):
    sents = [Sentence(tuple(["word"] * n), tuple(["O"] * n)) for n in (30, 2, 20, 3)]
    enc = encode(sents, tokenizer, L2I, 128)
    batches = make_batches(enc, 2, "bucket", 128, 0)
    assert [b.index for b in batches] == [(1, 3), (2, 0)]
    assert [b.input_ids.shape[1] for b in batches] == [16, 32]


def test_synthetic_batch_is_fixed_shape_and_seeded():
    a, b = synthetic_batch(4, 16, 30522, 3, 1), synthetic_batch(4, 16, 30522, 3, 1)
    assert a.input_ids.shape == (4, 16)
    assert (a.input_ids == b.input_ids).all()
    assert a.real_tokens == 64
