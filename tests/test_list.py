"""`accelbench list`: filters by column, --runnable, --json."""

import json

from accelbench.cli import main
from accelbench.config.specs import PRECISIONS


def listed(capsys, *argv):
    assert main(["list", *argv]) == 0
    return capsys.readouterr().out


def test_json_rows_filtered_by_column(capsys):
    rows = json.loads(listed(capsys, "--json", "--runtime", "ort", "--precision", "int8,fp32"))
    assert rows
    assert {r["runtime"] for r in rows} == {"ort"}
    assert {r["precision"] for r in rows} == {"int8", "fp32"}
    assert {r["device"] for r in rows} == {"cpu", "cuda"}
    assert set(rows[0]) == {"runtime", "device", "precision", "workload", "ok", "reason"}
    train = [r for r in rows if r["workload"] == "train"]
    assert train and not any(r["ok"] for r in train)


def test_runnable_keeps_only_what_runs_here(capsys):
    every = json.loads(listed(capsys, "--json", "--device", "cpu", "--workload", "infer"))
    runnable = json.loads(
        listed(capsys, "--json", "--device", "cpu", "--workload", "infer", "--runnable")
    )
    assert runnable == [r for r in every if r["ok"]]
    assert {r["workload"] for r in every} == {"infer"}
    assert any(not r["ok"] for r in every)  # e.g. eager int8


def test_table_filtered_and_empty(capsys):
    lines = listed(capsys, "--runtime", "eager", "--device", "cpu", "--workload", "train")
    lines = lines.strip().splitlines()
    assert lines[0].split() == ["runtime", "device", "precision", "workload", "available"]
    assert all(line.split()[:2] == ["eager", "cpu"] for line in lines[1:])
    assert len(lines) == 1 + len(PRECISIONS)  # one row per precision
    none = listed(capsys, "--runtime", "ort", "--workload", "train", "--runnable")
    assert none.strip() == "no runtime x device x precision x workload matches"


def test_unknown_filter_value(capsys):
    assert main(["list", "--runtime", "trt"]) == 2
    err = capsys.readouterr().err
    assert "unknown runtime 'trt': choose from eager" in err
