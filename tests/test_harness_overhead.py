"""bench/harness_overhead.py on a tiny BERT: a well-formed result, both sides doing the same work.

No timed assertions: whether the target is met is the benchmark's to say, not a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end to end: models and cell processes

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "harness_overhead.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=600,
    )


def test_both_workloads_give_ratios_over_the_same_work(tiny_model_dir, tmp_path):
    out = tmp_path / "overhead.json"
    proc = run_script(
        *("--model", str(tiny_model_dir), "--rounds", "2", "--warmup-rounds", "0"),
        *("--batch-size", "4", "--seq-len", "32", "--sentences", "8", "--iters", "4"),
        *("--train-steps", "6", "--threads", "1", "--json", str(out)),
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result["workloads"]) == {"infer", "train"}
    assert result["timer_cost_s"] > 0
    for workload, summary in result["workloads"].items():
        assert len(summary["rounds"]) == 2
        assert [r["order"] for r in summary["rounds"]] == ["AB", "BA"]
        assert len(summary["ratios"]) == 2 and all(r > 0 for r in summary["ratios"])
        assert summary["min_ratio"] <= summary["median_ratio"] <= summary["max_ratio"]
        assert isinstance(summary["pass"], bool) and isinstance(summary["busy"], bool)
        assert summary["timer_cost_fraction"] > 0
        for r in summary["rounds"]:
            a, b = r["accelbench"], r["bare"]
            assert a["sentences"] == b["sentences"] > 0, workload
            assert a["iterations"] == b["iterations"], workload
        assert f"{workload}: median ratio" in proc.stdout
    infer = result["workloads"]["infer"]["rounds"][0]
    assert infer["accelbench"]["iterations"] == 4  # --iters 4, at least 2 x (2 batches)
    train = result["workloads"]["train"]["rounds"]
    assert all(r["accelbench"]["iterations"] == 5 for r in train)  # 6 steps, 1 warm-up
    for r in train:  # same seed, same batches, same steps: the same last loss (CPU)
        assert abs(r["accelbench"]["final_loss"] - r["bare"]["final_loss"]) < 1e-5


def test_bad_input_is_one_line_and_exit_2():
    proc = run_script("--rounds", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --rounds must be at least 1, got 0"
