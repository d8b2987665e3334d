"""torch.compile cells: CUDA graphs from Inductor's mode options, the host-compiler probe, the
attention mask of full batches, and (slow, real torch.compile on CPU) no timed training step
that compiles."""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import TokenClassifierOutput

from accelbench.backends import compile as compile_backend
from accelbench.backends.base import Capability
from accelbench.backends.compile import CompiledInfer, CompiledTrain, CompileOptions
from accelbench.backends.eager import TorchInfer, TorchTrain
from accelbench.backends.precision import MODES
from accelbench.config.specs import RunConfig, cell_for
from accelbench.data.encode import Batch, synthetic_batch
from helpers import write_varied_conll


def _options(mode: str, device: str, padding: str = "dynamic") -> CompileOptions:
    config = RunConfig(compile_mode=mode, runtimes=("compile",))
    return CompileOptions.for_cell(cell_for(config, "infer", "compile", device, "bf16", padding))


@pytest.mark.parametrize(
    "mode,device,cudagraphs",
    [
        ("default", "cuda", False),
        ("reduce-overhead", "cuda", True),
        ("max-autotune", "cuda", True),  # max-autotune turns them on too
        ("max-autotune-no-cudagraphs", "cuda", False),
        ("reduce-overhead", "cpu", False),
        ("max-autotune", "cpu", False),
    ],
)
def test_cuda_graphs_follow_the_modes_own_options(mode, device, cudagraphs):
    options = _options(mode, device)
    assert options.cudagraphs is cudagraphs
    assert options.details()["cudagraphs"] is cudagraphs
    assert options.warm_calls == (3 if cudagraphs else 1)
    if device == "cpu" and mode != "default":
        assert "only on CUDA" in options.details()["compile_note"]


def test_cuda_compile_without_a_host_c_compiler_is_unsupported(monkeypatch, tmp_path):
    (tmp_path / "Python.h").write_text("")
    monkeypatch.setattr(compile_backend, "python_include", lambda: tmp_path)
    monkeypatch.setattr(compile_backend, "torch_probe", lambda *a: Capability(True, ""))
    monkeypatch.setattr(compile_backend, "_has_triton", lambda: True)
    monkeypatch.delenv("CC", raising=False)
    found = {"gcc": None, "clang": None}
    monkeypatch.setattr(compile_backend.shutil, "which", lambda name: found.get(name))
    cap = compile_backend.CompileBackend().probe("infer", "cuda", "bf16")
    assert not cap.ok and "C compiler" in cap.reason and "gcc or clang" in cap.reason
    found["clang"] = "/usr/bin/clang"
    assert compile_backend.CompileBackend().probe("infer", "cuda", "bf16").ok
    monkeypatch.setenv("CC", "/opt/nowhere/cc")  # Triton uses $CC when set, nothing else
    assert "/opt/nowhere/cc" in compile_backend.compiler_missing("cuda")
    monkeypatch.setattr(compile_backend, "_has_triton", lambda: False)
    assert "Triton" in compile_backend.compiler_missing("cuda")


def test_triton_probe_reads_cc_as_triton_runs_it_and_needs_python_h(monkeypatch, tmp_path):
    monkeypatch.setattr(compile_backend, "_has_triton", lambda: True)
    on_path = {"gcc": "/usr/bin/gcc", "ccache": "/usr/bin/ccache"}
    monkeypatch.setattr(compile_backend.shutil, "which", lambda name: on_path.get(name))
    monkeypatch.setattr(compile_backend, "python_include", lambda: tmp_path)
    monkeypatch.setenv("CC", "gcc")
    assert "no Python.h" in compile_backend.compiler_missing("cuda")
    assert str(tmp_path) in compile_backend.compiler_missing("cuda")
    (tmp_path / "Python.h").write_text("")
    assert compile_backend.compiler_missing("cuda") == ""
    # Triton runs [$CC, source, ...]: a launcher and a compiler are not one program
    monkeypatch.setenv("CC", "ccache gcc")
    reason = compile_backend.compiler_missing("cuda")
    assert "'ccache gcc' is a command line" in reason and "CC=gcc" in reason
    assert "not on PATH" not in reason


