"""--repeats: each cell in several fresh processes, interleaved; training repeats are seeds and
training F1 is held to the fp32 reference across them; resume counts repeats."""

import json
from pathlib import Path

import pytest

from accelbench.cli import main
from accelbench.config.job import CellJob, Role
from accelbench.config.specs import RunConfig
from accelbench.runner.plan import plan_cells
from conftest import NO_CEILINGS
from helpers import read_records


def test_repeats_are_interleaved_rounds_led_by_the_reference():
    config = RunConfig(precisions=("fp32", "bf16"), workloads="train", repeats=3)
    plan = [(p.cell.precision, p.role, p.repeat) for p in plan_cells(config)]
    one_round = [("fp32", Role.REFERENCE), ("bf16", Role.CELL)]
    assert plan == [(*c, r) for r in range(3) for c in one_round]


def test_a_repeat_is_a_seed_and_only_the_first_reference_writes():
    cell = plan_cells(RunConfig(workloads="train", precisions="fp32"))[0].cell
    jobs = [CellJob(cell, RunConfig(), Path("r"), Role.REFERENCE, k) for k in range(3)]
    assert [j.seed for j in jobs] == [42, 43, 44]
    assert [j.writes_reference for j in jobs] == [True, False, False]
    assert [j.log_path.name for j in jobs] == [
        f"{cell.cell_id}.log",
        f"{cell.cell_id}-r1.log",
        f"{cell.cell_id}-r2.log",
    ]


@pytest.mark.slow
def test_training_f1_across_seeds_and_resume(
    tiny_model_dir, conll_dir, tmp_path, plugin_runtimes, capsys
):
    plugin_runtimes(
        frozenhead="degraded_runtime:FrozenHeadBackend", twin="degraded_runtime:TwinBackend"
    )
    out = tmp_path / "seeds"
    argv = ["run", "--model", str(tiny_model_dir), "--dataset", f"conll:{conll_dir}"]
    argv += ["--runtimes", "eager,frozenhead,twin", "--workloads", "train"]
    argv += ["--precisions", "fp32", "--repeats", "3", "--out", str(out), *NO_CEILINGS]
    # the reference memorises the two training sentences, which are also the test set
    argv += ["--train-steps", "40", "--lr", "5e-3", "--batch-size", "4", "--threads", "1"]
    argv += ["--target-f1", "ref:0.9", "--eval-every", "10"]
    argv += ["--in-process"]  # what is tested is the matrix, not the isolation
    assert main(argv) == 0
    recs = read_records(out)
    order = [(r["spec"]["runtime"], r["repeat"]) for r in recs]
    assert order == [(rt, k) for k in range(3) for rt in ("eager", "frozenhead", "twin")]
    by = {(r["spec"]["runtime"], r["repeat"]): r for r in recs}
    losses = [by[("eager", k)]["metrics"]["final_loss"] for k in range(3)]
    assert len(set(losses)) == 3, "each repeat trains with its own seed"
    for k in range(3):  # the twin trains exactly like the reference, seed for seed
        assert by[("twin", k)]["metrics"]["final_loss"] == pytest.approx(losses[k])
    assert all("f1_verdict" not in by[(rt, k)]["metrics"] for rt in ("twin",) for k in (0, 1))

    bad = by[("frozenhead", 2)]
    assert bad["status"] == "numeric_fail", bad["metrics"].get("f1_verdict")
    assert "over 3 seeds" in bad["reason"] and "fp32 reference" in bad["reason"]
    assert bad["metrics"]["delta_f1_seeds"]["high"] < 0
    twin = by[("twin", 2)]["metrics"]
    assert by[("twin", 2)]["status"] == "ok"
    assert twin["f1_verdict"].startswith("held: +0.00 points over 3 seeds")
    assert twin["f1_seeds"]["n"] == 3
    assert by[("eager", 2)]["metrics"]["f1_verdict"].startswith("the fp32 reference")

    # time to quality: dev F1 every 10 steps, the target 90 % of the reference's final dev F1
    ref = by[("eager", 0)]["metrics"]
    assert [p[0] for p in ref["dev_f1_curve"]] == [10, 20, 30, 40]
    # sentences: the two training sentences fill every step (batch 4)
    assert [p[1] for p in ref["dev_f1_curve"]] == [20, 40, 60, 80]
    train_s = [p[2] for p in ref["dev_f1_curve"]]
    assert train_s == sorted(train_s) and all(p[3] >= p[2] for p in ref["dev_f1_curve"])
    assert ref["target_f1"] == pytest.approx(0.9 * ref["dev_f1"])
    # the first point of the curve at or above the target
    reached = [p[0] for p in ref["dev_f1_curve"] if p[4] >= ref["target_f1"]]
    assert ref["target_reached"] is True and ref["steps_to_target"] == reached[0]
    assert ref["time_to_target_train_s"] == ref["dev_f1_curve"][ref["steps_to_target"] // 10 - 1][2]
    assert ref["undertrained"] is False
    frozen = by[("frozenhead", 0)]["metrics"]
    assert frozen["target_f1"] == pytest.approx(ref["target_f1"])  # read from the reference
    assert frozen["target_reached"] is False and frozen["steps_to_target"] is None
    assert frozen["target_note"].startswith("not reached: best dev F1")
    # it learnt nothing: flagged for a dev F1 near zero, not as still rising
    assert frozen["undertrained"] is True
    assert "near zero" in frozen["undertrained_reason"]
    assert "still rising" not in frozen["undertrained_reason"]

    assert main(["report", str(out)]) == 0
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 3  # one row per cell, not per repeat
    md = (out / "report.md").read_text()
    assert "| runs |" in md and " ±" in md  # means of 3 processes with their intervals
    assert "## Time to target F1" in md

    # resume: drop the last round's last two records, as a killed run would leave it
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[:-2]))
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("already recorded") == 7
    again = read_records(out)
    assert sorted((r["cell_id"], r["repeat"]) for r in again) == sorted(
        (r["cell_id"], r["repeat"]) for r in recs
    )
    assert {(r["spec"]["runtime"], r["repeat"]): r["status"] for r in again}[
        ("frozenhead", 2)
    ] == "numeric_fail"
