"""Serving meets new (rows, width) shapes during timed queries, so a compile mode that records
CUDA graphs per shape is refused for serve cells, with the reason and the modes that serve."""

from __future__ import annotations

import pytest

from accelbench.backends.base import Capability
from accelbench.backends.compile import CompileBackend
from accelbench.config.specs import RunConfig, cell_for
from accelbench.runner.plan import probe


@pytest.mark.parametrize(
    "mode,device,refused",
    [
        ("reduce-overhead", "cuda", True),
        ("max-autotune", "cuda", True),
        ("default", "cuda", False),
        ("max-autotune-no-cudagraphs", "cuda", False),
        ("reduce-overhead", "cpu", False),  # no CUDA graphs off CUDA
    ],
)
def test_serving_refuses_modes_that_record_cuda_graphs(monkeypatch, mode, device, refused):
    monkeypatch.setattr(CompileBackend, "probe", lambda self, *a: Capability(True, ""))
    config = RunConfig(runtimes=("compile",), compile_mode=mode, workloads=("infer", "serve"))
    serve = cell_for(config, "serve", "compile", device, "fp32", "dynamic")
    ok, reason = probe(serve)
    assert ok is not refused
    if refused:
        assert f"compile mode {mode} records a CUDA graph" in reason
        assert "--compile-mode default" in reason
    assert probe(cell_for(config, "infer", "compile", device, "fp32", "dynamic")) == (True, "")
