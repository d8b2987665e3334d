"""The H200 reference figures ship with the project (bench/h200_reference.json), each keyed to
a cell accelbench can run, and bench/gpu_table.py reads them from there."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from accelbench.config.specs import COMPILE_MODES, PRECISIONS, RunConfig, cell_for

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _gpu_table():
    spec = importlib.util.spec_from_file_location("gpu_table", BENCH / "gpu_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_cells_are_runnable_cells_and_the_table_reads_them():
    data = json.loads((BENCH / "h200_reference.json").read_text())
    assert "not accelbench's own measurements" in data["about"]
    for c in data["cells"]:
        mode = c["compile_mode"]
        assert c["precision"] in PRECISIONS
        assert mode is None if c["runtime"] == "eager" else mode in COMPILE_MODES
        config = RunConfig(
            model="bert-base",
            synthetic=True,
            runtimes=(c["runtime"],),
            compile_mode=mode or "default",
        )
        cell = cell_for(config, c["workload"], c["runtime"], "cuda", c["precision"], "pad-max")
        assert cell.compile_mode == mode
    reference = _gpu_table().REFERENCE
    assert len(reference) == len(data["cells"])
    assert reference[("infer", "compile", "max-autotune-no-cudagraphs", "bf16-weights", 512)] == (
        20070,
        None,
    )
    assert reference[("infer", "compile", "reduce-overhead", "bf16", 1)] == (None, 0.59)
