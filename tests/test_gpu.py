"""CUDA cells on a tiny BERT: skipped without a GPU; on a GPU host they run (with the rest of
the suite, whose tests hold on both)."""

import pytest
import torch

from accelbench.cli import main
from conftest import FAST
from helpers import read_records

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,  # end to end: the tiny model and cell processes
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_cuda_precisions(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--devices",
            "cuda",
            "--precisions",
            "fp32,tf32,bf16,fp16,bf16-weights,fp16-weights",
            *FAST,
        ]
    )
    assert code == 0
    recs = read_records(out)
    ran = [r for r in recs if r["status"] != "unsupported"]
    assert len(ran) == 4 + 6  # 4 training precisions, 6 inference precisions
    for rec in ran:
        assert rec["status"] == "ok", (rec["label"], rec["reason"])
        m = rec["metrics"]
        assert m["cuda_peak_allocated_mb"] > 0
        assert m["mfu_vs_ceiling"] is not None
        assert m["telemetry"] is not None or m["telemetry_reason"]
        if m["telemetry"] is not None:  # sampled over the timed window only
            assert m["telemetry"]["window_s"] > 0
            assert m["telemetry"]["sampler_error"] is None
        unit = "steps" if rec["spec"]["workload"] == "train" else "batches"
        assert m[f"timed_{unit}_compiled"] == 0
        if unit == "batches":  # request latency measured apart from back-to-back device time
            assert m["device_time_ms"]["n"] == m["timed_batches"]
            assert len(rec["samples"]["device_time_s"]) == m["timed_batches"]
    fp16_train = next(
        r for r in ran if r["spec"]["workload"] == "train" and r["spec"]["precision"] == "fp16"
    )
    assert fp16_train["details"]["precision_flags"]["grad_scaler"] is True
    assert "skipped_steps" in fp16_train["details"]


def test_cuda_compile_with_cuda_graphs_and_ort_on_its_stream(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--devices",
            "cuda",
            "--runtimes",
            "eager,compile,ort",
            "--compile-mode",
            "reduce-overhead",
            "--precisions",
            "fp32",
            "--padding",
            "bucket",
            *FAST,
        ]
    )
    assert code == 0
    recs = {(r["spec"]["workload"], r["spec"]["runtime"]): r for r in read_records(out)}
    for key in (("train", "compile"), ("infer", "compile")):
        rec = recs[key]
        assert rec["status"] == "ok", (rec["label"], rec["reason"])
        assert rec["details"]["cudagraphs"] is True
        unit = "steps" if key[0] == "train" else "batches"
        assert rec["metrics"][f"timed_{unit}_compiled"] == 0
    assert recs[("infer", "compile")]["metrics"]["argmax_agreement"] > 0.99
    ort = recs[("infer", "ort")]
    if ort["status"] == "unsupported":  # onnxruntime without its CUDA provider
        assert "CUDAExecutionProvider" in ort["reason"]
        pytest.skip(f"the ORT CUDA checks: {ort['reason']}")
    assert ort["status"] == "ok", ort["reason"]
    m = ort["metrics"]
    # inputs copied on torch's stream, read on ORT's: ordered, so the logits match eager's
    assert m["argmax_agreement"] > 0.99 and m["max_abs_logit_diff"] < 1e-2
    assert m["cuda_peak_allocated_mb"] is None  # not torch's allocator figure
    assert m["device_memory_mb"] is not None or m["device_memory_reason"]
    assert "dedicated" in ort["details"]["compute_stream"]