class MaskProbe(torch.nn.Module):
    """Logits 1 where the model was given no attention mask, 2 where it was given one."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, input_ids, attention_mask=None, labels=None):
        flag = 1.0 if attention_mask is None else 2.0
        logits = torch.full(input_ids.shape, flag) * self.w
        return TokenClassifierOutput(loss=logits.sum(), logits=logits)


def _train(session_cls, **kw):
    model = MaskProbe()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    return session_cls(model, "cpu", MODES["fp32"], optimizer, scheduler, **kw)


FULL = synthetic_batch(2, 8, 30522, 3, seed=0)
PADDED = Batch(FULL.input_ids, FULL.attention_mask, FULL.labels, FULL.index, 15)


def _assert_mask_only_when_padded(infer, train) -> None:
    assert infer.logits(FULL).unique().tolist() == [1.0]
    assert infer.logits(PADDED).unique().tolist() == [2.0]
    assert train.step([FULL]).item() == 16.0  # 2 x 8 ones
    assert train.step([PADDED]).item() == 32.0


def test_full_batches_reach_eager_models_without_a_mask():
    _assert_mask_only_when_padded(TorchInfer(MaskProbe(), "cpu", MODES["fp32"]), _train(TorchTrain))


@pytest.mark.slow
def test_full_batches_reach_compiled_models_without_a_mask(monkeypatch):
    """Through Dynamo's graphs (its eager backend: what reaches the graph is Dynamo's
    business; Inductor's code generation is exercised by test_no_timed_training_step_compiles
    and the compile cells of test_runtimes.py)."""
    monkeypatch.setattr(
        CompileOptions, "compile", lambda self, module: torch.compile(module, backend="eager")
    )
    options = _options("default", "cpu", "pad-max")
    _assert_mask_only_when_padded(
        CompiledInfer(MaskProbe(), "cpu", MODES["fp32"], options),
        _train(CompiledTrain, options=options, data_parallel=False),
    )


@pytest.mark.slow
@pytest.mark.parametrize("padding", ["pad-max", "bucket", "dynamic"])
def test_no_timed_training_step_compiles(padding, tiny_model_dir, tmp_path):
    """Real torch.compile (Inductor, CPU): every graph the run needs is compiled before the
    first step, the partial last batch of an epoch and every bucket width included."""
    torch._dynamo.reset()  # graphs of an earlier test would serve this one's shapes
    from accelbench.backends import get_backend
    from accelbench.data.models import load_tokenizer, resolve_model
    from accelbench.workloads.train import run_train, train_input

    config = RunConfig(
        model=str(tiny_model_dir),
        dataset=f"conll:{write_varied_conll(tmp_path / 'data')}",
        runtimes=("compile",),
        paddings=(padding,),
        batch_sizes=(3,),
        seq_lens=(32,),
        train_steps=6,
    )
    cell = cell_for(config, "train", "compile", "cpu", "fp32", padding)
    inputs = train_input(cell, load_tokenizer(resolve_model(cell.model)))
    examples = inputs.make_plan(cell, 6).examples()
    signatures = {b.signature for b in examples}
    assert any(rows == 1 for rows, _, _ in signatures)  # the epoch's partial batch is met
    if padding == "bucket":
        assert {width for _, width, _ in signatures} == {16, 32}
    out = run_train(cell, config, get_backend("compile"), tmp_path, "cell", lambda n: None)
    m, d = out["metrics"], out["details"]
    assert m["timed_steps_compiled"] == 0
    assert m["timed_steps"] == 6 - m["warmup_steps"]
    assert d["compile_time_s"] > 0
    if padding != "dynamic":  # one static graph per shape, each compiled while warming
        assert d["compiling_calls"] == len(signatures)
