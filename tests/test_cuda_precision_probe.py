"""CUDA precisions run only where the GPU has them natively: bf16 without emulation, tf32 from
compute capability 8.0; a refused cell names the GPU and its capability. A stand-in GPU (the
torch.cuda functions the probe reads, monkeypatched) plays each card."""

from __future__ import annotations

import pytest
import torch

from accelbench.backends.precision import torch_capability

# name, capability, whether bf16 is native there
GPUS = {
    "Tesla T4": ((7, 5), False),
    "Tesla V100": ((7, 0), False),
    "NVIDIA A100": ((8, 0), True),
    "NVIDIA H100": ((9, 0), True),
}


def stand_in(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    capability, native = GPUS[name]

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation  # torch's default: emulated counts as supported

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)


@pytest.mark.parametrize("name", list(GPUS))
def test_bf16_and_tf32_only_where_the_gpu_has_them(monkeypatch, name):
    stand_in(monkeypatch, name)
    capability, native = GPUS[name]
    ampere = capability >= (8, 0)
    expected = {
        ("train", "fp32"): True,
        ("train", "fp16"): True,
        ("infer", "fp16-weights"): True,
        ("train", "bf16"): native,
        ("infer", "bf16-weights"): native,
        ("train", "tf32"): ampere,
        ("infer", "tf32"): ampere,
    }
    for (workload, precision), ok in expected.items():
        allowed, reason = torch_capability(workload, "cuda", precision)
        assert allowed is ok, (precision, reason)
        if not ok:
            assert f"{name} (compute capability {capability[0]}.{capability[1]})" in reason
            assert ("emulated" if "bf16" in precision else "8.0") in reason
