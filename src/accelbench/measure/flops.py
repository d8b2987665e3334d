"""FLOPs of a BERT encoder pass, achieved TFLOP/s and MFU against known dense peaks.

Forward FLOPs per token = 2N + 4*L*T*d (N: non-embedding parameters, L layers, T the padded
sequence length, d hidden size); training = 3x forward. Padded tokens are computed, so they count.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One GPU product: its full SM count and dense (no sparsity) peak TFLOP/s per dtype."""

    product: str
    sms: int
    fp32: float
    tf32: float
    bf16: float  # = fp16 on every part below

    def peak(self, dtype: str) -> float | None:
        return {"float32": self.fp32, "tf32": self.tf32, "bfloat16": self.bf16}.get(
            dtype, self.bf16 if dtype == "float16" else None
        )


# Datasheet figures (Tensor Core rates are the datasheets' sparse figures halved):
_H100_SXM = Part("H100 SXM5", 132, 67.0, 494.5, 989.5)  # NVIDIA H100 datasheet, SXM column
_H100_PCIE = Part("H100 PCIe", 114, 51.0, 378.0, 756.5)  # NVIDIA H100 datasheet, PCIe column
_H100_NVL = Part("H100 NVL", 132, 60.0, 417.5, 835.5)  # NVIDIA H100 datasheet, NVL column
_H200_SXM = Part("H200 SXM", 132, 67.0, 494.5, 989.5)  # NVIDIA H200 datasheet, SXM column
_H200_NVL = Part("H200 NVL", 132, 60.0, 417.5, 835.5)  # NVIDIA H200 datasheet, NVL column
_A100 = Part("A100", 108, 19.5, 156.0, 312.0)  # NVIDIA A100 datasheet (SXM4 and PCIe alike)
# The device names torch.cuda.get_device_name() and NVML report, matched exactly (spaces
# collapsed, case ignored): a substring match would give an H100 PCIe or NVL, or an H200 NVL,
# the SXM part's peak.
PARTS: dict[str, Part] = {
    "NVIDIA H100 80GB HBM3": _H100_SXM,
    "NVIDIA H100 PCIe": _H100_PCIE,
    "NVIDIA H100 NVL": _H100_NVL,
    "NVIDIA H200": _H200_SXM,
    "NVIDIA H200 NVL": _H200_NVL,
    "NVIDIA A100-SXM4-40GB": _A100,
    "NVIDIA A100-SXM4-80GB": _A100,
    "NVIDIA A100-PCIE-40GB": _A100,
    "NVIDIA A100 80GB PCIe": _A100,
    "NVIDIA L4": Part("L4", 58, 30.3, 60.0, 121.0),  # NVIDIA L4 datasheet
    "NVIDIA L40S": Part("L40S", 142, 91.6, 183.0, 362.0),  # NVIDIA L40S datasheet
    # Ada whitepaper, fp32 accumulate
    "NVIDIA GeForce RTX 4090": Part("RTX 4090", 128, 82.6, 82.6, 165.2),
}


def _norm(name: str) -> str:
    return " ".join(name.split()).lower()


_BY_NAME = {_norm(name): part for name, part in PARTS.items()}


def find_peak(gpu_name: str | None, dtype: str, sms: int | None = None) -> tuple[float | None, str]:
    """(datasheet dense peak, its source) for the exact product, or (None, why not).

    A MIG slice (the name says MIG, or fewer SMs than the full part) gets no peak rather than
    one scaled by its SM count: its share of the part's clocks, power and memory bandwidth is
    on no datasheet. Its MFU against the ceiling measured on the slice still applies."""
    if not gpu_name:
        return None, "CPU: no peak table"
    if "mig" in _norm(gpu_name).split():
        return None, f"{gpu_name} is a MIG slice: no datasheet peak (MFU vs ceiling applies)"
    part = _BY_NAME.get(_norm(gpu_name))
    if part is None:
        return None, f"no datasheet peak for {gpu_name} (exact product names only)"
    if sms is not None and sms < part.sms:
        return None, (
            f"{gpu_name} shows {sms} of the part's {part.sms} SMs (a MIG slice or a "
            "restricted part): no datasheet peak (MFU vs ceiling applies)"
        )
    peak = part.peak(dtype)
    if peak is None:
        return None, f"no {dtype} peak for {part.product}"
    return peak, f"datasheet: {part.product}, dense"


def encoder_shape(config) -> dict:
    """N (non-embedding parameters), L and d of a BERT-like config."""
    d, layers, inner = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_layer = 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d  # attn, ffn, 2 layernorms
    return {"n_params": layers * per_layer, "layers": layers, "hidden": d}


def forward_flops(shape: dict, batch: int, seq: int) -> float:
    per_token = 2 * shape["n_params"] + 4 * shape["layers"] * seq * shape["hidden"]
    return float(batch * seq * per_token)


def step_flops(shape: dict, batch: int, seq: int, train: bool) -> float:
    return forward_flops(shape, batch, seq) * (3 if train else 1)


def mfu(achieved_tflops: float, gpu_name: str | None, dtype: str, sms: int | None = None) -> dict:
    peak, note = find_peak(gpu_name, dtype, sms)
    if peak is None:
        return {"mfu": None, "peak_tflops": None, "peak_source": None, "mfu_reason": note}
    return {
        "mfu": achieved_tflops / peak,
        "peak_tflops": peak,
        "peak_source": note,
        "mfu_reason": None,
    }


def against_ceiling(achieved_tflops: float, ceiling: float | None, source: str | None) -> dict:
    """MFU against the matmul ceiling measured by the run. A ceiling below what the cell itself
    achieved is a failed measurement (a busy machine, a matmul too small to time), not a limit:
    its ratio is dropped, with a note, so no ratio above 1 is published."""
    out = {"ceiling_tflops": ceiling, "mfu_vs_ceiling": None, "ceiling_source": source}
    if not ceiling:
        return {**out, "ceiling_source": None}
    if achieved_tflops > ceiling:
        out["ceiling_note"] = (
            f"the measured ceiling {ceiling:.4g} TFLOP/s is below what this cell achieved "
            f"({achieved_tflops:.4g} TFLOP/s): a failed ceiling measurement, not used"
        )
        return out
    out["mfu_vs_ceiling"] = achieved_tflops / ceiling
    return out
