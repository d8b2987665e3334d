from pathlib import Path

import pytest

from accelbench.data.corpus import (
    iob1_to_iob2,
    load_bundled,
    load_conll_dir,
    load_corpus,
    parse_conll,
)
from accelbench.errors import UserError


def test_parse_conll_sentences_docstart_and_last_column():
    text = "-DOCSTART- -X- O O\n\nEU NNP B-ORG\nrejects VBZ O\n\n\nPeter NNP B-PER\n"
    sents = parse_conll(text, "x.txt")
    assert [s.words for s in sents] == [("EU", "rejects"), ("Peter",)]
    assert [s.tags for s in sents] == [("B-ORG", "O"), ("B-PER",)]


def test_tab_only_line_ends_a_sentence():
    sents = parse_conll("a\tO\nb\tB-X\n\t\nc\tO\n", "x")
    assert len(sents) == 2


def test_iob1_is_converted_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-ORG",
        "B-ORG",
        "I-ORG",
    ]


def test_iob2_is_left_unchanged():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]
    assert iob1_to_iob2(tags) == tags


@pytest.mark.parametrize(
    "line,needle",
    [("lonelyword", "expected a word and a tag"), ("word X-PER", "malformed CoNLL tag 'X-PER'")],
)
def test_malformed_line_names_file_and_line(line, needle):
    with pytest.raises(UserError) as err:
        parse_conll(f"ok O\n{line}\n", "data/train.txt")
    assert "data/train.txt:2:" in str(err.value)
    assert needle in str(err.value)


def test_conll_dir_accepts_dev_txt(conll_dir: Path):
    (conll_dir / "valid.txt").rename(conll_dir / "dev.txt")
    corpus = load_conll_dir(str(conll_dir))
    assert len(corpus.train) == 2
    assert corpus.labels == ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")


def test_conll_dir_missing_file(conll_dir: Path):
    (conll_dir / "test.txt").unlink()
    with pytest.raises(UserError, match=r"has no test\.txt"):
        load_conll_dir(str(conll_dir))


def test_missing_dataset_dir():
    with pytest.raises(UserError, match="does not exist"):
        load_corpus("conll:/nonexistent/dir", 0)


def test_unknown_dataset_scheme():
    with pytest.raises(UserError, match="unknown dataset"):
        load_corpus("csv:foo", 0)


def test_bundled_split_is_deterministic_and_seeded():
    a, b, c = load_bundled(42), load_bundled(42), load_bundled(7)
    assert a.split_hash == b.split_hash
    assert a.split_hash != c.split_hash
    total = len(a.train) + len(a.dev) + len(a.test)
    assert total == 2394
    assert len(a.train) == int(total * 0.8)
    assert len(a.labels) == 21  # O + B/I for 10 WNUT-16 types
    assert {t[2:] for t in a.labels if t != "O"} == {
        "company",
        "facility",
        "geo-loc",
        "movie",
        "musicartist",
        "other",
        "person",
        "product",
        "sportsteam",
        "tvshow",
    }
