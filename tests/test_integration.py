"""End to end through the CLI on a tiny BERT (2 layers, bundled vocabulary), on CPU."""

import json
from pathlib import Path

import pytest
import torch

from accelbench.backends import get_backend
from accelbench.cli import main
from accelbench.runner.store import SCHEMA_VERSION
from conftest import FAST, assert_scored
from helpers import read_records, tiny_argv

pytestmark = pytest.mark.slow  # end to end: models and cell processes


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The suite's one run that measures the ceilings (test_mfu_against_ceilings_...)."""
    out = tmp_path_factory.mktemp("run") / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--devices",
            "cpu,cuda",
            "--precisions",
            "fp32,bf16",
            *FAST,
        ]
    )
    assert code == 0
    return out


def test_train_and_infer_cells_ok(run_dir):
    recs = read_records(run_dir)
    by = {(r["spec"]["workload"], r["spec"]["device"], r["spec"]["precision"]): r for r in recs}
    assert len(recs) == 8
    for workload in ("train", "infer"):
        for precision in ("fp32", "bf16"):
            rec = by[(workload, "cpu", precision)]
            assert rec["status"] == "ok", rec["reason"]
            m = rec["metrics"]
            assert m["samples_per_s"] > 0
            assert m["tokens_per_s"] > m["samples_per_s"]
            assert_scored(m)
            assert "f1_per_type" in m
    assert by[("train", "cpu", "fp32")]["role"] == "reference"


def test_cuda_cells_run_on_a_gpu_and_say_why_not_elsewhere(run_dir):
    cuda = [r for r in read_records(run_dir) if r["spec"]["device"] == "cuda"]
    assert len(cuda) == 4
    for rec in cuda:
        spec = rec["spec"]
        cap = get_backend(spec["runtime"]).probe(spec["workload"], "cuda", spec["precision"])
        if not cap.ok:  # no GPU here, or one without native bf16
            assert (rec["status"], rec["reason"]) == ("unsupported", cap.reason)
            continue
        assert rec["status"] == "ok", (rec["label"], rec["reason"])
        m = rec["metrics"]
        assert m["cuda_peak_allocated_mb"] > 0
        assert m["telemetry"] is not None or m["telemetry_reason"]
        assert "kernel_profile" in rec["details"]
        if rec["spec"]["workload"] == "infer":  # throughput and request latency apart
            assert m["device_time_ms"]["n"] == m["timed_batches"]
            assert m["latency_ms"]["n"] == len(rec["samples"]["latency_s"])


def test_record_schema(run_dir):
    for rec in read_records(run_dir):
        assert rec["schema_version"] == SCHEMA_VERSION
        assert len(rec["cell_id"]) == 16
        for key in (
            "workload",
            "runtime",
            "device",
            "precision",
            "model",
            "dataset",
            "batch_size",
            "seq_len",
            "padding",
            "seed",
        ):
            assert key in rec["spec"]
        for key in ("python", "torch", "transformers", "onnxruntime", "cpu", "torch_threads"):
            assert key in rec["env"]


def test_infer_metrics_and_parity(run_dir):
    recs = [
        r for r in read_records(run_dir) if r["spec"]["workload"] == "infer" and r["status"] == "ok"
    ]
    for rec in recs:
        m, samples = rec["metrics"], rec["samples"]
        assert set(m["latency_ms"]) >= {"p50", "p90", "p99", "mean", "cv"}
        assert m["eval_sentences"] == 48
        assert rec["data"]["split_hash"]
        throughput = samples.get("device_time_s", samples["latency_s"])
        assert len(throughput) == m["timed_batches"]
        assert m["timed_batches_compiled"] == 0
        if rec["spec"]["device"] == "cpu":  # one loop: its host times are the request latency
            assert "device_time_ms" not in m and "device_time_s" not in samples
    fp32 = next(
        r for r in recs if r["spec"]["precision"] == "fp32" and r["spec"]["device"] == "cpu"
    )
    assert fp32["metrics"]["argmax_agreement"] == pytest.approx(1.0)
    assert fp32["metrics"]["max_abs_logit_diff"] < 1e-4
    assert fp32["metrics"]["delta_f1"] == pytest.approx(0.0)


