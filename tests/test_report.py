"""Reports from a fixed results.jsonl (a trimmed real CPU run of the tiny BERT, tests/data/).

Regenerate the golden summary after an intended change (the test then fails on purpose; review
the diff and run it again without the variable):
    ACCELBENCH_UPDATE_GOLDEN=1 pytest tests/test_report.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accelbench.cli import main

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "summary.golden.csv"
# bootstrap CI bounds depend on numpy's random stream; everything else must match exactly
CI_COLUMNS = ["speedup_low", "speedup_high"]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reports") / "cpu-run"
    run.mkdir()
    shutil.copy(DATA / "results.jsonl", run / "results.jsonl")
    assert main(["report", str(run)]) == 0
    return run


def test_summary_csv_matches_golden(report_dir):
    got = pd.read_csv(report_dir / "summary.csv")
    if os.environ.get("ACCELBENCH_UPDATE_GOLDEN"):  # never a pass: nothing was compared
        shutil.copy(report_dir / "summary.csv", GOLDEN)
        pytest.fail(f"wrote {GOLDEN}: review its diff, then run without ACCELBENCH_UPDATE_GOLDEN")
    want = pd.read_csv(GOLDEN)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.drop(columns=CI_COLUMNS), want.drop(columns=CI_COLUMNS))
    pd.testing.assert_frame_equal(got[CI_COLUMNS], want[CI_COLUMNS], rtol=0.05)


def test_summary_has_one_row_per_cell_and_speedups(report_dir):
    df = pd.read_csv(report_dir / "summary.csv")
    records = (DATA / "results.jsonl").read_text().splitlines()
    assert len(df) == len(records)
    other = df[(df["precision"] == "bf16") & (df["status"] == "ok")]
    assert len(other) > 1 and other["speedup"].notna().all()
    assert (other["speedup_low"] <= other["speedup"]).all()
    assert (other["speedup"] <= other["speedup_high"]).all()
    # the speedup is the fp32 cell's time for the same work over the bf16 cell's, from the raw
    # samples: mean step time (train), or one pass over the distinct batches (infer)
    by_id = {r["cell_id"]: r for r in map(json.loads, records)}

    def work_time(rec: dict) -> float:
        if rec["spec"]["workload"] == "train":
            return float(np.mean(rec["samples"]["step_time_s"]))
        x, k = rec["samples"]["latency_s"], rec["metrics"]["distinct_batches"]
        return float(sum(np.mean(x[i::k]) for i in range(k)))

    for _, row in other.iterrows():
        rec = by_id[row["cell_id"]]
        base = next(r for r in by_id.values() if r["spec"] == {**rec["spec"], "precision": "fp32"})
        assert row["speedup"] == pytest.approx(work_time(base) / work_time(rec), rel=1e-6)
    assert (df.loc[df["status"] == "unsupported", "reason"].str.contains("CUDA")).all()


def test_html_is_self_contained(report_dir):
    page = (report_dir / "report.html").read_text()
    assert not re.search(r"https?://", page)
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert page.count("<img ") >= 4
    assert page.count("<table") >= 3
    for section in ("Environment", "Training (fine-tuning)", "Inference", "Cells that did not run"):
        assert f">{section}</h2>" in page


def test_markdown_figures_are_files_beside_it(report_dir):
    md = (report_dir / "report.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(figures) >= 4
    for fig in figures:
        assert (report_dir / fig).stat().st_size > 5000
    assert "| runtime | precision |" in md


def test_stability_warnings_sit_next_to_their_numbers(report_dir):
    df = pd.read_csv(report_dir / "summary.csv")
    unstable = df[df["stable"] == False]  # noqa: E712
    md = (report_dir / "report.md").read_text()
    assert len(unstable) > 0, "the stored run has unstable cells to warn about"
    assert "⚠" in md
    assert unstable["unstable_reasons"].iloc[0] in md


def test_report_of_several_runs_and_out_dir(report_dir, tmp_path):
    other = tmp_path / "second"
    other.mkdir()
    shutil.copy(DATA / "results.jsonl", other / "results.jsonl")
    out = tmp_path / "combined"
    assert main(["report", str(report_dir), str(other), "--out", str(out)]) == 0
    df = pd.read_csv(out / "summary.csv")
    assert set(df["run"]) == {"cpu-run", "second"}
    assert "cpu-run" in (out / "report.md").read_text()


def test_warnings_survive_a_frame_without_missing_flags():
    """All cells measured: pandas stores `stable` as numpy bools, still flagged as unstable."""
    import json

    from accelbench.report.frame import records_frame
    from accelbench.report.tables import workload_table

    records = [json.loads(line) for line in (DATA / "results.jsonl").read_text().splitlines()]
    measured = [r for r in records if r["status"] == "ok"]
    df = records_frame(measured)
    assert df["stable"].dtype == bool
    table = workload_table(df, "infer")
    unstable = (~df.loc[df["workload"] == "infer", "stable"]).sum()
    warned = sum(c.tone == "warn" and c.note.startswith("unstable:") for r in table.rows for c in r)
    assert warned == unstable > 0


@pytest.mark.parametrize("native", [True, False, None])
def test_bf16_cells_of_a_cpu_without_bf16_instructions_are_called_emulated(tmp_path, native):
    run = tmp_path / "run"
    run.mkdir()
    lines = []
    for line in (DATA / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.setdefault("env", {})["cpu_bf16"] = native
        lines.append(json.dumps(rec))
    (run / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text()
    assert ("its bf16/fp16 cells ran emulated" in md) is (native is False)
