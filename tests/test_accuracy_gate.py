"""The accuracy gate: a cell more than --f1-tolerance points below the fp32 eager reference is
numeric_fail and keeps its numbers. The degraded runtime joins through the real plug-in path
(an `accelbench.runtimes` entry point)."""

import pytest

from accelbench.cli import main
from conftest import NO_CEILINGS
from helpers import read_records

pytestmark = pytest.mark.slow  # end to end: models and cell processes


def test_degraded_cell_is_numeric_fail_and_keeps_numbers(
    tiny_model_dir, conll_dir, tmp_path, plugin_runtimes
):
    plugin_runtimes(degraded="degraded_runtime:DegradedBackend")
    out = tmp_path / "gate"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--dataset",
            f"conll:{conll_dir}",
            "--runtimes",
            "eager,ort,degraded",
            "--workloads",
            "infer",
            "--precisions",
            "fp32",
            # the reference memorises the two training sentences, which are also the test set
            "--train-steps",
            "40",
            "--lr",
            "5e-3",
            "--batch-size",
            "4",
            "--min-iters",
            "2",
            "--min-time",
            "0.05",
            "--warmup-iters",
            "1",
            "--threads",
            "1",
            "--in-process",  # what is tested is the gate, not the isolation
            "--out",
            str(out),
            *NO_CEILINGS,
        ]
    )
    assert code == 0
    recs = {r["spec"]["runtime"] + "/" + r["role"]: r for r in read_records(out)}
    reference = recs["eager/reference"]["metrics"]["f1"]
    assert reference > 0.5, "the gate needs a reference with a real F1"
    assert recs["ort/cell"]["status"] == "ok"
    assert recs["ort/cell"]["metrics"]["f1"] == pytest.approx(reference)
    bad = recs["degraded/cell"]
    assert bad["status"] == "numeric_fail"
    assert "below the fp32 eager reference" in bad["reason"]
    m = bad["metrics"]
    assert m["f1"] < reference - 0.01
    assert m["delta_f1"] < -0.01
    assert m["samples_per_s"] > 0 and m["latency_ms"]["p50"] > 0

    lenient = tmp_path / "lenient"
    code = main(
        [
            "run",
            "--checkpoint",
            str(out / "checkpoint"),
            "--dataset",
            f"conll:{conll_dir}",
            "--runtimes",
            "degraded",
            "--workloads",
            "infer",
            "--precisions",
            "fp32",
            "--f1-tolerance",
            "100",
            "--min-iters",
            "2",
            "--min-time",
            "0.05",
            "--out",
            str(lenient),
            *NO_CEILINGS,
        ]
    )
    assert code == 0
    last = read_records(lenient)[-1]
    assert last["spec"]["runtime"] == "degraded"
    assert last["status"] == "ok", "a 100-point tolerance lets the same cell pass"
