"""Classify CUDA kernel names: GEMM or attention, Tensor Core or not, operand dtype.

The names come from cuBLAS/cuBLASLt (`ampere_sgemm_*`, `sm80_xmma_gemm_*`, `sm90_xmma_*`,
`nvjet_*`, fp8 `*_e4m3*`), CUTLASS (`cutlass_80_tensorop_*`, `cutlass_80_simt_*`,
`cutlass3x_sm90_*_e4m3_*`), flash attention
(`flash_fwd_kernel<...>`), memory-efficient attention (`fmha_cutlassF_*`), cuDNN SDPA and
Inductor's Triton templates (`triton_tem_*`, `triton_tem_fused__scaled_mm_*` for fp8,
`*_int_mm_*` for int8: the torchao cells' `torch._scaled_mm` and `torch._int_mm`). Reading
names is a heuristic: where a name does not say, the answer is None, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ATTENTION = ("flash_fwd", "flash_bwd", "flash::", "fmha", "attention", "sdpa", "mha_")
GEMM = ("gemm", "gemv", "nvjet", "xmma", "wgmma", "cutlass", "triton_tem_", "scaled_mm", "int_mm")
SIMT = ("ffma", "sgemm", "simt", "gemv", "dgemm")
TENSOR_CORE = (
    "tensorop",
    "tensor16x8",
    "16816",
    "1688",
    "16832",
    "884gemm",
    "hmma",
    "imma",
    "wgmma",
    "warpgroup",
    "nvjet",
    "flash_fwd",
    "flash_bwd",
    "native_sdpa",  # cuDNN SDPA: fp16/bf16 only
)
DTYPES = (  # first match wins: fp8 and int8 before the bf16/f32 of their outputs, tf32 and
    # bf16 before the f32/f16 they contain
    ("fp8", ("e4m3", "e5m2", "fp8", "float8", "scaled_mm")),
    ("int8", ("int8", "i8816", "imma", "s8s8", "i8i8", "int_mm")),
    ("tf32", ("tf32",)),
    ("bf16", ("bf16", "bfloat16")),
    ("fp16", ("fp16", "f16", "half", "h884", "h1688", "h16816")),
    ("fp32", ("f32", "sgemm", "float")),
)
REDUCED = ("tf32", "bf16", "fp16", "int8", "fp8")  # only Tensor Core kernels run these in libraries

# cuBLASLt's run-time generated Hopper/Blackwell GEMMs: nvjet[_smNN]_<types>_<tile>_..., the
# type letters being the input(s), the compute type and the output: `tst` bf16 in, fp32
# compute, bf16 out; `tss` bf16 in, fp32 out; `hsh`/`hss` fp16; `sss` fp32, `sss_tf32` fp32
# through TF32; `qqtst` fp8 (e4m3) A and B, bf16 out. The operand dtype is the first letter.
NVJET = re.compile(r"nvjet_(?:sm\d+[a-z]?_)?([a-z]{3,5})_")
NVJET_LETTERS = {"t": "bf16", "h": "fp16", "s": "fp32", "q": "fp8"}


@dataclass(frozen=True)
class KernelClass:
    kind: str  # gemm | attention | other
    tensor_core: bool | None  # None: the name does not say
    dtype: str | None


def nvjet_dtype(name: str) -> str | None:
    """Operand dtype of an nvjet GEMM from its type letters; None when the name has none."""
    match = NVJET.search(name.lower())
    if match is None:
        return None
    dtype = NVJET_LETTERS.get(match.group(1)[0])
    return "tf32" if dtype == "fp32" and "_tf32" in name.lower() else dtype


def kernel_dtype(name: str) -> str | None:
    low = name.lower()
    if "nvjet" in low:
        return nvjet_dtype(low)
    return next((d for d, tokens in DTYPES if any(t in low for t in tokens)), None)


def classify(name: str) -> KernelClass:
    low = name.lower()
    if any(t in low for t in ATTENTION):
        kind = "attention"
    elif any(t in low for t in GEMM) and "splitkreduce" not in low:
        kind = "gemm"
    else:
        return KernelClass("other", None, None)
    dtype = kernel_dtype(low)
    if any(t in low for t in SIMT):
        tc: bool | None = False
    elif "nvjet" in low and dtype == "fp32":
        tc = None  # an nvjet name does not say how strict fp32 was computed
    elif any(t in low for t in TENSOR_CORE) or dtype in REDUCED:
        tc = True
    else:
        tc = None
    return KernelClass(kind, tc, dtype)


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def summarize(kernels: Iterable[tuple[str, float]]) -> dict:
    """Per kind (gemm, attention): time, Tensor Core share of the classified time, the share
    no name could classify, and time by dtype. `kernels` is (name, duration in us)."""
    out: dict = {}
    total = 0.0
    for kind in ("gemm", "attention"):
        out[kind] = {"time_us": 0.0, "tc_us": 0.0, "simt_us": 0.0, "dtypes_us": {}}
    for name, us in kernels:
        total += us
        cls = classify(name)
        if cls.kind == "other":
            continue
        row = out[cls.kind]
        row["time_us"] += us
        if cls.tensor_core is not None:
            row["tc_us" if cls.tensor_core else "simt_us"] += us
        key = cls.dtype or "unknown"
        row["dtypes_us"][key] = row["dtypes_us"].get(key, 0.0) + us
    for row in (out["gemm"], out["attention"]):
        known = row["tc_us"] + row["simt_us"]
        row["tensor_core_share"] = _share(row.pop("tc_us"), known)
        row["unclassified_share"] = _share(row["time_us"] - known, row["time_us"])
        row.pop("simt_us")
    out["kernel_time_us"] = total
    return out


def quantized_share(summary: dict, dtype: str) -> float | None:
    """Share of the GEMM time whose kernel names say a dtype that is `dtype` (fp8, int8);
    None when no GEMM name says a dtype (e.g. Inductor templates that do not name it)."""
    dtypes = summary["gemm"]["dtypes_us"]
    known = sum(us for d, us in dtypes.items() if d != "unknown")
    return _share(dtypes.get(dtype, 0.0), known)


def mode_verdict(summary: dict, precision: str) -> tuple[bool | None, str]:
    """Did the claimed precision take effect on the GEMMs? (None: cannot tell.)"""
    if precision in ("fp8", "int8"):
        share = quantized_share(summary, precision)
        if share is None:
            return None, "no GEMM kernel name said its dtype"
        said = f"{precision} GEMMs {share:.0%} of the GEMM time whose names say a dtype"
        return (share >= 0.5, said if share >= 0.5 else f"{precision} claimed, but only {said}")
    share = summary["gemm"]["tensor_core_share"]
    if share is None:
        return None, "no GEMM kernel name said whether it used Tensor Cores"
    said = f"Tensor Cores {share:.0%} of classified GEMM time"
    if precision == "fp32" and share > 0.05:
        return False, f"strict fp32 claimed, but {said}"
    if precision in ("tf32", "bf16", "fp16", "bf16-weights", "fp16-weights") and share < 0.5:
        return False, f"{precision} claimed, but only {said}"
    return True, said
