"""CUDA cells on a tiny BERT: skipped without a GPU; on a GPU host they run (with the rest of
the suite, whose tests hold on both). Which cells run is derived from what this GPU and host
can do (the runtimes' own capability probes: native bf16, TF32, Triton and a C compiler), so
the expectations hold on any GPU; a part that cannot run here is skipped with its reason."""

import pytest
import torch

from accelbench.backends import get_backend
from accelbench.cli import main
from conftest import FAST
from helpers import read_records

TRAIN = ("fp32", "tf32", "bf16", "fp16")
INFER = ("fp32", "tf32", "bf16", "fp16", "bf16-weights", "fp16-weights")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,  # end to end: the tiny model and cell processes
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def capability(workload: str, runtime: str, precision: str) -> tuple[bool, str]:
    cap = get_backend(runtime).probe(workload, "cuda", precision)
    return cap.ok, cap.reason


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
    recs = {(r["spec"]["workload"], r["spec"]["precision"]): r for r in read_records(out)}
    expected = {
        (w, p): capability(w, "eager", p)
        for w, ps in (("train", TRAIN), ("infer", INFER))
        for p in ps
    }
    assert set(recs) == set(expected)
    for key, (ok, reason) in expected.items():
        assert (recs[key]["status"] != "unsupported") is ok, (key, recs[key]["reason"])
        if not ok:
            assert recs[key]["reason"] == reason
    assert expected[("train", "fp32")][0] and expected[("train", "fp16")][0]  # any CUDA GPU
    ran = [r for r in recs.values() if r["status"] != "unsupported"]
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
    for workload in ("train", "infer"):
        assert recs[(workload, "eager")]["status"] == "ok", recs[(workload, "eager")]["reason"]
    skipped = []
    for key in (("train", "compile"), ("infer", "compile"), ("infer", "ort")):
        rec = recs[key]
        ok, reason = capability(key[0], key[1], "fp32")
        if not ok:  # no Triton or C compiler; onnxruntime without its CUDA provider
            assert (rec["status"], rec["reason"]) == ("unsupported", reason)
            skipped.append(f"{key[0]} {key[1]}: {reason}")
            continue
        assert rec["status"] == "ok", (rec["label"], rec["reason"])
        if key[1] == "compile":
            assert rec["details"]["cudagraphs"] is True
            unit = "steps" if key[0] == "train" else "batches"
            assert rec["metrics"][f"timed_{unit}_compiled"] == 0
            if key[0] == "infer":
                assert rec["metrics"]["argmax_agreement"] > 0.99
            continue
        m = rec["metrics"]
        # inputs copied on torch's stream, read on ORT's: ordered, so the logits match eager's
        assert m["argmax_agreement"] > 0.99 and m["max_abs_logit_diff"] < 1e-2
        assert m["cuda_peak_allocated_mb"] is None  # not torch's allocator figure
        assert m["device_memory_mb"] is not None or m["device_memory_reason"]
        assert "dedicated" in rec["details"]["compute_stream"]
        assert rec["details"]["node_placement"]["nodes_by_provider"]["CUDAExecutionProvider"] > 0
    if skipped:
        pytest.skip("not runnable on this host: " + "; ".join(skipped))
