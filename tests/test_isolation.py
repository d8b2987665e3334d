"""Cells die, hang and run out of memory for real; the matrix goes on and resumes cleanly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accelbench.cli import main
from conftest import FAST, NO_CEILINGS

pytestmark = pytest.mark.slow  # end to end: models and cell processes

QUICK = [*FAST, *NO_CEILINGS]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def fault_runtimes(plugin_runtimes):
    plugin_runtimes(crash="fault_backends:CrashBackend", oom="fault_backends:OomBackend")


def test_killed_and_oom_cells_are_data_and_the_matrix_goes_on(
    tiny_model_dir, tmp_path, fault_runtimes
):
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--workloads",
            "infer",
            "--runtimes",
            "crash,oom,eager",
            "--precisions",
            "fp32",
            *QUICK,
        ]
    )
    assert code == 0
    by_runtime = {r["spec"]["runtime"]: r for r in records(out) if r["role"] == "cell"}
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


def test_oom_backoff_halves_the_batch_until_it_fits(tiny_model_dir, tmp_path, fault_runtimes):
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--workloads",
            "infer",
            "--runtimes",
            "oom",
            "--precisions",
            "fp32",
            "--oom-backoff",
            *QUICK,
        ]
    )
    assert code == 0
    rec = next(r for r in records(out) if r["spec"]["runtime"] == "oom")
    assert rec["status"] == "ok", rec["reason"]
    assert rec["spec"]["batch_size"] == 16
    assert rec["metrics"]["batch_size_ran"] == 4
    assert rec["details"]["oom_backoff_tried"] == [16, 8, 4]
    log = (out / rec["log"]).read_text()
    assert log.count("(cell, repeat 0): infer oom cpu fp32") == 3  # one header per attempt
    assert "out of memory at batch 16: again at batch 8" in log
    assert "out of memory at batch 8: again at batch 4" in log
    assert "resumed" not in log


def test_cell_timeout(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    code = main(
        [
            "run",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--workloads",
            "train",
            "--precisions",
            "fp32,bf16",
            *QUICK,
            "--cell-timeout",
            "1",
        ]
    )
    assert code == 1  # no cell produced a result
    recs = records(out)
    assert [r["status"] for r in recs] == ["timeout", "timeout"]
    assert "--cell-timeout 1s" in recs[0]["reason"]


def test_killed_run_resumes_without_duplicates(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    argv = [
        "run",
        "--model",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--precisions",
        "fp32,bf16",
        *QUICK,
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelbench", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = out / "results.jsonl"

    def started() -> int:  # cells whose process has written to its log
        return sum(1 for log in (out / "logs").glob("*.log") if log.stat().st_size)

    deadline = time.monotonic() + 240
    while not (results.exists() and started() > results.read_text().count("\n") >= 1):
        assert proc.poll() is None, "run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # the run only: its cell process must notice and exit
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("a cell process outlived its killed run")
    first = results.read_text().splitlines()
    assert 1 <= len(first) < 4

    assert main(["run", "--resume", str(out)]) == 0
    lines = results.read_text().splitlines()
    assert lines[: len(first)] == first  # finished cells untouched
    ids = [json.loads(x)["cell_id"] for x in lines]
    assert len(ids) == len(set(ids)) == 4
    assert all(json.loads(x)["status"] == "ok" for x in lines)
    # the log of the cell that was killed: its first attempt, a marker, the rerun
    rerun = (out / "logs" / f"{ids[len(first)]}.log").read_text()
    header = f"accelbench cell {ids[len(first)]} "
    assert rerun.count(header) == 2
    marker = rerun.index("resumed: the attempt above ended before its result was recorded")
    assert rerun.index(header) < marker < rerun.rindex(header)
    assert "resumed" not in (out / "logs" / f"{ids[0]}.log").read_text()


def test_a_run_where_no_cell_produced_a_result_exits_1(
    tiny_model_dir, tmp_path, fault_runtimes, capsys
):
    out = tmp_path / "r"
    argv = ["run", "--model", str(tiny_model_dir), "--out", str(out), "--synthetic"]
    argv += ["--workloads", "infer", "--runtimes", "crash", "--precisions", "fp32", *QUICK]
    code = main(argv)
    assert code == 1
    assert [r["status"] for r in records(out)] == ["crashed"]
    assert "no cell of this run produced a result" in capsys.readouterr().err


def test_a_run_with_relative_paths_resumes_from_another_directory(
    tiny_model_dir, conll_dir, tmp_path, monkeypatch
):
    """run.json keeps --dataset conll:DIR and --model DIR absolute."""
    import shutil

    start = tmp_path / "start"
    shutil.copytree(conll_dir, start / "data", ignore=shutil.ignore_patterns("start"))
    shutil.copytree(tiny_model_dir, start / "model")
    monkeypatch.chdir(start)
    argv = ["run", "--model", "model", "--dataset", "conll:data", "--out", "run"]
    argv += ["--workloads", "infer", "--precisions", "fp32", *QUICK]
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
    resumed = records(run)
    assert [r["status"] for r in resumed] == ["ok", "ok"]
    assert resumed[1]["data"]["dataset"] == f"conll:{start / 'data'}"


def test_no_keep_checkpoint_deletes_it_once_the_run_is_complete(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "r"
    argv = ["run", "--model", str(tiny_model_dir), "--out", str(out), "--no-keep-checkpoint"]
    assert main([*argv, "--workloads", "infer", "--precisions", "fp32", *QUICK]) == 0
    assert [(r["role"], r["status"]) for r in records(out)] == [("reference", "ok"), ("cell", "ok")]
    assert not (out / "checkpoint").exists()
    assert f"deleted {out / 'checkpoint'} (--no-keep-checkpoint)" in capsys.readouterr().err


def _signalled_run(argv: list[str], ready) -> subprocess.Popen:
    """`accelbench run ARGV` as a user starts it; returns once `ready()` holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "accelbench", "run", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return proc


def test_sigterm_before_a_record_says_nothing_was_recorded(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    argv = ["--model", str(tiny_model_dir), "--out", str(out), "--workloads", "train"]
    argv += ["--precisions", "fp32", *QUICK, "--train-steps", "100000"]  # a long reference
    logs = out / "logs"
    proc = _signalled_run(argv, lambda: logs.is_dir() and any(logs.glob("*.log")))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == (
        f"accelbench: interrupted; no cell was recorded in {out} yet "
        f"(continue with `accelbench run --resume {out}`)"
    )
    assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()


def test_ctrl_c_after_a_record_names_the_run_directory(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    argv = ["--model", str(tiny_model_dir), "--out", str(out), "--workloads", "infer"]
    argv += ["--precisions", "fp32", *QUICK, "--min-time", "3600"]  # the infer cell never ends
    results = out / "results.jsonl"
    proc = _signalled_run(argv, lambda: results.exists() and results.read_text().endswith("\n"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == (
        f"accelbench: interrupted; 1 cell is recorded in {results} "
        f"(continue with `accelbench run --resume {out}`)"
    )
