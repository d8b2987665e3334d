"""compile, ONNX Runtime and torchao int8 cells end to end on the tiny BERT, held to the eager fp32
reference."""

import json
from pathlib import Path

import pytest

from accelbench.backends import get_backend
from accelbench.cli import main
from conftest import assert_scored
from helpers import QUICK

pytestmark = pytest.mark.slow  # end to end: models and cell processes

RUNTIMES = ("eager", "compile", "ort", "ort-fused")


def records(run_dir: Path) -> dict[tuple[str, str, str, str], dict]:
    out = {}
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        spec = rec["spec"]
        out[(spec["workload"], spec["runtime"], spec["device"], spec["precision"])] = rec
    return out


@pytest.fixture(scope="module")
def recs(tiny_model_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("runtimes") / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--runtimes",
            ",".join(RUNTIMES),
            "--devices",
            "cpu,cuda",
            "--precisions",
            "fp32,int8",
            "--threads",
            "1",
            *QUICK,
        ]
    )
    assert code == 0
    return records(out)


CPU_OK = [
    ("train", "eager", "fp32"),
    ("train", "compile", "fp32"),
    ("infer", "eager", "fp32"),
    ("infer", "compile", "fp32"),
    ("infer", "eager", "int8"),  # torchao (the test extra installs it)
    ("infer", "compile", "int8"),
    ("infer", "ort", "fp32"),
    ("infer", "ort", "int8"),
    ("infer", "ort-fused", "fp32"),
    ("infer", "ort-fused", "int8"),
]


@pytest.mark.parametrize("workload,runtime,precision", CPU_OK)
def test_cpu_cells_run_end_to_end(recs, workload, runtime, precision):
    rec = recs[(workload, runtime, "cpu", precision)]
    assert rec["status"] == "ok", rec["reason"]
    m = rec["metrics"]
    assert m["samples_per_s"] > 0
    assert_scored(m)


@pytest.mark.parametrize("runtime", ["compile", "ort", "ort-fused"])
def test_fp32_runtimes_agree_with_eager(recs, runtime):
    m = recs[("infer", runtime, "cpu", "fp32")]["metrics"]
    assert m["max_abs_logit_diff"] < 1e-4
    assert m["argmax_agreement"] == pytest.approx(1.0)  # same tags on every word: same F1
    assert m["delta_f1"] == pytest.approx(0.0)


def test_int8_is_close_but_not_identical(recs):
    m = recs[("infer", "ort", "cpu", "int8")]["metrics"]
    assert 0 < m["max_abs_logit_diff"] < 1.0
    assert m["argmax_agreement"] > 0.9


def test_torchao_int8_cell_is_quantized_scored_and_gated(recs):
    int8 = recs[("infer", "eager", "cpu", "int8")]
    m = int8["metrics"]
    assert m["reference_f1"] is not None and m["delta_f1"] is not None
    assert 0.9 <= m["argmax_agreement"] <= 1.0
    assert 0 < m["max_abs_logit_diff"] < 0.5  # quantized: close to fp32, not equal
    q = int8["details"]["quantization"]
    assert q["library"] == "torchao" and "Int8DynamicActivationInt8WeightConfig" in q["api"]
    assert q["weight_types"] == ["Int8Tensor"]
    assert q["linears_converted"] == 12 and q["linears_kept"] == ["classifier"]
    assert int8["env"]["torchao"] == q["torchao"]
    assert any(op.startswith("aten::_int_mm") for op in int8["details"]["matmul_ops"])


def test_compile_records_compile_time_apart_and_no_recompile_per_batch(recs):
    infer = recs[("infer", "compile", "cpu", "fp32")]
    d = infer["details"]
    assert d["compile_mode"] == "default"
    assert d["dynamic_shapes"] is True and "dynamic=True" in d["shape_policy"]
    assert d["compile_time_s"] > 0 and d["compiling_calls"] >= 1
    assert d["compiled_calls"] > infer["metrics"]["distinct_batches"]
    assert d["recompiles"] <= 1
    assert d["graph_breaks"] == 0
    train = recs[("train", "compile", "cpu", "fp32")]["details"]
    assert train["compile_time_s"] > 0
    assert train["recompiles"] <= 1
    assert train["evaluator"] == "eager"


def test_ort_records_export_provider_and_threads(recs):
    for runtime in ("ort", "ort-fused"):
        d = recs[("infer", runtime, "cpu", "fp32")]["details"]
        assert d["exporter"].startswith("torch.onnx.export")
        assert d["opset"] == 17 and d["export_time_s"] > 0
        assert d["provider"] == d["provider_requested"] == "CPUExecutionProvider"
        assert d["intra_op_num_threads"] == 1
        assert d["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert recs[("infer", "ort", "cpu", "fp32")]["details"]["graph"] == "plain export"
    assert "quantize_dynamic" in recs[("infer", "ort", "cpu", "int8")]["details"]["quantization"]


def test_ort_fused_graph_has_fused_attention(recs):
    for precision in ("fp32", "int8"):
        d = recs[("infer", "ort-fused", "cpu", precision)]["details"]
        assert d["graph"] == "fused"
        assert d["fused_attention"] == 2  # one per layer of the tiny model
        assert d["fusion_stats"]["Attention"] == 2
        assert "fusion_warning" not in d


def test_unsupported_cells_say_why(recs):
    """Every CUDA cell runs exactly where its runtime's probe says this host can run it (a GPU,
    Triton and a C compiler for compile, onnxruntime's CUDA provider for ort), and says why
    not elsewhere."""
    for key, rec in recs.items():
        workload, runtime, device, precision = key
        if device != "cuda":
            continue
        cap = get_backend(runtime).probe(workload, device, precision)
        if cap.ok:
            assert rec["status"] == "ok", (rec["label"], rec["reason"])
        else:
            assert (rec["status"], rec["reason"]) == ("unsupported", cap.reason), rec["label"]
    ort_cuda = recs[("infer", "ort", "cuda", "fp32")]
    if ort_cuda["status"] == "unsupported":  # a CPU build of torch or of onnxruntime
        assert "CUDA" in ort_cuda["reason"]
    else:
        assert ort_cuda["details"]["provider"] == "CUDAExecutionProvider"
        assert ort_cuda["metrics"]["cuda_peak_allocated_mb"] is None  # ORT's arena: NVML
    assert "inference only" in recs[("train", "ort", "cpu", "fp32")]["reason"]
    assert "inference mode" in recs[("train", "compile", "cpu", "int8")]["reason"]
