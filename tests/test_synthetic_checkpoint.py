"""--synthetic --checkpoint DIR times DIR, with DIR's own label count; without --checkpoint a
synthetic cell times --model with a new head of the synthetic labels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from accelbench.backends.eager import EagerBackend
from accelbench.config.specs import RunConfig, cell_for
from accelbench.data.models import build_model, load_tokenizer, resolve_model, save_checkpoint
from accelbench.workloads import infer
from accelbench.workloads.common import SYNTHETIC_LABELS


def _cell(**kw):
    config = RunConfig(synthetic=True, batch_sizes=(2,), seq_lens=(8,), **kw)
    return cell_for(config, "infer", "eager", "cpu", "fp32", "pad-max")


def test_a_synthetic_cell_loads_the_checkpoint_it_names(monkeypatch, tmp_path):
    loaded = []
    monkeypatch.setattr(infer, "load_checkpoint", lambda d: loaded.append(d) or "ckpt-model")
    monkeypatch.setattr(
        infer, "resolve_model", lambda name, tokenizer=None: SimpleNamespace(name=name)
    )
    monkeypatch.setattr(infer, "load_tokenizer", lambda source: f"tokenizer of {source.name}")
    monkeypatch.setattr(infer, "build_model", lambda source, labels: (source.name, labels))
    model, tokenizer = infer.synthetic_model(_cell(checkpoint="/ckpt/dir"), tmp_path)
    assert (model, tokenizer, loaded) == ("ckpt-model", "tokenizer of /ckpt/dir", ["/ckpt/dir"])
    cell = _cell(model="bert-base")
    model, tokenizer = infer.synthetic_model(cell, tmp_path)
    assert model == ("bert-base", SYNTHETIC_LABELS)
    assert tokenizer == "tokenizer of bert-base"
    assert cell.checkpoint == "run-reference"  # no reference fine-tune in a synthetic run


@pytest.mark.slow  # loads the tiny model
def test_synthetic_run_of_a_checkpoint_uses_its_labels(monkeypatch, tiny_model_dir, tmp_path):
    labels = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    source = resolve_model(str(tiny_model_dir))
    ckpt = tmp_path / "ckpt"
    save_checkpoint(build_model(source, labels), load_tokenizer(source), ckpt, {})
    asked = []
    real = infer.synthetic_batch

    def recording(rows, width, vocab, num_labels, seed):
        asked.append(num_labels)
        return real(rows, width, vocab, num_labels, seed)

    monkeypatch.setattr(infer, "synthetic_batch", recording)
    cell = _cell(model="bert-large", checkpoint=str(ckpt))  # --model would not even load
    config = RunConfig(synthetic=True, min_iters=2, min_time=0.01, warmup_iters=0)
    out = infer.run_infer(cell, config, EagerBackend(), tmp_path, "cell", lambda n: None)
    assert set(asked) == {len(labels)}
    assert out["metrics"]["samples_per_s"] > 0
