"""Precision modes: what each name means for autocast, weight dtype, TF32 and loss scaling."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from accelbench.measure.env import cpu_bf16, cpu_flags

EMULATE_ENV = "ACCELBENCH_CPU_BF16"  # "emulated": run CPU bf16 cells on a CPU without bf16
TF32_CAPABILITY = (8, 0)  # TF32 tensor cores: Ampere and later


@dataclass(frozen=True)
class PrecisionMode:
    name: str
    autocast: torch.dtype | None  # AMP autocast dtype, None = off
    weights: torch.dtype | None  # cast the weights themselves (inference only)
    tf32: bool  # allow TF32 in matmul and cuDNN (CUDA)
    grad_scaler: bool  # dynamic loss scaling in training
    train: bool  # usable for training
    cuda_only: bool

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.weights or self.autocast or torch.float32


MODES: dict[str, PrecisionMode] = {
    "fp32": PrecisionMode("fp32", None, None, False, False, True, False),
    "tf32": PrecisionMode("tf32", None, None, True, False, True, True),
    "bf16": PrecisionMode("bf16", torch.bfloat16, None, False, False, True, False),
    "fp16": PrecisionMode("fp16", torch.float16, None, False, True, True, True),
    "bf16-weights": PrecisionMode("bf16-weights", None, torch.bfloat16, False, False, False, False),
    "fp16-weights": PrecisionMode("fp16-weights", None, torch.float16, False, False, False, True),
}


def torch_capability(workload: str, device: str, precision: str) -> tuple[bool, str]:
    """Whether PyTorch can run this precision on this device here, and why not."""
    mode = MODES.get(precision)
    if mode is None:
        return False, f"{precision} is not a PyTorch precision (int8 runs with --runtimes ort)"
    if device == "cuda" and not torch.cuda.is_available():
        return False, "no CUDA device visible to torch " + (
            f"(torch {torch.__version__} is a CPU build)"
            if torch.version.cuda is None
            else "(check the driver and CUDA_VISIBLE_DEVICES)"
        )
    if device == "cpu" and mode.cuda_only:
        return False, f"{precision} is a CUDA mode; on CPU use fp32 or bf16"
    if (
        device == "cpu"
        and torch.bfloat16 in (mode.autocast, mode.weights)
        and cpu_bf16(cpu_flags()) is False
        and os.environ.get(EMULATE_ENV) != "emulated"
    ):
        return False, (
            "this CPU has no bf16 instructions (avx512_bf16, amx_bf16): bf16 would run "
            f"emulated, several times slower than fp32; {EMULATE_ENV}=emulated runs it anyway"
        )
    if workload == "train" and not mode.train:
        return False, f"{precision} casts the weights and is for inference only; train with bf16"
    if device == "cuda":
        return cuda_capability(mode)
    return True, ""


def cuda_capability(mode: PrecisionMode) -> tuple[bool, str]:
    """Whether the current GPU runs `mode` natively: bf16 as bf16 (torch's own check without
    emulation, which would pass a T4 or V100 and time fp32 work), tf32 on tensor cores that
    have it (compute capability 8.0 and up); the reason names the GPU and its capability."""
    major, minor = torch.cuda.get_device_capability()
    gpu = f"{torch.cuda.get_device_name()} (compute capability {major}.{minor})"
    if torch.bfloat16 in (mode.autocast, mode.weights) and not torch.cuda.is_bf16_supported(
        including_emulation=False
    ):
        return False, f"{gpu} has no native bf16: it would run emulated; use fp16"
    if mode.tf32 and (major, minor) < TF32_CAPABILITY:
        return False, f"{gpu} has no TF32: it needs compute capability 8.0 or later"
    return True, ""


def apply_flags(mode: PrecisionMode) -> dict:
    """Set the global matmul flags this mode needs and return them for the record."""
    torch.backends.cuda.matmul.allow_tf32 = mode.tf32
    torch.backends.cudnn.allow_tf32 = mode.tf32
    torch.set_float32_matmul_precision("high" if mode.tf32 else "highest")
    return {
        "allow_tf32_matmul": mode.tf32,
        "allow_tf32_cudnn": mode.tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "autocast_dtype": str(mode.autocast).replace("torch.", "") if mode.autocast else None,
        "weight_dtype": str(mode.weights).replace("torch.", "") if mode.weights else "float32",
        "grad_scaler": mode.grad_scaler,
    }


def autocast(mode: PrecisionMode, device: str):
    if mode.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=mode.autocast)


def dtype_key(precision: str) -> str | None:
    """The dtype a precision's matmuls run in, as the peak tables name it; None for int8."""
    mode = MODES.get(precision)
    if mode is None:
        return None
    if mode.tf32:
        return "tf32"
    return str(mode.compute_dtype).replace("torch.", "")
