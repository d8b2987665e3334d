"""Serve cells end to end through the CLI on the tiny BERT: the three LoadGen scenarios in one
run, their records, logs, report and comparison; a runtime that cannot serve; a hung SUT."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from accelbench.cli import main
from accelbench.config.specs import cell_for
from conftest import FAST, alive, install_plugins

HERE = Path(__file__).parent
# one torch thread: on a shared 2-core machine a second OpenMP thread waiting for a core
# stalls whole calls (p90 over 100 ms for the tiny model) and no QPS would meet any bound
SERVE = ["--serve-min-time", "0.5", "--serve-min-queries", "500", "--threads", "1"]
SERVE += ["--latency-bound-ms", "200", "--no-ceilings"]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def serve_faults(tmp_path_factory):
    pid_dir = tmp_path_factory.mktemp("pids")
    with pytest.MonkeyPatch.context() as mp:
        install_plugins(
            tmp_path_factory.mktemp("plugin-site"),
            mp,
            noserve="fault_backends:NoServeBackend",
            servehang="fault_backends:ServeHangBackend",
        )
        mp.setenv("ACCELBENCH_TEST_PID_DIR", str(pid_dir))
        yield pid_dir


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir, tmp_path_factory, serve_faults) -> Path:
    out = tmp_path_factory.mktemp("serve") / "r"
    argv = ["run", "--model", str(tiny_model_dir), "--out", str(out), "--workloads", "serve"]
    argv += ["--runtimes", "eager,noserve", "--precisions", "fp32", *FAST, *SERVE]
    assert main(argv) == 0
    return out


def serve_records(run_dir: Path) -> dict[tuple[str, str], dict]:
    return {
        (r["spec"]["runtime"], r["spec"]["scenario"]): r
        for r in records(run_dir)
        if r["spec"]["workload"] == "serve"
    }


@pytest.mark.slow
def test_each_scenario_serves_with_loadgen_logs_and_the_reference_f1(run_dir):
    recs = records(run_dir)
    assert recs[0]["role"] == "reference" and recs[0]["status"] == "ok"
    reference_f1 = recs[0]["metrics"]["f1"]
    by = serve_records(run_dir)
    assert len(by) == 6
    for scenario in ("single-stream", "server", "offline"):
        rec = by[("eager", scenario)]
        assert rec["status"] == "ok", rec["reason"]
        assert rec["label"].endswith(f" {scenario}")
        m = rec["metrics"]
        assert m["scenario"] == scenario and m["loadgen_valid"] is True, m["loadgen_reasons"]
        assert m["scenario_value"] > 0 and m["samples_per_s"] > 0
        assert m["tokens_per_s"] > m["samples_per_s"]
        assert m["below_mlperf_minimum"] is True
        assert any("600 s" in s for s in m["mlperf_shortfall"])
        # LoadGen's accuracy mode, scored like the infer workload: the same F1 as the fp32
        # reference pass over the same checkpoint, word for word the same predictions
        assert m["f1"] == m["reference_f1"] == reference_f1
        assert m["argmax_agreement"] == 1.0 and m["eval_sentences"] == 48
        logs = run_dir / rec["details"]["serve"]["log_dir"]
        assert logs == run_dir / "loadgen" / rec["cell_id"]
        assert (logs / "accuracy" / "mlperf_log_accuracy.json").stat().st_size > 0
        assert list(logs.glob("performance/**/mlperf_log_summary.txt"))
        assert list(logs.glob("performance/**/mlperf_log_detail.txt"))
    ss, off = by[("eager", "single-stream")]["metrics"], by[("eager", "offline")]["metrics"]
    assert ss["mean_batch_size"] == 1 and ss["higher_is_better"] is False
    assert ss["latency_ms"]["p50"] <= ss["latency_ms"]["p90"] <= ss["latency_ms"]["p99"]
    assert off["scenario_value"] == off["samples_per_s"] and off["mean_batch_size"] > 1
    summary = run_dir / "loadgen" / by[("eager", "offline")]["cell_id"] / "performance"
    assert "Result is : VALID" in (summary / "mlperf_log_summary.txt").read_text()


@pytest.mark.slow
def test_server_records_every_trial_and_the_highest_valid_qps(run_dir):
    m = serve_records(run_dir)[("eager", "server")]["metrics"]
    trials = m["server_trials"]
    assert m["latency_bound_ms"] == 200.0 and m["max_wait_ms"] == 2.0
    assert trials and all((run_dir / t["log_dir"]).is_dir() for t in trials)
    valid = [t["target_qps"] for t in trials if t["valid"]]
    assert m["scenario_value"] == m["served_qps_at_bound"] == max(valid)
    for t in trials:
        assert t["queries"] >= 500 and 1 <= t["mean_batch"] <= 16
        assert t["valid"] == (not t["reasons"])
    assert m["scenario_result"] == f"{max(valid):.1f} QPS at p99 <= 200 ms"


@pytest.mark.slow
def test_a_runtime_without_a_serving_path_is_unsupported(run_dir):
    for scenario in ("single-stream", "server", "offline"):
        rec = serve_records(run_dir)[("noserve", scenario)]
        assert rec["status"] == "unsupported"
        assert rec["reason"] == "runtime noserve has no serving path (any batch size from 1)"


@pytest.mark.slow
def test_report_and_compare_of_serve_cells(run_dir, tmp_path, capsys):
    assert main(["report", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "report.md").read_text()
    for title in ("Server: highest QPS", "Single-stream: one sentence", "Offline: all samples"):
        assert title in page
    # the best cell is named among all the scenario's cells: eager, beside the noserve cell
    assert "- single-stream: lowest p90 latency: eager, " in page
    assert (tmp_path / "rep" / "figures" / "serve_latency_vs_load.png").is_file()
    df = pd.read_csv(tmp_path / "rep" / "summary.csv")
    serve = df[df["workload"] == "serve"]
    assert sorted(serve["scenario"].dropna()) == sorted(["offline", "server", "single-stream"] * 2)
    # NEW serves half the QPS at the bound: compared by scenario, a regression
    slower = tmp_path / "slower"
    shutil.copytree(run_dir, slower, ignore=shutil.ignore_patterns("loadgen", "checkpoint"))
    recs = records(slower)
    for rec in recs:
        if rec["spec"].get("scenario") == "server" and rec["status"] == "ok":
            rec["metrics"]["scenario_value"] /= 2
    (slower / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    capsys.readouterr()
    code = main(["compare", str(run_dir), str(slower), "--fail-on-regression", "10"])
    out = capsys.readouterr().out
    assert code == 1
    assert "0.500× served_qps_at_bound" in out
    assert "REGRESSION serve eager cpu fp32 dynamic b16 s128 server" in out
    assert "single-stream slower: 1.000× p90_latency_ms" in out


@pytest.mark.slow
def test_a_hung_sut_ends_as_timeout(run_dir, serve_faults):
    """The session hangs while answering LoadGen's queries (the server's batching thread),
    LoadGen waiting for the answers; the cell timeout kills the cell process."""
    from accelbench.config.job import CellJob
    from accelbench.runner.child import cell_main
    from accelbench.runner.isolate import run_isolated
    from accelbench.runner.matrix import load_run_file

    config, _ = load_run_file(run_dir)
    cell = cell_for(config, "serve", "servehang", "cpu", "fp32", "dynamic", scenario="server")
    outcome = run_isolated(cell_main, (CellJob(cell, config, run_dir),), 35)
    assert outcome.status == "timeout", outcome
    pid_file = serve_faults / "serve-hang.pid"
    assert pid_file.is_file(), "the cell timed out before LoadGen ran: raise the timeout"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid)


def test_accelbench_list_shows_which_runtimes_serve(serve_faults):
    from accelbench.backends.capabilities import capability_rows

    rows = {
        (r["runtime"], r["precision"]): r
        for r in capability_rows()
        if r["workload"] == "serve" and r["device"] == "cpu"
    }
    assert rows[("eager", "fp32")]["ok"] and rows[("ort", "int8")]["ok"]
    assert not rows[("noserve", "fp32")]["ok"]
    assert rows[("noserve", "fp32")]["reason"] == "no serving path (any batch size from 1)"
