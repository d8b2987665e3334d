"""A config-only architecture (`--model bert-base`: random init, exact compute) end to end, with
training given in epochs: its F1 is recorded and reported as not meaningful."""

import json

import pytest

from accelbench.cli import main
from helpers import read_records, write_varied_conll

pytestmark = pytest.mark.slow  # end to end: a BERT-base and cell processes


def test_bert_base_trains_for_its_epochs_and_its_f1_is_marked_not_meaningful(tmp_path):
    data = write_varied_conll(tmp_path / "data")  # 7 sentences: 2 steps per epoch at batch 4
    out = tmp_path / "r"
    argv = ["run", "--model", "bert-base", "--dataset", f"conll:{data}", "--out", str(out)]
    argv += ["--workloads", "infer", "--precisions", "fp32", "--threads", "1", "--no-ceilings"]
    argv += ["--min-iters", "2", "--min-time", "0.05", "--warmup-iters", "1"]
    argv += ["--batch-size", "4", "--seq-len", "32", "--epochs", "1.5", "--eval-limit", "7"]
    argv += ["--in-process"]  # what is tested is the model source and epochs, not the isolation
    assert main(argv) == 0
    reference, infer = read_records(out)
    assert reference["status"] == infer["status"] == "ok", (reference["reason"], infer["reason"])
    m = reference["metrics"]
    assert reference["spec"]["epochs"] == 1.5 and reference["spec"].get("train_steps") is None
    assert m["train_steps"] == 3 and m["epochs"] == 1.5  # ceil(1.5 x 2 steps per epoch)
    assert len(m["loss_curve"]) == 3
    assert json.loads((out / "run.json").read_text())["config"]["epochs"] == 1.5
    for rec in (reference, infer):  # the fine-tune of a random init and the pass over it
        assert rec["metrics"]["f1_meaningful"] is False
    assert main(["report", str(out)]) == 0
    assert (
        "random-init model: F1 shows the pipeline, not accuracy"
        in (out / "report.html").read_text()
    )