def test_train_metrics(run_dir):
    rec = next(r for r in read_records(run_dir) if r["role"] == "reference")
    m = rec["metrics"]
    assert m["train_steps"] == 12
    assert m["timed_steps"] == 12 - m["warmup_steps"]
    assert len(m["loss_curve"]) == 12
    assert m["step_time_ms"]["p50"] > 0
    assert (run_dir / "checkpoint" / "config.json").is_file()
    # a random 2-layer model after 12 steps has learnt next to nothing: the reference says so
    assert [p[0] for p in m["dev_f1_curve"]] == [2, 4, 6, 8, 10, 12]
    assert m["undertrained"] is True and "near zero" in m["undertrained_reason"]
    assert (
        json.loads((run_dir / "reference" / "reference.json").read_text())["dev_f1"] == m["dev_f1"]
    )


def test_mfu_against_ceilings_measured_by_the_run(run_dir):
    ceilings = json.loads((run_dir / "ceilings.json").read_text())
    assert ceilings["cpu"]["matmul_tflops"]["float32"] > 0
    assert ceilings["cpu"]["copy_gbps"] > 0
    assert ("cuda" in ceilings) is torch.cuda.is_available()
    for rec in read_records(run_dir):
        if rec["status"] == "ok":
            m = rec["metrics"]
            assert m["mfu_vs_ceiling"] == pytest.approx(m["achieved_tflops"] / m["ceiling_tflops"])
            if rec["spec"]["device"] == "cpu":
                assert m["mfu"] is None and m["mfu_reason"]  # no datasheet peak for a CPU
                assert m["telemetry"] is None and "CPU cell" in m["telemetry_reason"]
            else:  # a known GPU has a datasheet peak; any other says why not
                assert (m["mfu"] is None) is (m["peak_tflops"] is None)
                assert m["mfu"] is not None or m["mfu_reason"]


def test_summary_table_names_the_reference(run_dir):
    from accelbench.report.frame import summary_table

    table = summary_table(read_records(run_dir))
    assert "train eager cpu fp32 dynamic b16 s128 (reference)" in table


def test_env_ceilings(capsys, monkeypatch):
    """The command's plumbing and dtype logic: each timed block is said to take 1 ms (the
    measurement itself is the run's, checked above)."""
    from accelbench.measure import ceilings

    monkeypatch.setattr(ceilings, "_time", lambda fn, device: 1e-3)
    assert main(["env", "--ceilings"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ceilings"]["cpu"]["matmul_tflops"]["bfloat16"] > 0
    assert info["ceilings"]["cpu"]["matmul_tflops"]["tf32"] is None
    assert info["torch"] and info["cpu_count"]


def test_report_writes_markdown_and_self_contained_html(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    assert "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") >= 4
    assert "(figures/throughput_infer.png)" in md
    assert (run_dir / "figures" / "f1_vs_throughput.png").stat().st_size > 1000
    assert (run_dir / "summary.csv").is_file()
    assert "## Runs that had not converged" in md and "The fp32 reference: dev F1" in md


def test_resume_runs_nothing_twice(run_dir, capsys):
    before = read_records(run_dir)
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert read_records(run_dir) == before
    assert "already recorded" in capsys.readouterr().err


def test_infer_only_with_checkpoint(run_dir, tmp_path):
    out = tmp_path / "r2"
    argv = ["run", "--workloads", "infer", "--precisions", "fp32", "--runtimes", "ort,eager"]
    argv += ["--checkpoint", str(run_dir / "checkpoint"), "--out", str(out), *FAST]
    assert main([*argv, "--no-ceilings"]) == 0
    recs = read_records(out)
    # the fp32 eager cell over the checkpoint is the reference: it runs first and is measured
    assert [(r["spec"]["runtime"], r["role"]) for r in recs] == [
        ("eager", "reference"),
        ("ort", "cell"),
    ]
    assert all(r["status"] == "ok" for r in recs)
    assert recs[0]["metrics"]["samples_per_s"] > 0
    assert "extra" not in recs[0]["spec"] or not recs[0]["spec"]["extra"]
    ort = recs[1]["metrics"]
    assert ort["reference_f1"] == pytest.approx(recs[0]["metrics"]["f1"])
    assert ort["argmax_agreement"] == pytest.approx(1.0)


def test_synthetic_cells_have_no_f1(tiny_model_dir, tmp_path):
    out = tmp_path / "syn"
    argv = tiny_argv(tiny_model_dir, out, "--synthetic", "--precisions", "fp32", "--seq-len", "32")
    assert main(argv) == 0
    recs = read_records(out)
    assert [r["spec"]["workload"] for r in recs] == ["train", "infer"]
    for rec in recs:
        assert rec["status"] == "ok", rec["reason"]
        assert rec["spec"]["synthetic"] is True
        assert "f1" not in rec["metrics"]
        assert rec["metrics"]["tokens_per_s"] == pytest.approx(rec["metrics"]["samples_per_s"] * 32)
