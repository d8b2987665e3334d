"""The HTML report in a real browser: headless Chromium renders tables and figures, not blank."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from accelbench.cli import main

pytestmark = pytest.mark.slow  # end to end: models and cell processes

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "screenshot_report.py"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium not installed")
def test_report_renders_in_chromium(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "results.jsonl", run / "results.jsonl")
    assert main(["report", str(run)]) == 0
    png = tmp_path / "report.png"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(run / "report.html"), "--png", str(png)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(png)
    assert png.stat().st_size > 10_000
