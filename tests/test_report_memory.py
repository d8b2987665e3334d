"""The results table's memory column: device memory on CUDA rows (torch's peak, or ORT's arena
as NVML saw it), never the host's RSS shown as if it were the GPU's."""

from __future__ import annotations

import json
from pathlib import Path

from accelbench.report.frame import records_frame
from accelbench.report.tables import memory_cell, workload_table

DATA = Path(__file__).parent / "data"


def _infer_records() -> list[dict]:
    lines = (DATA / "results.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["status"] == "ok"]


def _as_cuda(rec: dict, **memory) -> dict:
    rec = json.loads(json.dumps(rec))
    rec["spec"]["device"] = "cuda"
    rec["cell_id"] += "-cuda"
    rec["metrics"].update(peak_rss_mb=5000.0, **memory)
    return rec


def test_cuda_rows_show_device_memory_and_cpu_rows_rss():
    base = next(r for r in _infer_records() if r["spec"]["workload"] == "infer")
    torch_row = _as_cuda(base, cuda_peak_allocated_mb=321.0)
    ort_row = _as_cuda(base, cuda_peak_allocated_mb=None, device_memory_mb=654.0)
    ort_row["cell_id"] += "-ort"
    no_nvml = _as_cuda(
        base,
        cuda_peak_allocated_mb=None,
        device_memory_mb=None,
        device_memory_reason="NVML unavailable: no driver",
    )
    no_nvml["cell_id"] += "-nonvml"
    df = records_frame([base, torch_row, ort_row, no_nvml]).set_index("cell_id")
    assert memory_cell(df.loc[base["cell_id"]]).text == f"{base['metrics']['peak_rss_mb']:,.0f}"
    assert memory_cell(df.loc[torch_row["cell_id"]]).text == "321"
    assert memory_cell(df.loc[ort_row["cell_id"]]).text == "654"  # not the 5,000 MB of RSS
    missing = memory_cell(df.loc[no_nvml["cell_id"]])
    assert (missing.text, missing.note) == ("–", "NVML unavailable: no driver")
    table = workload_table(df.reset_index(), "infer")
    shown = {c.text for row in table.rows for c in row}
    assert "5,000" not in shown and "654" in shown
