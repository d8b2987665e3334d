"""FLOPs of a BERT encoder pass, achieved TFLOP/s and MFU against known dense peaks.

Forward FLOPs per token = 2N + 4*L*T*d (N: non-embedding parameters, L layers, T the padded
sequence length, d hidden size); training = 3x forward. Padded tokens are computed, so they count.
"""

from __future__ import annotations

# Dense (no sparsity) peak TFLOP/s per GPU and compute dtype, from the vendors' datasheets:
# A100 SXM: NVIDIA A100 datasheet (fp32 19.5, tf32 156, bf16/fp16 312).
# H100 SXM and H200 SXM: NVIDIA H100/H200 datasheets (fp32 67, tf32 494.5, bf16/fp16 989.5).
# L4: NVIDIA L4 datasheet (fp32 30.3, tf32 60, bf16/fp16 121).
# L40S: NVIDIA L40S datasheet (fp32 91.6, tf32 183, bf16/fp16 362).
# RTX 4090: Ada whitepaper, fp32 accumulate (fp32 82.6, tf32 82.6, bf16/fp16 165.2).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "A100": {"float32": 19.5, "tf32": 156.0, "bfloat16": 312.0, "float16": 312.0},
    "H100": {"float32": 67.0, "tf32": 494.5, "bfloat16": 989.5, "float16": 989.5},
    "H200": {"float32": 67.0, "tf32": 494.5, "bfloat16": 989.5, "float16": 989.5},
    "L4": {"float32": 30.3, "tf32": 60.0, "bfloat16": 121.0, "float16": 121.0},
    "L40S": {"float32": 91.6, "tf32": 183.0, "bfloat16": 362.0, "float16": 362.0},
    "RTX 4090": {"float32": 82.6, "tf32": 82.6, "bfloat16": 165.2, "float16": 165.2},
}


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


def peak_for(gpu_name: str | None, dtype: str) -> float | None:
    """Datasheet dense peak for a GPU name as torch reports it, or None if unknown."""
    if not gpu_name:
        return None
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in gpu_name.lower():
            return PEAK_TFLOPS[key].get(dtype)
    return None


def mfu(achieved_tflops: float, gpu_name: str | None, dtype: str) -> dict:
    peak = peak_for(gpu_name, dtype)
    if peak is None:
        why = "CPU: no peak table" if not gpu_name else f"no datasheet peak for {gpu_name}"
        return {"mfu": None, "peak_tflops": None, "peak_source": None, "mfu_reason": why}
    return {
        "mfu": achieved_tflops / peak,
        "peak_tflops": peak,
        "peak_source": "datasheet",
        "mfu_reason": None,
    }
