"""ONNX Runtime sessions: a dedicated CUDA stream ordered against torch's, out-of-memory from
ORT's arena, and a fresh session for every batch-size trial."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from accelbench.backends.ort import OrtBackend, ordered, provider_options
from accelbench.config.specs import RunConfig, cell_for
from accelbench.data.encode import synthetic_batch
from accelbench.runner.child import failure
from accelbench.workloads import autobatch
from accelbench.workloads.infer import _search_batch

ORT_OOM = (
    "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
    "MatMul node. Name:'/bert/encoder/layer.0/attention/self/query/MatMul' Status Message: "
    "/onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:376 void* onnxruntime::BFCArena::"
    "AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn)"
    " Failed to allocate memory for requested buffer of size 4294967296"
)


def test_ort_is_given_a_dedicated_stream_never_the_default_one():
    with pytest.raises(ValueError, match="non-default"):
        provider_options("cuda", "fp32", 0, SimpleNamespace(cuda_stream=0))
    options = provider_options("cuda", "tf32", 1, SimpleNamespace(cuda_stream=0x7F00))
    assert options == {"device_id": "1", "use_tf32": "1", "user_compute_stream": str(0x7F00)}
    assert provider_options("cpu", "fp32", 0, None) == {}


def test_ort_work_is_ordered_after_the_copies_and_before_the_stop_event():
    log = []

    class Stream:
        def __init__(self, name: str) -> None:
            self.name = name

        def wait_stream(self, other: Stream) -> None:
            log.append(f"{self.name} waits for {other.name}")

    ordered(lambda: log.append("ort runs"), Stream("ort"), Stream("torch"))
    assert log == ["ort waits for torch", "ort runs", "torch waits for ort"]


def test_ort_arena_exhaustion_is_out_of_memory():
    assert autobatch.is_oom(RuntimeError(ORT_OOM))
    assert autobatch.is_oom(RuntimeError("CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED"))
    assert not autobatch.is_oom(RuntimeError("[ONNXRuntimeError] : 1 : FAIL : bad input"))
    assert failure(RuntimeError(ORT_OOM))["status"] == "oom"  # what --oom-backoff acts on


class FakeSession:
    warm_calls = 1
    compiling_calls = 0

    def __init__(self, batch: int, log: list) -> None:
        self.batch, self.log = batch, log

    def logits(self, batch) -> None:
        self.log.append((id(self), self.batch))
        if self.batch >= 32:
            raise RuntimeError(ORT_OOM)


class FakeBackend:
    def __init__(self) -> None:
        self.log: list = []
        self.sessions: list[FakeSession] = []

    def prepare_infer(self, model, cell, example) -> FakeSession:
        self.sessions.append(FakeSession(cell.batch_size, self.log))
        return self.sessions[-1]


def test_every_batch_trial_runs_on_a_fresh_session(monkeypatch):
    # sentences per pass as the rate: the search's path is fixed, whatever the machine does
    monkeypatch.setattr(autobatch, "rate", lambda once, device: float(once()))
    cell = cell_for(RunConfig(batch_sizes="auto"), "infer", "ort", "cpu", "fp32", "pad-max")
    backend = FakeBackend()

    def make(c):
        return [synthetic_batch(c.batch_size, 8, 30522, 3, seed=0)]

    found = _search_batch(backend, None, make, cell, cap=1000)
    assert [t.status for t in found.trials] == ["ok", "ok", "oom"]  # 8, 16, 32
    assert found.chosen == 16
    assert [s.batch for s in backend.sessions] == [8, 16, 32]
    for session in backend.sessions:  # each session served its own trial's batch only
        assert {b for sid, b in backend.log if sid == id(session)} == {session.batch}


@pytest.mark.slow  # an ONNX export of the tiny BERT
def test_ort_trials_rebuild_the_session_not_the_graph(tiny_model_dir):
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(tiny_model_dir, num_labels=3)
    backend = OrtBackend()
    cells = [
        cell_for(RunConfig(), "infer", "ort", "cpu", "fp32", "pad-max", batch_size=b)
        for b in (4, 8)
    ]
    first, second = (
        backend.prepare_infer(model, c, synthetic_batch(c.batch_size, 16, 30522, 3, 0))
        for c in cells
    )
    assert first.session is not second.session
    assert first.graph_facts is second.graph_facts  # exported once
    out = second.logits(synthetic_batch(8, 16, 30522, 3, seed=1))
    assert out.shape == (8, 16, 3) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "device,precision,ok,reason",
    [
        ("cuda", "int8", False, "ort on cuda runs fp32, tf32, fp16, not int8"),
        ("cpu", "bf16", False, "ort on cpu runs fp32, int8, not bf16"),
        ("cuda", "fp16", True, ""),
        ("cpu", "int8", True, ""),
    ],
)
def test_ort_precisions_per_device_with_both_providers_present(
    monkeypatch, device, precision, ok, reason
):
    """A build with the CUDA provider and a torch that sees a GPU (both faked): what remains
    is the precision table."""
    import onnxruntime

    from accelbench.backends.ort import ort_capability

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: providers)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ort_capability("infer", device, precision) == (ok, reason)


def test_ort_without_its_cuda_provider_names_the_build(monkeypatch):
    import onnxruntime

    from accelbench.backends.ort import ort_capability

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    ok, reason = ort_capability("infer", "cuda", "fp32")
    assert not ok
    assert reason == (
        f"the installed onnxruntime {onnxruntime.__version__} build has no "
        "CUDAExecutionProvider (it offers CPUExecutionProvider)"
    )
    assert ort_capability("train", "cpu", "fp32")[0] is False
