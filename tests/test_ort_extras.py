"""ONNX Runtime is an extra (`ort`, `ort-gpu`): without it the ort cells are `unsupported` and
name the extra to install; the fingerprint says which ORT distribution and providers are there."""

import sys
from importlib import metadata
from pathlib import Path

import pytest

from accelbench.config.specs import RunConfig, expand
from accelbench.measure.env import fingerprint, ort_distributions
from accelbench.runner.plan import probe

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["onnxruntime", "onnx"])
@pytest.mark.parametrize(
    "device,extra", [("cpu", "accelbench[ort]"), ("cuda", "accelbench[ort-gpu]")]
)
def test_missing_ort_makes_ort_cells_unsupported_naming_the_extra(
    monkeypatch, module, device, extra
):
    monkeypatch.setitem(sys.modules, module, None)  # `import onnxruntime` raises ImportError
    config = RunConfig(
        workloads="infer", runtimes=("ort", "ort-fused"), devices=device, precisions="fp32"
    )
    cells = expand(config)
    assert {c.runtime for c in cells} == {"ort", "ort-fused"}
    for cell in cells:
        ok, reason = probe(cell)
        assert not ok
        assert f"{module} is not installed" in reason and f"pip install '{extra}'" in reason


def test_missing_ort_leaves_eager_cells_alone(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (cell,) = expand(RunConfig(workloads="infer", precisions="fp32"))
    assert probe(cell) == (True, "")


def test_fingerprint_names_the_ort_distribution_and_providers():
    import onnxruntime

    found = ort_distributions()
    assert found["onnxruntime"] == metadata.version("onnxruntime")
    assert "onnxruntime-gpu" not in found  # the test extra installs the CPU build
    info = fingerprint.__wrapped__()
    assert info["onnxruntime"] == onnxruntime.__version__
    assert info["onnxruntime_distributions"] == found
    assert "CPUExecutionProvider" in info["onnxruntime_providers"]


def test_fingerprint_without_ort(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    info = fingerprint.__wrapped__()
    assert info["onnxruntime"] is None and info["onnxruntime_providers"] == []


def test_ort_is_an_extra_in_the_package_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]}
    assert not {"onnxruntime", "onnxruntime-gpu", "onnx"} & names
    extras = project["optional-dependencies"]
    assert {d.split(">")[0] for d in extras["ort"]} == {"onnxruntime", "onnx"}
    assert {d.split(">")[0] for d in extras["ort-gpu"]} == {"onnxruntime-gpu", "onnx"}
    assert {"onnxruntime", "onnx"} <= {d.split(">")[0] for d in extras["test"]}
