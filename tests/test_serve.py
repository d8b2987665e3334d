"""Serve cells end to end through the CLI on the tiny BERT: the three LoadGen scenarios in one
run, their records, logs, report and comparison; a runtime that cannot serve; a hung SUT."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from accelbench.cli import main
from accelbench.config.specs import cell_for
from conftest import install_plugins
from helpers import read_records, tiny_argv, wait_gone

# one torch thread: on a shared 2-core machine a second OpenMP thread waiting for a core
# stalls whole calls (p90 over 100 ms for the tiny model)
SERVE = ["--serve-min-time", "0.5", "--serve-min-queries", "500", "--threads", "1"]
SERVE += ["--latency-bound-ms", "200"]


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
def run_dir(tiny_model_dir, tiny_checkpoint, tmp_path_factory, serve_faults) -> Path:
    out = tmp_path_factory.mktemp("serve") / "r"
    argv = tiny_argv(tiny_model_dir, out, "--checkpoint", str(tiny_checkpoint), *SERVE)
    argv += ["--workloads", "serve", "--runtimes", "eager,noserve", "--precisions", "fp32"]
    assert main(argv) == 0
    return out


def serve_records(run_dir: Path) -> dict[tuple[str, str], dict]:
    return {
        (r["spec"]["runtime"], r["spec"]["scenario"]): r
        for r in read_records(run_dir)
        if r["spec"]["workload"] == "serve"
    }


@pytest.mark.slow
def test_each_scenario_serves_with_loadgen_logs_and_the_reference_f1(run_dir):
    recs = read_records(run_dir)
    # over --checkpoint the reference is an inference pass over it (no fine-tune)
    assert recs[0]["role"] == "reference" and recs[0]["status"] == "ok"
    assert recs[0]["spec"]["workload"] == "infer"
    reference_f1 = recs[0]["metrics"]["f1"]
    by = serve_records(run_dir)
    assert len(by) == 6
    for scenario in ("single-stream", "server", "offline"):
        rec = by[("eager", scenario)]
        assert rec["status"] == "ok", rec["reason"]
        assert rec["label"].endswith(f" {scenario}")
        m = rec["metrics"]
        assert m["scenario"] == scenario
        # a server cell is VALID where some load met the bound, which depends on how busy
        # the machine is (test_server_records_every_trial... checks either outcome)
        if scenario != "server":
            assert m["loadgen_valid"] is True, m["loadgen_reasons"]
            assert m["scenario_value"] > 0
        assert m["samples_per_s"] > 0
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
    for t in trials:
        assert t["queries"] >= 500 and 1 <= t["mean_batch"] <= 16
        assert t["valid"] == (not t["reasons"])
    valid = [t["target_qps"] for t in trials if t["valid"]]
    assert m["loadgen_valid"] is bool(valid)
    if valid:  # the highest VALID target is the result
        assert m["scenario_value"] == m["served_qps_at_bound"] == max(valid)
        assert m["scenario_result"] == f"{max(valid):.1f} QPS at p99 <= 200 ms"
    else:  # no load met the bound (a machine too busy): no value, and the reasons say why
        assert m["scenario_value"] is None and m["served_qps_at_bound"] is None
        assert m["scenario_result"] == "no VALID QPS at p99 <= 200 ms"
        assert m["loadgen_reasons"]


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
    recs = read_records(slower)
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
    LoadGen waiting for the answers; the cell timeout kills the cell process. The timeout's
    clock starts when the hang does (its pid file), however long start-up took."""
    from accelbench.config.job import CellJob
    from accelbench.runner.child import cell_main
    from accelbench.runner.isolate import run_isolated
    from accelbench.runner.matrix import load_run_file

    config, _ = load_run_file(run_dir)
    cell = cell_for(config, "serve", "servehang", "cpu", "fp32", "dynamic", scenario="server")
    pid_file = serve_faults / "serve-hang.pid"

    def hang_clock() -> float:  # a start-up that never reaches the hang fails by pytest-timeout
        return math.inf if pid_file.exists() else time.monotonic()

    job = CellJob(cell, config, run_dir)
    outcome = run_isolated(cell_main, (job,), 3600, clock=hang_clock)
    assert outcome.status == "timeout", outcome
    assert wait_gone([int(pid_file.read_text())]), "the hung cell process outlived its timeout"


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
