"""Data-parallel training on CPU (gloo) with the tiny BERT: `--nproc`, ranks that fail or hang,
killed cells, and the same rank code under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

from accelbench.cli import main
from accelbench.config.specs import RunConfig, cell_for
from accelbench.runner.matrix import plan_cells
from accelbench.runner.ranks import failed_ranks
from conftest import assert_scored
from helpers import QUICK, read_records, tiny_argv, wait_for, wait_gone

ONE_THREAD = ["--threads", "1"]


def nproc(record: dict) -> int:
    return record["spec"].get("nproc", 1)


@pytest.fixture(scope="module")
def ddp_run(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "r"
    argv = tiny_argv(tiny_model_dir, out, "--nproc", "2", *ONE_THREAD, "--devices", "cpu")
    argv += ["--workloads", "train", "--precisions", "fp32"]
    argv += ["--grad-accum", "2"]  # micro-batches all-reduced once per step (DDP no_sync)
    assert main(argv) == 0
    return out


@pytest.mark.slow
def test_two_process_cell_runs_after_its_one_process_baseline(ddp_run):
    base, ddp = read_records(ddp_run)
    assert (nproc(base), nproc(ddp)) == (1, 2)
    assert base["status"] == ddp["status"] == "ok", (base["reason"], ddp["reason"])
    m = ddp["metrics"]
    assert (m["world_size"], m["per_rank_batch"], m["grad_accum"]) == (2, 16, 2)
    assert m["global_batch"] == 2 * 16 * 2
    assert base["metrics"]["world_size"] == 1
    assert_scored(m)
    assert m["timed_steps"] == base["metrics"]["timed_steps"]
    assert m["scaling_efficiency"] > 0
    assert m["scaling_efficiency"] == pytest.approx(
        m["samples_per_s"] / (2 * base["metrics"]["samples_per_s"])
    )
    assert m["scaling_baseline_cell_id"] == base["cell_id"]
    d = ddp["details"]
    assert d["dist_backend"] == "gloo" and d["threads_per_rank"] == 1
    assert len(d["rank_timed_s"]) == 2
    assert sum(ddp["samples"]["step_time_s"]) == pytest.approx(max(d["rank_timed_s"]))
    assert ddp["label"].endswith(" x2")


@pytest.mark.slow
def test_report_draws_the_scaling_plot(ddp_run):
    assert main(["report", str(ddp_run)]) == 0
    md = (ddp_run / "report.md").read_text()
    assert "(figures/scaling_train.png)" in md
    assert (ddp_run / "figures" / "scaling_train.png").stat().st_size > 5000
    assert "| procs |" in md and "% of 2×" in md
    html = (ddp_run / "report.html").read_text()
    assert "throughput of N data-parallel processes" in html


def test_plan_puts_the_one_process_baseline_first():
    config = RunConfig(workloads=("train",), precisions=("fp32", "bf16"), nprocs=(2, 1))
    plan = [(p.cell.precision, p.cell.nproc, p.role.value) for p in plan_cells(config)]
    assert plan == [
        ("fp32", 1, "reference"),  # in the matrix: the run's reference fine-tune
        ("fp32", 2, "cell"),
        ("bf16", 1, "cell"),
        ("bf16", 2, "cell"),
    ]
    only_two = RunConfig(workloads=("train",), precisions=("bf16",), nprocs=(2,))
    assert [(p.cell.nproc, p.role.value) for p in plan_cells(only_two)] == [
        (1, "cell"),
        (2, "cell"),
    ]
    with_infer = RunConfig(precisions=("fp32",), nprocs=(2,))
    plan = [(p.cell.workload, p.cell.nproc, p.role.value) for p in plan_cells(with_infer)]
    assert plan == [("train", 1, "reference"), ("train", 2, "cell"), ("infer", 1, "cell")]


def test_failed_ranks_name_the_rank_and_the_cause(tmp_path):
    error_file = tmp_path / "error.json"
    error_file.write_text(
        json.dumps(
            {
                "message": {
                    "message": "ValueError: bad shard",
                    "extraInfo": {"py_callstack": "Traceback ...", "timestamp": "10"},
                }
            }
        )
    )
    raised = ProcessFailure(local_rank=1, pid=11, exitcode=1, error_file=str(error_file))
    killed = ProcessFailure(local_rank=0, pid=10, exitcode=-9, error_file="/no/such/file")
    assert failed_ranks({1: raised}) == {
        "status": "error",
        "reason": "rank 1: ValueError: bad shard",
        "traceback": "Traceback ...",
    }
    both = failed_ranks({0: killed, 1: raised})
    assert both["status"] == "crashed"
    assert both["reason"] == "rank 1: ValueError: bad shard; rank 0: killed by SIGKILL"


@pytest.fixture
def rank_faults(plugin_runtimes, monkeypatch, tmp_path) -> Path:
    plugin_runtimes(
        rankfail="fault_backends:RankFailBackend", rankhang="fault_backends:RankHangBackend"
    )
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    monkeypatch.setenv("ACCELBENCH_TEST_PID_DIR", str(pid_dir))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # a killed cell leaves its launcher's log dir
    return pid_dir


def _pids(pid_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(pid_dir.glob("rank*.pid"))]


@pytest.mark.slow
def test_a_failing_or_silent_rank_ends_its_cell_and_the_matrix_goes_on(
    tiny_model_dir, tmp_path, rank_faults
):
    out = tmp_path / "r"
    argv = tiny_argv(tiny_model_dir, out, "--nproc", "2", *ONE_THREAD, "--dist-timeout", "5")
    argv += ["--runtimes", "rankfail,rankhang", "--workloads", "train", "--precisions", "fp32"]
    assert main(argv) == 0
    by = {(r["spec"]["runtime"], nproc(r)): r for r in read_records(out)}
    assert len(by) == 4
    assert by[("rankfail", 1)]["status"] == by[("rankhang", 1)]["status"] == "ok"
    failed = by[("rankfail", 2)]
    assert failed["status"] == "error"
    assert failed["reason"].startswith("rank 1: RuntimeError: injected failure on rank 1")
    assert "injected failure" in failed["traceback"]
    silent = by[("rankhang", 2)]  # rank 0 waits for rank 1 in DDP's first broadcast
    assert silent["status"] == "error"
    assert silent["reason"].startswith("rank 0: ") and "timed out" in silent["reason"].lower()
    assert len(_pids(rank_faults)) == 2
    assert wait_gone(_pids(rank_faults)), "a rank outlived its cell"


@pytest.mark.slow
def test_killing_the_cell_process_ends_its_ranks(tiny_model_dir, tmp_path, rank_faults):
    from accelbench.config.job import CellJob
    from accelbench.runner.child import cell_main
    from accelbench.runner.isolate import run_isolated

    config = RunConfig(
        model=str(tiny_model_dir),
        runtimes=("rankhang",),
        workloads=("train",),
        precisions=("fp32",),
        nprocs=(2,),
        train_steps=4,
        threads=1,
        dist_timeout=600,
    )
    cell = cell_for(config, "train", "rankhang", "cpu", "fp32", "dynamic", nproc=2)
    job = CellJob(cell, config, tmp_path)
    result: dict = {}
    runner = threading.Thread(
        target=lambda: result.update(outcome=run_isolated(cell_main, (job,), 600))
    )
    runner.start()
    assert wait_for(rank_faults / "rank1.pid"), "the ranks never started"
    assert wait_for(rank_faults / "rank0.pid"), "rank 0 never started"
    ranks = _pids(rank_faults)
    stat = Path(f"/proc/{ranks[0]}/stat").read_text()
    cell_process = int(stat.rsplit(")", 1)[1].split()[1])  # the ranks' parent
    os.kill(cell_process, signal.SIGKILL)  # what --cell-timeout does to a cell that hangs
    runner.join()
    assert result["outcome"].status == "crashed"
    assert wait_gone(ranks), "a rank outlived its killed cell process"


@pytest.mark.slow
def test_torchrun_ranks_run_the_cells_and_rank_0_writes(tiny_model_dir, tmp_path):
    out = tmp_path / "r"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "accelbench", "run", "--model", str(tiny_model_dir)]
    command += ["--out", str(out), "--workloads", "train", "--precisions", "fp32", *QUICK]
    command += ONE_THREAD
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # torchrun's log dir
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (rec,) = read_records(out)
    assert rec["status"] == "ok", rec["reason"]
    assert nproc(rec) == 2 and rec["metrics"]["world_size"] == 2
    assert rec["metrics"]["global_batch"] == 32
    assert_scored(rec["metrics"])
    assert rec["details"]["dist_backend"] == "gloo"
    assert json.loads((out / "run.json").read_text())["config"]["nprocs"] == [2]
    assert proc.stdout.count("results: ") == 1  # rank 0 alone reports


def test_torchrun_runs_training_only(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["run", "--out", str(tmp_path / "r"), "--workloads", "train,infer"]) == 2
    err = capsys.readouterr().err.strip()
    assert "under torchrun" in err and "--workloads train" in err
    assert len(err.splitlines()) == 1
