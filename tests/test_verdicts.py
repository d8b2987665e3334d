"""Verdicts that cannot mislead: the F1 gate (points or MLPerf's percentage, never against an
undertrained reference), headlines over unstable or losing cells, serving settings that could
never be VALID, a ceiling below what a cell achieved, a batch larger than the data. Unit tests:
stored records and pure functions, no model, no cell process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from accelbench.cli import main
from accelbench.config.specs import RunConfig, accuracy_target
from accelbench.errors import UserError
from accelbench.measure.flops import against_ceiling
from accelbench.report.frame import load_run, summary_table
from accelbench.report.markdown import to_markdown
from accelbench.report.render import build
from accelbench.workloads.metrics import batch_ran
from accelbench.workloads.reference import F1_FLOOR, f1_gate

DATA = Path(__file__).parent / "data" / "results.jsonl"
TRAINED = {"f1": 0.40, "f1_meaningful": True}


def test_accuracy_target_is_a_percentage_of_the_reference():
    assert accuracy_target("99%") == pytest.approx(0.99)
    assert accuracy_target("99.9%") == pytest.approx(0.999)
    for bad in ("99", "0%", "101%", "high%"):
        with pytest.raises(UserError, match="--accuracy-target must be a percentage"):
            RunConfig(accuracy_target=bad)


def test_gate_in_points_and_in_mlperf_percent():
    points = RunConfig(f1_tolerance=1.0)
    gate, failed = f1_gate(0.395, TRAINED, points)  # 0.5 points below: held
    assert failed is None and gate["f1_gate"].startswith("held")
    assert gate["f1_required"] == pytest.approx(0.39) and gate["accuracy_target"] is None
    # BERT-99: 99 % of 0.40 = 0.396, so the same cell fails; BERT-99.9 asks 0.3996
    gate, failed = f1_gate(0.395, TRAINED, RunConfig(accuracy_target="99%"))
    assert gate["f1_gate"] == "numeric_fail" and gate["accuracy_target"] == "99%"
    assert gate["f1_required"] == pytest.approx(0.396)
    assert "below 99% of the fp32 eager reference F1 0.4000 = 0.3960" in failed
    gate, failed = f1_gate(0.3997, TRAINED, RunConfig(accuracy_target="99.9%"))
    assert failed is None and gate["f1_required"] == pytest.approx(0.3996)


def test_an_undertrained_reference_checks_nothing():
    weak = {"f1": 0.0, "f1_meaningful": True}
    gate, failed = f1_gate(0.0, weak, RunConfig())
    assert failed is None
    assert gate["f1_gate"] == "not checked"
    assert f"below the floor {F1_FLOOR:g}" in gate["reference_undertrained"]
    # a random-init model is not meaningful, not undertrained: its gate still applies
    gate, failed = f1_gate(0.0, {"f1": 0.2, "f1_meaningful": False}, RunConfig())
    assert gate["f1_gate"] == "numeric_fail"
    assert failed == (
        "entity F1 0.0000 is more than 1 point(s) below the fp32 eager reference 0.2000"
    )


def test_serving_settings_that_can_never_be_valid_exit_2(capsys):
    code = main(["run", "--workloads", "serve", "--serve-min-queries", "50", "--plan"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "--serve-min-queries 50 can never give a VALID serve cell" in err
    assert "at least 64" in err
    RunConfig(workloads=("serve",), serve_min_queries=64)  # the minimum itself is accepted


def test_a_ceiling_below_the_cell_is_dropped_with_a_note():
    kept = against_ceiling(0.5, 2.0, "384^3 float32 matmul measured by this run")
    assert kept["mfu_vs_ceiling"] == pytest.approx(0.25)
    dropped = against_ceiling(0.013, 0.0049, "384^3 float32 matmul measured by this run")
    assert dropped["mfu_vs_ceiling"] is None
    assert "a failed ceiling measurement, not used" in dropped["ceiling_note"]
    assert against_ceiling(1.0, None, None)["mfu_vs_ceiling"] is None


def test_the_batch_that_ran_is_recorded_and_a_capped_cell_flagged():
    assert batch_ran(16, [(16, 40), (16, 38), (2, 20)]) == {
        "batch_size_ran": 16,
        "batch_capped": None,
    }
    capped = batch_ran(512, [(50, 64)] * 3)
    assert capped["batch_size_ran"] == 50
    assert "batch 512 asked for, but the data held 50 sentences" in capped["batch_capped"]


def _run(tmp_path: Path, edit) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    records = [json.loads(line) for line in DATA.read_text().splitlines()]
    for rec in records:
        edit(rec)
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def _overview(run: Path) -> str:
    blocks, _ = build([load_run(run)])
    end = next(i for i, b in enumerate(blocks[1:], 1) if type(b).__name__ == "Heading")
    return to_markdown(blocks[:end])


def _steady(rec: dict) -> None:
    if rec["metrics"].get("stability"):
        rec["metrics"]["stability"] = {"stable": True, "reasons": []}


def test_headline_over_an_unstable_baseline_is_unsettled(tmp_path):
    # the stored run: infer bf16 b16 is 4.6x its fp32 baseline, whose CV was 135.7 %
    text = _overview(_run(tmp_path, lambda rec: None))
    line = next(x for x in text.splitlines() if x.startswith("- Inference: largest speedup"))
    assert "unsettled (this cell: CV 91.7% > 5%; its fp32 eager baseline: CV 135.7% > 5%" in line
    assert "95% CI" not in line and "--repeats 3" in line


def test_a_settled_headline_keeps_its_interval(tmp_path):
    text = _overview(_run(tmp_path, _steady))
    line = next(x for x in text.splitlines() if x.startswith("- Inference: largest speedup"))
    assert "95% CI" in line and "unsettled" not in line


def test_when_nothing_beats_fp32_the_overview_says_so(tmp_path):
    def bf16_slower(rec: dict) -> None:
        _steady(rec)
        if rec["spec"]["precision"] == "bf16" and rec["samples"]:
            rec["samples"] = {k: [s * 20 for s in v] for k, v in rec["samples"].items()}

    text = _overview(_run(tmp_path, bf16_slower))
    assert "- Training (fine-tuning): no cell beats fp32 eager (the closest: " in text
    assert "- Inference: no cell beats fp32 eager" in text
    assert "largest speedup" not in text and "fp32, 1.00×" not in text


def test_an_undertrained_reference_comes_first_in_report_and_console(tmp_path):
    weak = (
        "the fp32 reference's entity F1 0.0000 is below the floor 0.05: it learnt next to "
        "nothing, so no cell's F1 was checked against it; give more --train-steps or a "
        "trained --checkpoint"
    )

    def edit(rec: dict) -> None:
        if rec["role"] == "reference":
            rec["metrics"]["reference_undertrained"] = weak
        elif rec["spec"]["workload"] == "infer" and rec["status"] == "ok":
            rec["metrics"].update(f1_gate="not checked", reference_undertrained=weak)

    run = _run(tmp_path, edit)
    text = _overview(run)
    first = text.split("## Overview\n\n")[1].splitlines()[0]
    assert first.startswith("> **Reference undertrained. run: the fp32 reference's entity F1")
    assert summary_table(load_run(run).records).splitlines()[-1] == (
        f"WARNING: reference undertrained: {weak}"
    )
    assert main(["report", str(run)]) == 0
    page = (run / "report.md").read_text()
    assert "not checked: the fp32 reference's entity F1 0.0000" in page


def test_serving_never_headlines_an_invalid_run(tmp_path):
    import pandas as pd

    from accelbench.report.serving import _best

    rows = pd.DataFrame(
        {
            "scenario": ["single-stream", "single-stream"],
            "scenario_value": [3.0, 5.0],
            "status": ["ok", "ok"],
            "loadgen_valid": [False, True],
            "runtime": ["ort", "eager"],
            "precision": ["fp32", "fp32"],
            "compile_mode": [None, None],
            "workload": ["serve", "serve"],
            "device": ["cpu", "cpu"],
        }
    )
    (line,) = _best(rows)
    assert line.startswith("single-stream: lowest p90 latency: eager") and "5.00 ms" in line
    (line,) = _best(rows.assign(loadgen_valid=[False, False]))
    assert line == "single-stream: no cell has a VALID LoadGen run: nothing to name"


def test_a_checkpoint_run_shows_the_checkpoint_not_the_defaults(tmp_path):
    ckpt = {
        "path": "/data/ckpt",
        "model_type": "bert",
        "base_model": "bundled",
        "dataset": "bundled",
        "trained": {
            "label": "train eager cpu fp32 dynamic b16",
            "train_steps": 600,
            "epochs": 3.5,
            "lr": 3e-4,
            "seed": 7,
            "run_dir": "/runs/a",
        },
        "test_f1": 0.41,
        "dev_f1": 0.39,
    }

    def edit(rec: dict) -> None:
        if rec["spec"]["workload"] == "infer":
            rec["details"]["checkpoint"] = ckpt

    run = _run(tmp_path, edit)
    (run / "run.json").write_text(json.dumps({"config": {"checkpoint": "/data/ckpt"}}))
    shutil.rmtree(run / "figures", ignore_errors=True)
    assert main(["report", str(run)]) == 0
    page = (run / "report.md").read_text()
    assert "| model | bert, fine-tuned from bundled |" in page
    assert "| checkpoint | /data/ckpt |" in page
    assert (
        "| checkpoint trained | train eager cpu fp32 dynamic b16: 600 steps (3.50 epochs), "
        "lr 0.0003, seed 7, on bundled; test F1 0.4100; run /runs/a |"
    ) in page
    assert "| train_steps | – (--checkpoint: not trained in this run) |" in page


def test_training_cells_are_not_checked_against_an_undertrained_reference():
    from accelbench.config.job import Role
    from accelbench.config.specs import expand
    from accelbench.runner.matrix import add_seed_verdict
    from accelbench.runner.plan import Planned

    config = RunConfig(workloads=("train",), precisions=("fp32", "bf16"))
    ref_cell, bf16 = expand(config)
    weak = "the fp32 reference's entity F1 0.0000 is below the floor 0.05: ..."
    reference = {
        "cell_id": ref_cell.cell_id,
        "role": Role.REFERENCE.value,
        "status": "ok",
        "spec": {"workload": "train"},
        "metrics": {"f1": 0.0, "f1_meaningful": True, "reference_undertrained": weak},
    }
    record = {
        "cell_id": bf16.cell_id,
        "status": "ok",
        "metrics": {"f1": 0.0, "f1_meaningful": True},
    }
    add_seed_verdict(record, Planned(bf16), config, {(ref_cell.cell_id, 0): reference})
    assert record["status"] == "ok"
    assert record["metrics"]["f1_verdict"] == "not checked"
    assert record["metrics"]["reference_undertrained"] == weak
