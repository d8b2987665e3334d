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
from helpers import (
    FakeClock,
    c_stdio_write,
    mark_at_exit,
    read_records,
    tiny_argv,
    wait_for,
    wait_gone,
)

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
def test_a_childs_buffered_c_output_reaches_its_log(tmp_path, monkeypatch):
    """The child ends without the interpreter's teardown; what a C library still buffers for
    stdout (the log file) is written all the same."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)  # it would unbuffer C's stdout too
    log = tmp_path / "child.log"
    outcome = isolate.run_isolated(c_stdio_write, ("from C, unflushed",), 60, log)
    assert outcome.status == "ok"
    assert log.read_text().endswith("from C, unflushed")


@pytest.mark.slow
def test_a_childs_exit_handlers_run_before_the_parent_goes_on(tmp_path):
    marker = tmp_path / "marker"
    assert isolate.run_isolated(mark_at_exit, (str(marker),), 60).status == "ok"
    assert marker.read_text() == "exit handlers ran"


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
    # halving until it fits, in one process after another (the loop itself:
    # test_executors.py; several halvings: the --in-process test below)
    argv += ["--batch-size", "8"]
    assert main([*argv, "--runtimes", "oom", "--oom-backoff"]) == 0
    rec = next(r for r in read_records(out) if r["spec"]["runtime"] == "oom")
    assert rec["status"] == "ok", rec["reason"]
    assert rec["spec"]["batch_size"] == 8
    assert rec["metrics"]["batch_size_ran"] == 4
    assert rec["details"]["oom_backoff_tried"] == [8, 4]
    log = (out / rec["log"]).read_text()
    assert log.count("(cell, repeat 0): infer oom cpu fp32") == 2  # one header per attempt
    assert "out of memory at batch 8: again at batch 4" in log
    assert "resumed" not in log


@pytest.mark.slow
def test_in_process_runs_every_cell_here_and_the_report_says_so(
    tiny_model_dir, tiny_checkpoint, tmp_path, fault_runtimes, monkeypatch, capsys
):
    from conftest import NoInterpreter

    monkeypatch.setattr(subprocess, "Popen", NoInterpreter)  # a cell process would fail
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--checkpoint", str(tiny_checkpoint), *INFER_FP32)
    assert main([*argv, "--runtimes", "eager,oom", "--oom-backoff", "--in-process"]) == 0
    console = capsys.readouterr().out
    recs = {r["spec"]["runtime"]: r for r in read_records(out)}
    assert [r["status"] for r in recs.values()] == ["ok", "ok"]
    assert all(r["details"]["in_process"] is True for r in recs.values())
    oom = recs["oom"]
    assert oom["details"]["oom_backoff_tried"] == [16, 8, 4]
    assert oom["metrics"]["batch_size_ran"] == 4
    assert oom["metrics"]["f1"] is not None
    # the cell's own lines reach this process's console; its log says where they went
    assert console.count("(cell, repeat 0): infer oom cpu fp32") == 3
    log = (out / oom["log"]).read_text()
    assert log.count("ran in-process, its output on the console") == 3
    assert "out of memory at batch 8: again at batch 4" in log
    assert json.loads((out / "run.json").read_text())["config"]["in_process"] is True
    assert main(["report", str(out)]) == 0
    assert "cells ran in one process (--in-process)" in (out / "report.md").read_text()


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

    def started() -> int:  # cells whose process has written to its log
        return sum(1 for log in (out / "logs").glob("*.log") if log.stat().st_size)

    assert wait_for(results), "the run recorded nothing"
    # the first record written whole and the second cell started: an interpreter, torch and
    # the model stand between its start and its record
    while not started() > results.read_text().count("\n") >= 1:
        assert proc.poll() is None, "run ended before it could be killed"
        time.sleep(0.05)
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
    # the log of the cell that was killed: its first attempt, a marker, the rerun
    rerun = (out / "logs" / f"{ids[len(first)]}.log").read_text()
    header = f"accelbench cell {ids[len(first)]} "
    assert rerun.count(header) == 2
    marker = rerun.index("resumed: the attempt above ended before its result was recorded")
    assert rerun.index(header) < marker < rerun.rindex(header)
    assert "resumed" not in (out / "logs" / f"{ids[0]}.log").read_text()


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


@pytest.mark.slow
def test_a_run_where_no_cell_produced_a_result_exits_1(
    tiny_model_dir, tmp_path, fault_runtimes, capsys
):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--synthetic", "--workloads", "infer")
    assert main([*argv, "--runtimes", "crash", "--precisions", "fp32"]) == 1
    assert [r["status"] for r in read_records(out)] == ["crashed"]
    assert "no cell of this run produced a result" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_with_relative_paths_resumes_from_another_directory(
    tiny_model_dir, conll_dir, tmp_path, monkeypatch
):
    """run.json keeps --dataset conll:DIR and --model DIR absolute."""
    import shutil

    start = tmp_path / "start"
    shutil.copytree(conll_dir, start / "data", ignore=shutil.ignore_patterns("start"))
    shutil.copytree(tiny_model_dir, start / "model")
    monkeypatch.chdir(start)
    argv = tiny_argv(Path("model"), Path("run"), "--dataset", "conll:data", *INFER_FP32)
    assert main(argv) == 0
    run = start / "run"
    assert (run / "checkpoint" / "config.json").is_file()  # kept by default: resume needs it
    config = json.loads((run / "run.json").read_text())["config"]
    assert config["dataset"] == f"conll:{start / 'data'}"
    assert config["model"] == str(start / "model")
    lines = (run / "results.jsonl").read_text().splitlines()
    (run / "results.jsonl").write_text(lines[0] + "\n")  # the infer cell is lost
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["run", "--resume", str(run)]) == 0
    resumed = read_records(run)
    assert [r["status"] for r in resumed] == ["ok", "ok"]
    assert resumed[1]["data"]["dataset"] == f"conll:{start / 'data'}"


@pytest.mark.slow
def test_no_keep_checkpoint_deletes_it_once_the_run_is_complete(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--no-keep-checkpoint", *INFER_FP32)
    assert main(argv) == 0
    recs = read_records(out)
    assert [(r["role"], r["status"]) for r in recs] == [("reference", "ok"), ("cell", "ok")]
    assert not (out / "checkpoint").exists()
    assert f"deleted {out / 'checkpoint'} (--no-keep-checkpoint)" in capsys.readouterr().err


def _interruptible() -> None:
    """SIGINT as at a terminal: a suite started in the background (`pytest ... &`, a CI job)
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signalled_run(argv: list[str], ready) -> subprocess.Popen:
    """`accelbench ARGV` as a user starts it; returns once `ready()` holds (no time limit
    but the test's own: how long start-up takes is no verdict)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelbench", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.1)
    return proc


@pytest.mark.slow
def test_sigterm_before_a_record_says_nothing_was_recorded(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--workloads", "train", "--precisions", "fp32")
    logs = out / "logs"
    argv += ["--train-steps", "100000"]  # a long reference
    proc = _signalled_run(argv, lambda: logs.is_dir() and any(logs.glob("*.log")))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == (
        f"accelbench: interrupted; no cell was recorded in {out} yet "
        f"(continue with `accelbench run --resume {out}`)"
    )
    assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()


@pytest.mark.slow
def test_ctrl_c_after_a_record_names_the_run_directory(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, *INFER_FP32)
    argv += ["--min-time", "3600"]  # the reference fine-tune is recorded, the infer cell never ends
    results = out / "results.jsonl"
    proc = _signalled_run(argv, lambda: results.exists() and results.read_text().endswith("\n"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        f"accelbench: interrupted; 1 cell is recorded in {results} "
        f"(continue with `accelbench run --resume {out}`)"
    )
