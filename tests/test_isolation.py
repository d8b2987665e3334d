"""Cells die, hang and run out of memory for real; the matrix goes on and resumes cleanly. The
timeout itself on a torch-free sleeping function and clocks the test controls: no verdict
depends on how long start-up takes."""

import functools
import json
import math
import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelbench.cli import main
from accelbench.runner import isolate
from helpers import FakeClock, read_records, tiny_argv, wait_for, wait_gone

INFER_FP32 = ["--workloads", "infer", "--precisions", "fp32"]


@pytest.fixture
def fault_runtimes(plugin_runtimes, monkeypatch, tmp_path) -> Path:
    plugin_runtimes(
        crash="fault_backends:CrashBackend",
        oom="fault_backends:OomBackend",
        timedhang="fault_backends:TimedHangBackend",
    )
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    monkeypatch.setenv("ACCELBENCH_TEST_PID_DIR", str(pid_dir))
    return pid_dir


@pytest.mark.slow
def test_a_function_still_running_at_the_timeout_is_killed():
    """`time.sleep` in the child (no torch); the clock reads 1 s later at every poll, so the
    10 s timeout passes after ten polls, whatever the machine is doing."""
    outcome = isolate.run_isolated(time.sleep, (3600,), 10, clock=FakeClock(tick=1.0))
    assert outcome.status == "timeout"
    assert outcome.reason == "still running after 10s; killed"


@pytest.mark.slow
def test_a_function_that_returns_before_the_timeout_gives_its_value():
    outcome = isolate.run_isolated(operator.add, (2, 3), 10, clock=lambda: 0.0)
    assert (outcome.status, outcome.value) == ("ok", 5)
    error = isolate.run_isolated(operator.truediv, (1, 0), 10, clock=lambda: 0.0)
    assert error.status == "error" and error.reason == "ZeroDivisionError: division by zero"


@pytest.mark.slow
def test_killed_and_oom_cells_are_data_and_the_matrix_goes_on(
    tiny_model_dir, tiny_checkpoint, tmp_path, fault_runtimes
):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--checkpoint", str(tiny_checkpoint), *INFER_FP32)
    assert main([*argv, "--runtimes", "crash,oom,eager"]) == 0
    by_runtime = {r["spec"]["runtime"]: r for r in read_records(out)}
    assert by_runtime["crash"]["status"] == "crashed"
    assert "SIGKILL" in by_runtime["crash"]["reason"]
    assert by_runtime["oom"]["status"] == "oom"
    assert "out of memory" in by_runtime["oom"]["reason"]
    assert by_runtime["eager"]["status"] == "ok"
    # each cell's own log: the full traceback of a failure; the record keeps the short form
    oom = by_runtime["oom"]
    log = (out / oom["log"]).read_text()
    assert oom["log"] == f"logs/{oom['cell_id']}.log"
    assert "Traceback (most recent call last)" in log and "in cell_main" in log
    assert "in run_infer" in log and "OutOfMemoryError: CUDA out of memory" in log
    assert "in cell_main" not in oom["traceback"] and "OutOfMemoryError" in oom["traceback"]
    crash = (out / by_runtime["crash"]["log"]).read_text()
    assert crash.startswith(
        f"accelbench cell {by_runtime['crash']['cell_id']} (cell, repeat 0): infer crash"
    )


@pytest.mark.slow
def test_oom_backoff_halves_the_batch_until_it_fits(
    tiny_model_dir, tiny_checkpoint, tmp_path, fault_runtimes
):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--checkpoint", str(tiny_checkpoint), *INFER_FP32)
    assert main([*argv, "--runtimes", "oom", "--oom-backoff"]) == 0
    rec = next(r for r in read_records(out) if r["spec"]["runtime"] == "oom")
    assert rec["status"] == "ok", rec["reason"]
    assert rec["spec"]["batch_size"] == 16
    assert rec["metrics"]["batch_size_ran"] == 4
    assert rec["details"]["oom_backoff_tried"] == [16, 8, 4]


@pytest.mark.slow
def test_a_cell_that_hangs_in_its_timed_loop_ends_as_timeout(
    tiny_model_dir, tiny_checkpoint, tmp_path, fault_runtimes, monkeypatch
):
    """The session loads, warms up and scores, then hangs while being timed. The cells'
    clock stands still until the hang begins (its pid file) and then jumps past any timeout:
    --cell-timeout 1 ends that cell and no other, however slow the machine."""
    pid_file = fault_runtimes / "timed-hang.pid"

    def hang_clock() -> float:
        return math.inf if pid_file.exists() else 0.0

    monkeypatch.setattr(
        isolate, "run_isolated", functools.partial(isolate.run_isolated, clock=hang_clock)
    )
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--checkpoint", str(tiny_checkpoint), *INFER_FP32)
    assert main([*argv, "--runtimes", "eager,timedhang", "--cell-timeout", "1"]) == 0
    by_runtime = {r["spec"]["runtime"]: r for r in read_records(out)}
    assert by_runtime["eager"]["status"] == "ok"
    hung = by_runtime["timedhang"]
    assert hung["status"] == "timeout"
    assert hung["reason"] == "cell still running after --cell-timeout 1s; killed"
    assert wait_gone([int(pid_file.read_text())]), "the hung cell process outlived its timeout"


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(tiny_model_dir, tiny_checkpoint, tmp_path):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--checkpoint", str(tiny_checkpoint))
    argv += ["--workloads", "infer", "--precisions", "fp32,bf16"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelbench", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = out / "results.jsonl"
    assert wait_for(results), "the run recorded nothing"
    while results.read_text().count("\n") < 1:  # the first record is written whole
        assert proc.poll() is None, "run ended before it could be killed"
        time.sleep(0.05)
    # the second cell is still starting: an interpreter, torch and the model stand between
    # its start and its record
    os.kill(proc.pid, signal.SIGKILL)  # the run only: its cell process must notice and exit
    proc.wait()
    if not wait_gone_group(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a cell process outlived its killed run")
    first = results.read_text().splitlines()
    assert len(first) == 1

    assert main(["run", "--resume", str(out)]) == 0
    lines = results.read_text().splitlines()
    assert lines[: len(first)] == first  # finished cells untouched
    ids = [json.loads(x)["cell_id"] for x in lines]
    assert len(ids) == len(set(ids)) == 2
    assert all(json.loads(x)["status"] == "ok" for x in lines)


def wait_gone_group(pgid: int, hang_s: float = 300.0) -> bool:
    """Wait until no process of group `pgid` runs (False on a hang)."""
    deadline = time.monotonic() + hang_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
