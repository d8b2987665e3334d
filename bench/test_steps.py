"""pytest-benchmark suites: one runtime step through the library, device synced inside the call.

    pytest bench/ --benchmark-json out.json          # run (CPU, and CUDA when present)
    pytest-benchmark compare out-a.json out-b.json   # compare two machines or commits

A tiny BERT (2 layers, hidden 64) built from a config: no download, seconds per case.
On CUDA the cases run in pedantic mode (fixed rounds after explicit warm-up rounds).
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForTokenClassification, BertConfig

from accelbench.backends import get_backend
from accelbench.config.specs import CellSpec
from accelbench.data.encode import synthetic_batch
from accelbench.measure.timing import synchronize

BATCH, SEQ, LABELS = 16, 64, 3
TINY = {
    "vocab_size": 30522,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "num_labels": LABELS,
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _cell(workload: str, device: str, precision: str) -> CellSpec:
    return CellSpec(
        workload=workload,
        runtime="eager",
        device=device,
        precision=precision,
        padding="pad-max",
        batch_size=BATCH,
        seq_len=SEQ,
        model="tiny",
        dataset="synthetic",
        seed=0,
        synthetic=True,
    )


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return AutoModelForTokenClassification.from_config(BertConfig(**TINY))


def _time(benchmark, device: str, fn) -> None:
    benchmark.extra_info.update(device=device, batch_size=BATCH, seq_len=SEQ)
    if device == "cuda":
        benchmark.pedantic(fn, rounds=50, iterations=1, warmup_rounds=5)
    else:
        benchmark(fn)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_eager_infer_step(benchmark, device, precision):
    backend = get_backend("eager")
    cap = backend.probe("infer", device, precision)
    if not cap.ok:
        pytest.skip(cap.reason)
    cell = _cell("infer", device, precision)
    batch = synthetic_batch(BATCH, SEQ, TINY["vocab_size"], LABELS, 0).to(device)
    session = backend.prepare_infer(_model(), cell, batch)

    def step() -> None:
        session.logits(batch)
        synchronize(device)

    _time(benchmark, device, step)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_eager_train_step(benchmark, device, precision):
    backend = get_backend("eager")
    cap = backend.probe("train", device, precision)
    if not cap.ok:
        pytest.skip(cap.reason)
    cell = _cell("train", device, precision)
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    session = backend.prepare_train(model, cell, optimizer, scheduler)
    batch = synthetic_batch(BATCH, SEQ, TINY["vocab_size"], LABELS, 0).to(device)

    def step() -> None:
        session.step([batch])
        synchronize(device)

    _time(benchmark, device, step)
