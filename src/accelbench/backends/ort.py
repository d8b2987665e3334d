"""ONNX Runtime inference: `ort` runs the plain export, `ort-fused` the transformer-optimized graph.

Precisions: CPU fp32 and int8 (dynamic quantization); CUDA fp32 (TF32 off), tf32 and fp16
(graph converted to float16, fp32 inputs and outputs), fed through IO binding on torch's stream.
The requested execution provider must be the one that runs: anything else fails the cell.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from accelbench.backends.base import Capability
from accelbench.backends.onnx_graph import INPUTS, OUTPUT, GraphPlan, build_graph
from accelbench.config.specs import CellSpec
from accelbench.data.encode import Batch

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
PRECISIONS = {"cpu": ("fp32", "int8"), "cuda": ("fp32", "tf32", "fp16")}
GRAPH_OPT_LEVEL = "ORT_ENABLE_ALL"


def ort_capability(workload: str, device: str, precision: str) -> tuple[bool, str]:
    import onnxruntime as ort

    if workload == "train":
        return False, "ONNX Runtime cells are inference only; train with eager or compile"
    provider = PROVIDERS[device]
    available = ort.get_available_providers()
    if provider not in available:
        return False, (
            f"the installed onnxruntime {ort.__version__} build has no {provider} "
            f"(it offers {', '.join(available)})"
        )
    if device == "cuda" and not torch.cuda.is_available():
        return False, "IO binding uses torch CUDA tensors, and torch sees no CUDA device"
    if precision not in PRECISIONS[device]:
        return False, f"ort on {device} runs {', '.join(PRECISIONS[device])}, not {precision}"
    return True, ""


def _provider_options(device: str, precision: str) -> dict:
    if device != "cuda":
        return {}
    return {
        "device_id": str(torch.cuda.current_device()),
        "use_tf32": "1" if precision == "tf32" else "0",
        "user_compute_stream": str(torch.cuda.current_stream().cuda_stream),
    }


class OrtInfer:
    def __init__(self, path: Path, device: str, precision: str, num_labels: int) -> None:
        import onnxruntime as ort

        self.device, self.num_labels = device, num_labels
        self.provider = PROVIDERS[device]
        self.provider_options = _provider_options(device, precision)
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT_LEVEL)
        so.intra_op_num_threads = torch.get_num_threads()
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        t0 = time.perf_counter()
        self.session = ort.InferenceSession(
            str(path), so, providers=[(self.provider, self.provider_options)]
        )
        self.create_s = time.perf_counter() - t0
        ran = self.session.get_providers()
        if ran[0] != self.provider:
            raise RuntimeError(f"asked onnxruntime for {self.provider}, it set up {ran}")
        self.options = so
        self.device_id = int(self.provider_options.get("device_id", 0))

    def logits(self, batch: Batch) -> torch.Tensor:
        if self.device == "cuda":
            return self._logits_bound(batch)
        feed = {
            "input_ids": batch.input_ids.numpy(),
            "attention_mask": batch.attention_mask.numpy(),
        }
        return torch.from_numpy(self.session.run([OUTPUT], feed)[0])

    def _logits_bound(self, batch: Batch) -> torch.Tensor:
        """Inputs and output stay in device memory; ORT runs on torch's current stream."""
        binding = self.session.io_binding()
        for name, tensor in zip(INPUTS, (batch.input_ids, batch.attention_mask), strict=True):
            binding.bind_input(
                name, "cuda", self.device_id, np.int64, tuple(tensor.shape), tensor.data_ptr()
            )
        out = torch.empty(
            (*batch.input_ids.shape, self.num_labels), dtype=torch.float32, device="cuda"
        )
        binding.bind_output(
            OUTPUT, "cuda", self.device_id, np.float32, tuple(out.shape), out.data_ptr()
        )
        self.session.run_with_iobinding(binding)
        return out

    def details(self) -> dict:
        import onnxruntime as ort

        return {
            "onnxruntime": ort.__version__,
            "provider_requested": self.provider,
            "provider": self.session.get_providers()[0],
            "providers_session": self.session.get_providers(),
            "provider_options": {
                k: v for k, v in self.provider_options.items() if k != "user_compute_stream"
            },
            "io_binding": self.device == "cuda",
            "graph_optimization_level": GRAPH_OPT_LEVEL,
            "intra_op_num_threads": self.options.intra_op_num_threads,
            "inter_op_num_threads": self.options.inter_op_num_threads,
            "session_create_s": self.create_s,
        }


class OrtGraphInfer(OrtInfer):
    """An ORT session over a graph built in a temporary directory that lives as long as it."""

    def __init__(self, model: torch.nn.Module, cell: CellSpec, example: Batch, fused: bool):
        self._tmp = tempfile.TemporaryDirectory(prefix="accelbench-ort-")
        plan = GraphPlan(fused, cell.precision, cell.device == "cuda")
        num_labels = model.config.num_labels
        path, self.graph_facts = build_graph(model, example, plan, Path(self._tmp.name))
        super().__init__(path, cell.device, cell.precision, num_labels)

    def details(self) -> dict:
        return {**self.graph_facts, **super().details()}


class OrtBackend:
    """`ort`: the plain export, with ORT's own online graph optimizations."""

    name = "ort"
    fused = False
    serves = True  # dynamic batch axis: batch 1 runs as any other

    def probe(self, workload: str, device: str, precision: str) -> Capability:
        ok, reason = ort_capability(workload, device, precision)
        return Capability(ok, reason)

    def prepare_infer(self, model: torch.nn.Module, cell: CellSpec, example: Batch) -> OrtInfer:
        return OrtGraphInfer(model, cell, example, self.fused)

    def prepare_train(self, model, cell, optimizer, scheduler):
        raise RuntimeError(ort_capability("train", cell.device, cell.precision)[1])


class OrtFusedBackend(OrtBackend):
    """`ort-fused`: the graph after ONNX Runtime's transformer optimizer (Attention fusion)."""

    name = "ort-fused"
    fused = True
