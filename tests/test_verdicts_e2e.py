"""End to end on the tiny model: a checkpoint that learnt nothing (it tags every word O, so its
entity F1 is exactly 0) is an undertrained reference: records, console, gates and report say so;
the run's report shows the checkpoint as it describes itself; a batch larger than the test split
is recorded as the batch that ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from accelbench.cli import main
from helpers import read_records

pytestmark = pytest.mark.slow  # models and cell processes

QUICK = ["--min-iters", "2", "--min-time", "0.05", "--warmup-iters", "1", "--threads", "1"]
QUICK += ["--no-ceilings", "--cell-timeout", "300"]
QUICK += ["--in-process"]  # what is tested is the verdicts, not the isolation


def _tags_everything_o(checkpoint: Path) -> None:
    """The fine-tune's checkpoint, its classifier set to answer O for every word."""
    import torch
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(checkpoint)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-10.0)
        model.classifier.bias[model.config.label2id["O"]] = 10.0
    model.save_pretrained(checkpoint)


def test_an_undertrained_checkpoint_and_a_batch_beyond_the_data(
    tiny_model_dir, conll_dir, tmp_path, capsys
):
    first = tmp_path / "first"
    data = ["--dataset", f"conll:{conll_dir}", "--workloads", "infer", "--precisions", "fp32"]
    train = ["--model", str(tiny_model_dir), "--train-steps", "2", "--batch-size", "512"]
    code = main(["run", *train, *data, *QUICK, "--out", str(first)])
    assert code == 0
    reference = next(r for r in read_records(first) if r["role"] == "reference")
    # the test split holds 2 sentences: batch 512 ran as a batch of 2, and says so
    assert reference["metrics"]["batch_size_ran"] == 2
    assert (
        "batch 512 asked for, but the data held 2 sentences"
        in (reference["metrics"]["batch_capped"])
    )
    checkpoint = first / "checkpoint"
    _tags_everything_o(checkpoint)

    second = tmp_path / "second"
    capsys.readouterr()
    infer = ["--checkpoint", str(checkpoint), "--runtimes", "eager,ort", "--batch-size", "2"]
    code = main(["run", *infer, *data, "--accuracy-target", "99%", *QUICK, "--out", str(second)])
    out = capsys.readouterr().out
    assert code == 0
    recs = {r["spec"]["runtime"] + "/" + r["role"]: r for r in read_records(second)}
    weak = recs["eager/reference"]["metrics"]
    assert weak["f1"] == 0.0
    assert "entity F1 0.0000 is below the floor 0.05" in weak["reference_undertrained"]
    cell = recs["ort/cell"]
    assert cell["status"] == "ok"
    assert cell["metrics"]["f1_gate"] == "not checked"
    assert cell["metrics"]["accuracy_target"] == "99%"
    assert cell["details"]["checkpoint"]["path"] == str(checkpoint.resolve())
    assert cell["details"]["checkpoint"]["trained"]["train_steps"] == 2
    assert "WARNING: reference undertrained: the fp32 reference's entity F1 0.0000" in out

    assert main(["report", str(second)]) == 0
    page = (second / "report.md").read_text()
    first_line = page.split("## Overview\n\n")[1].splitlines()[0]
    assert first_line.startswith("> **Reference undertrained.")
    assert f"| checkpoint | {checkpoint.resolve()} |" in page
    assert "| checkpoint trained | train eager cpu fp32 dynamic b512 s128: 2 steps" in page
    assert "| model | bert, fine-tuned from " in page
