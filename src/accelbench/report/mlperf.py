"""An outside anchor for serve cells on a GPU that MLPerf Inference has published BERT-99 for.

The published figures (mlperf_bert_reference.json, package data; bench/ links to it) are
TensorRT on SQuAD in the closed division; accelbench's serve cells are PyTorch/ONNX Runtime on
NER token classification. The section puts the best offline and server figure of the run on a
matching GPU beside the published per-GPU figure, says which model and length the run had, and
draws no ratio: it is a sense of scale, not a like-for-like claim.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from accelbench.report.doc import Block, Cell, Heading, Para, Table
from accelbench.report.labels import cell_labels
from accelbench.report.tables import num

REFERENCE_FILE = Path(__file__).with_name("mlperf_bert_reference.json")
SCENARIOS = {"offline": "offline_samples_per_s", "server": "server_qps"}
UNITS = {"offline": "samples/s", "server": "QPS at the p99 bound"}


def load_reference(path: Path = REFERENCE_FILE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def matching(reference: dict, gpu: str | None) -> list[dict]:
    """The published results whose GPU this device name is (e.g. "NVIDIA H100 80GB HBM3")."""
    if not gpu:
        return []
    low = gpu.lower()
    return [r for r in reference["results"] if any(n.lower() in low for n in r["gpu_names"])]


def anchor_rows(df: pd.DataFrame, records: Sequence[dict], reference: dict) -> list[tuple]:
    """(published result, scenario, best run row's index) for each result a run GPU matches."""
    serve = df[(df["workload"] == "serve") & (df["device"] == "cuda") & (df["status"] == "ok")]
    serve = serve[serve["scenario"].isin(tuple(SCENARIOS)) & serve["scenario_value"].notna()]
    out = []
    for result in reference["results"]:
        rows = [i for i in serve.index if result in matching(reference, records[i]["env"]["gpu"])]
        for scenario, key in SCENARIOS.items():
            part = serve.loc[rows][serve.loc[rows, "scenario"] == scenario]
            if result[key] is not None and not part.empty:
                out.append((result, scenario, part["scenario_value"].astype(float).idxmax()))
    return out


def mlperf_blocks(
    df: pd.DataFrame, records: Sequence[dict], reference: dict | None = None
) -> list[Block]:
    """The anchor section, or nothing when no serve cell ran on a GPU with published figures."""
    reference = reference or load_reference()
    found = anchor_rows(df, records, reference)
    if not found:
        return []
    names = cell_labels(df[df["workload"] == "serve"], exclude=("scenario",))
    rows = []
    for result, scenario, i in found:
        published = result[SCENARIOS[scenario]] / result["gpus"]
        row = df.loc[i]
        rows.append(
            (
                Cell(f"{result['round']} {result['system']}", note=result["source"]),
                Cell(scenario),
                Cell(num(published), numeric=True),
                Cell(f"{names.loc[i]} ({row['model']}, seq {row['seq_len']})"),
                Cell(num(row["scenario_value"]), numeric=True),
                Cell(UNITS[scenario]),
            )
        )
    return [
        Heading("Outside anchor: MLPerf Inference BERT-99 (not like-for-like)"),
        Para(
            f"Published MLPerf Inference {reference['division']}-division figures for "
            f"{reference['benchmark']} ({reference['model']}, {reference['dataset']}, seq "
            f"{reference['seq_len']}, {reference['software']}), per GPU, beside this run's best "
            "cell of the scenario on the same GPU model. This run is PyTorch/ONNX Runtime token "
            "classification under accelbench's LoadGen settings, not an MLPerf submission: "
            "read the pair as a sense of scale, not as a ratio.",
            tone="warn",
        ),
        Table(
            (
                "MLPerf result",
                "scenario",
                "published per GPU",
                "this run's best cell",
                "value",
                "unit",
            ),
            tuple(rows),
            "MLPerf BERT-99 (TensorRT, SQuAD, closed division) beside accelbench serve cells",
        ),
    ]
