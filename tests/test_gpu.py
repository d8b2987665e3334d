"""CUDA cells on a tiny BERT: skipped without a GPU (the device script covers them on an H200)."""

import json

import pytest
import torch

from accelbench.cli import main
from conftest import FAST

pytestmark = [
    pytest.mark.gpu,
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
    recs = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    ran = [r for r in recs if r["status"] != "unsupported"]
    assert len(ran) == 4 + 6  # 4 training precisions, 6 inference precisions
    for rec in ran:
        assert rec["status"] == "ok", (rec["label"], rec["reason"])
        m = rec["metrics"]
        assert m["cuda_peak_allocated_mb"] > 0
        assert m["mfu_vs_ceiling"] is not None
        assert m["telemetry"] is not None or m["telemetry_reason"]
    fp16_train = next(
        r for r in ran if r["spec"]["workload"] == "train" and r["spec"]["precision"] == "fp16"
    )
    assert fp16_train["details"]["precision_flags"]["grad_scaler"] is True
    assert "skipped_steps" in fp16_train["details"]
