"""bench/gpu_table.py compares only like with like: a cell is set against the H200 reference
(and counted for the H200 targets) only when it ran on an H200; on another GPU, or the CPU, the
table shows the figures and says that no reference exists for that device."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("gpu_table", BENCH / "gpu_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(gpu: str | None, sps: float = 30_000.0, device: str = "cuda") -> dict:
    """An ok bert-base seq-128 cell of the reference: compile bf16-weights, batch 512."""
    return {
        "label": f"infer compile {device} bf16-weights pad-max b512",
        "role": "cell",
        "status": "ok",
        "spec": {
            "workload": "infer",
            "runtime": "compile",
            "compile_mode": "default",
            "precision": "bf16-weights",
            "batch_size": 512,
            "model": "bert-base",
            "seq_len": 128,
            "device": device,
        },
        "metrics": {"samples_per_s": sps, "latency_ms": {"p50": 10.0}},
        "details": {},
        "env": {"gpu": gpu},
    }


def write_run(tmp_path: Path, *records: dict) -> str:
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(run)


@pytest.mark.parametrize(
    "gpu,same",
    [
        ("NVIDIA H200", True),
        ("nvidia  h200", True),
        ("NVIDIA H100 80GB HBM3", False),
        ("NVIDIA H200 NVL", False),
        ("NVIDIA H200 MIG 1g.18gb", False),
        ("NVIDIA L4", False),
        (None, False),
    ],
)
def test_only_the_reference_product_is_comparable(table, gpu, same):
    assert table.comparable(record(gpu)) is same


def test_h200_row_is_compared_and_its_targets_checked(table, tmp_path, capsys):
    run = write_run(tmp_path, record("NVIDIA H200", 30_000.0))
    table.main(["--targets", run])
    out = capsys.readouterr().out
    assert "1.53x of 19607" in out  # 30,000 / the reference's 19,607 seq/s
    assert "compared with the NVIDIA H200 reference" in out
    assert "best inference: 30,000 seq/s" in out and ": met" in out
    assert "no reference exists" not in out


@pytest.mark.parametrize("gpu", ["NVIDIA H100 80GB HBM3", "NVIDIA H200 NVL"])
def test_another_gpu_shows_figures_and_says_no_reference_exists(table, tmp_path, capsys, gpu):
    run = write_run(tmp_path, record(gpu, 14_000.0))
    table.main(["--targets", run])
    out = capsys.readouterr().out
    assert "14,000" in out  # the figure is shown
    assert "x of" not in out and "NOT met" not in out and ": met" not in out
    assert f"no reference exists for {gpu}" in out
    assert "targets: not checked" in out


def test_cpu_cells_are_not_compared(table, tmp_path, capsys):
    run = write_run(tmp_path, record(None, 50.0, device="cpu"), record("NVIDIA H200", 20_000.0))
    table.main([run])
    out = capsys.readouterr().out
    assert "no reference exists for cpu" in out
    assert "compared with the NVIDIA H200 reference" in out
    cpu_line = next(line for line in out.splitlines() if "infer compile cpu" in line)
    cuda_line = next(line for line in out.splitlines() if "infer compile cuda" in line)
    assert "50" in cpu_line and "x of" not in cpu_line
    assert "1.02x of 19607" in cuda_line
