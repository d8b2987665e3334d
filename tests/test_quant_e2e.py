"""One torchao int8 inference cell end to end on the tiny BERT, held to the fp32 reference."""

import json

import pytest

from accelbench.cli import main
from conftest import FAST, NO_CEILINGS, assert_scored

pytestmark = pytest.mark.slow  # a fine-tune and cell processes


def test_torchao_int8_infer_cell_runs_with_f1_and_the_gate(tiny_model_dir, tmp_path):
    pytest.importorskip("torchao")
    out = tmp_path / "r"
    argv = ["run", "--model", str(tiny_model_dir), "--out", str(out), "--workloads", "infer"]
    assert main([*argv, "--precisions", "fp32,int8", "--threads", "1", *FAST, *NO_CEILINGS]) == 0
    recs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    int8 = next(r for r in recs if r["spec"]["precision"] == "int8")
    assert int8["status"] == "ok", int8["reason"]
    m = int8["metrics"]
    assert_scored(m)
    assert m["reference_f1"] is not None and m["delta_f1"] is not None
    assert 0.9 <= m["argmax_agreement"] <= 1.0
    assert 0 < m["max_abs_logit_diff"] < 0.5  # quantized: close to fp32, not equal
    q = int8["details"]["quantization"]
    assert q["library"] == "torchao" and "Int8DynamicActivationInt8WeightConfig" in q["api"]
    assert q["weight_types"] == ["Int8Tensor"]
    assert q["linears_converted"] == 12 and q["linears_kept"] == ["classifier"]
    assert int8["env"]["torchao"] == q["torchao"]
    assert any(op.startswith("aten::_int_mm") for op in int8["details"]["matmul_ops"])
