"""Build the ONNX graph an ORT cell runs: export, transformer fusions, fp16 or int8 conversion.

The export uses eager attention: ONNX Runtime's transformer optimizer fuses that pattern into
its `Attention` kernel, while the SDPA export of transformers 5 is left unfused.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from accelbench.data.encode import Batch

OPSET = 17
EXPORTER = "torch.onnx.export (TorchScript tracer, dynamo=False)"
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "logits"


@dataclass(frozen=True)
class GraphPlan:
    fused: bool  # run onnxruntime.transformers.optimizer (model_type "bert")
    precision: str  # fp32 | tf32 (same graph as fp32) | fp16 | int8
    use_gpu: bool  # optimizer fusions for the CUDA EP


def export(model: torch.nn.Module, example: Batch, path: Path) -> dict:
    """Export the fp32 model with dynamic batch and sequence axes; returns the facts."""
    if not hasattr(model, "set_attn_implementation"):
        raise RuntimeError("ONNX export needs transformers >= 4.48 (set_attn_implementation)")
    model = model.float().cpu().eval()
    model.set_attn_implementation("eager")
    axes = {0: "batch", 1: "sequence"}
    t0 = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's notes on constant mask padding and the legacy-exporter deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example.input_ids.cpu(), example.attention_mask.cpu()),
            str(path),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes={name: axes for name in (*INPUTS, OUTPUT)},
            opset_version=OPSET,
            dynamo=False,
        )
    return {
        "exporter": EXPORTER,
        "opset": OPSET,
        "export_time_s": time.perf_counter() - t0,
        "export_attn_implementation": "eager",
        "export_example_shape": list(example.input_ids.shape),
    }


def _fuse(path: Path, config, use_gpu: bool):
    from onnxruntime.transformers.optimizer import optimize_model

    t0 = time.perf_counter()
    optimized = optimize_model(
        str(path),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        use_gpu=use_gpu,
    )
    stats = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    facts = {
        "transformer_optimizer": "onnxruntime.transformers.optimizer (model_type bert)",
        "optimize_time_s": time.perf_counter() - t0,
        "fusion_stats": stats,
        "fused_attention": stats.get("Attention", 0) + stats.get("MultiHeadAttention", 0),
    }
    if facts["fused_attention"] == 0:
        facts["fusion_warning"] = "the optimizer fused no Attention node: attention runs unfused"
    return optimized, facts


def build_graph(model: torch.nn.Module, example: Batch, plan: GraphPlan, workdir: Path):
    """Write the graph the cell runs under `workdir`; return its path and what was done."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    config = model.config
    exported = workdir / "model.onnx"
    facts = export(model, example, exported)
    facts["graph"] = "fused" if plan.fused else "plain export"
    if plan.fused:
        graph, fuse_facts = _fuse(exported, config, plan.use_gpu)
        facts.update(fuse_facts)
    else:
        graph = OnnxModel(onnx.load(str(exported)))
    if plan.precision == "fp16":
        t0 = time.perf_counter()
        graph.convert_float_to_float16(keep_io_types=True)
        facts["fp16_conversion"] = "OnnxModel.convert_float_to_float16(keep_io_types=True)"
        facts["convert_time_s"] = time.perf_counter() - t0
    path = workdir / "model.run.onnx"
    graph.save_model_to_file(str(path))
    if plan.precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = workdir / "model.int8.onnx"
        t0 = time.perf_counter()
        quantize_dynamic(
            str(path),
            str(quantized),
            weight_type=QuantType.QInt8,
            # shape inference cannot type the outputs of fused com.microsoft nodes
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        facts["quantization"] = "quantize_dynamic (weights QInt8, activations dynamic uint8)"
        facts["quantize_time_s"] = time.perf_counter() - t0
        path = quantized
    facts["model_file_mb"] = path.stat().st_size / 2**20
    return path, facts
