"""ONNX Runtime inference: `ort` runs the plain export, `ort-fused` the transformer-optimized graph.

Precisions: CPU fp32 and int8 (dynamic quantization); CUDA fp32 (TF32 off), tf32 and fp16
(graph converted to float16, fp32 inputs and outputs), fed through IO binding.
The requested execution provider must be the one that runs: anything else fails the cell.
Where it runs each node is read from ORT's profile of the session's first call (profiling then
ends): `details.node_placement` counts the nodes per provider and names the op types placed
off the requested one (on CUDA: nodes ORT left on the CPU, with copies around them).

On CUDA each session runs on a dedicated, non-default torch stream whose handle is ORT's
`user_compute_stream` (ORT ignores a null handle, and the default stream's is 0). Every call
is ordered on the device against torch's current stream: ORT's stream waits for what that
stream queued (the non-blocking input copies), and that stream waits for ORT's work, so CUDA
events recorded on it bracket ORT's kernels. ORT allocates from its own arena, which torch's
allocator does not see: the record's device memory comes from NVML around the session.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from accelbench.backends.base import Capability
from accelbench.backends.onnx_graph import INPUTS, OUTPUT, GraphPlan, build_graph
from accelbench.config.specs import CellSpec
from accelbench.data.encode import Batch
from accelbench.measure.memory import OwnAllocator

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
PRECISIONS = {"cpu": ("fp32", "int8"), "cuda": ("fp32", "tf32", "fp16")}
GRAPH_OPT_LEVEL = "ORT_ENABLE_ALL"


# the package's extras, after optimum's [onnxruntime] / [onnxruntime-gpu]: onnxruntime-gpu holds
# the CPU provider too, and a plain onnxruntime installed over it removes the CUDA provider
EXTRAS = {"cpu": "ort", "cuda": "ort-gpu"}


def ort_capability(workload: str, device: str, precision: str) -> tuple[bool, str]:
    if workload == "train":
        return False, "ONNX Runtime cells are inference only; train with eager or compile"
    for module in ("onnxruntime", "onnx"):
        try:
            importlib.import_module(module)
        except ImportError:
            return False, (
                f"{module} is not installed: pip install 'accelbench[{EXTRAS[device]}]' "
                f"(ONNX Runtime is an extra: ort for CPU, ort-gpu for CUDA)"
            )
    import onnxruntime as ort

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


def provider_options(device: str, precision: str, device_id: int, stream: Any) -> dict:
    """The execution provider's options; on CUDA `stream` (a torch.cuda.Stream) must be a
    dedicated stream: ORT treats a null handle as none and would run on a stream of its own."""
    if device != "cuda":
        return {}
    if not stream.cuda_stream:
        raise ValueError("ORT needs a non-default CUDA stream: the default stream's handle is 0")
    return {
        "device_id": str(device_id),
        "use_tf32": "1" if precision == "tf32" else "0",
        "user_compute_stream": str(stream.cuda_stream),
    }


def ordered(run: Callable[[], None], stream: Any, current: Any) -> None:
    """Run work queued on `stream` in `current`'s order: after everything `current` queued
    before (input copies, a timer's start event) and before anything it queues after (the
    stop event, readers of the output)."""
    stream.wait_stream(current)
    run()
    current.wait_stream(stream)


def node_placement(events: list[dict], requested: str) -> dict:
    """Nodes per execution provider in an ORT profile (its "Node" events, each node once),
    and the op types of those placed off `requested`, with their counts."""
    nodes: dict[tuple[str, str], str] = {}
    for event in events:
        args = event.get("args") or {}
        if event.get("cat") == "Node" and "provider" in args:
            node = args.get("node_index", event.get("name", ""))
            nodes[(args["provider"], node)] = args.get("op_name", "?")
    per_provider = Counter(provider for provider, _ in nodes)
    off = Counter(op for (provider, _), op in nodes.items() if provider != requested)
    return {
        "nodes_by_provider": dict(sorted(per_provider.items())),
        "nodes_off_requested_provider": sum(off.values()),
        "ops_off_requested_provider": dict(sorted(off.items())),
    }


class OrtInfer:
    warm_calls = 1
    compiling_calls = 0

    def __init__(self, path: Path, device: str, precision: str, num_labels: int) -> None:
        import onnxruntime as ort

        self.device, self.num_labels = device, num_labels
        self.provider = PROVIDERS[device]
        self.stream = torch.cuda.Stream() if device == "cuda" else None
        self.device_id = torch.cuda.current_device() if device == "cuda" else 0
        # before the session exists: the baseline of what ORT's arena adds
        self.memory = OwnAllocator() if device == "cuda" else None
        self.provider_options = provider_options(device, precision, self.device_id, self.stream)
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPT_LEVEL)
        so.intra_op_num_threads = torch.get_num_threads()
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.enable_profiling = True  # for the first call's node placement only
        so.profile_file_prefix = str(path.parent / "placement")
        self.placement: dict | None = None
        t0 = time.perf_counter()
        self.session = ort.InferenceSession(
            str(path), so, providers=[(self.provider, self.provider_options)]
        )
        self.create_s = time.perf_counter() - t0
        ran = self.session.get_providers()
        if ran[0] != self.provider:
            raise RuntimeError(f"asked onnxruntime for {self.provider}, it set up {ran}")
        self.options = so

    def logits(self, batch: Batch) -> torch.Tensor:
        if self.device == "cuda":
            out = self._logits_bound(batch)
        else:
            feed = {
                "input_ids": batch.input_ids.numpy(),
                "attention_mask": batch.attention_mask.numpy(),
            }
            out = torch.from_numpy(self.session.run([OUTPUT], feed)[0])
        if self.placement is None:
            self.placement = self._end_profiling()
        return out

    def _end_profiling(self) -> dict:
        """Where the first call ran each node; ends the session's profiling (later calls run
        unprofiled)."""
        profile = Path(self.session.end_profiling())
        try:
            return node_placement(json.loads(profile.read_text()), self.provider)
        finally:
            profile.unlink()

    def _logits_bound(self, batch: Batch) -> torch.Tensor:
        """Inputs and output stay in device memory; ORT runs on its stream, in order."""
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
        ordered(
            lambda: self.session.run_with_iobinding(binding),
            self.stream,
            torch.cuda.current_stream(),
        )
        return out

    def device_memory(self) -> dict:
        return self.memory.figures()

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
            "compute_stream": "dedicated torch stream, ordered against torch's current stream"
            if self.device == "cuda"
            else None,
            "graph_optimization_level": GRAPH_OPT_LEVEL,
            "intra_op_num_threads": self.options.intra_op_num_threads,
            "inter_op_num_threads": self.options.inter_op_num_threads,
            "session_create_s": self.create_s,
            "node_placement": self.placement,
        }


class OrtGraphInfer(OrtInfer):
    """An ORT session over a built graph, with the facts of how it was built."""

    def __init__(self, path: Path, graph_facts: dict, cell: CellSpec, num_labels: int) -> None:
        super().__init__(path, cell.device, cell.precision, num_labels)
        self.graph_facts = graph_facts

    def details(self) -> dict:
        return {**self.graph_facts, **super().details()}


class OrtBackend:
    """`ort`: the plain export, with ORT's own online graph optimizations.

    Every `prepare_infer` builds a fresh session (a batch-size trial must not inherit the
    arena an earlier trial grew, or failed in); the graph itself is built once per plan and
    kept in a temporary directory as long as the backend lives."""

    name = "ort"
    fused = False
    serves = True  # dynamic batch axis: batch 1 runs as any other

    def __init__(self) -> None:
        self._graphs: dict[GraphPlan, tuple[Path, dict]] = {}
        self._tmp: tempfile.TemporaryDirectory | None = None

    def probe(self, workload: str, device: str, precision: str) -> Capability:
        ok, reason = ort_capability(workload, device, precision)
        return Capability(ok, reason)

    def prepare_infer(self, model: torch.nn.Module, cell: CellSpec, example: Batch) -> OrtInfer:
        plan = GraphPlan(self.fused, cell.precision, cell.device == "cuda")
        num_labels = model.config.num_labels
        if plan not in self._graphs:
            self._tmp = self._tmp or tempfile.TemporaryDirectory(prefix="accelbench-ort-")
            workdir = Path(self._tmp.name) / f"graph{len(self._graphs)}"
            workdir.mkdir()
            self._graphs[plan] = build_graph(model, example, plan, workdir)
        path, facts = self._graphs[plan]
        return OrtGraphInfer(path, facts, cell, num_labels)

    def prepare_train(self, model, cell, optimizer, scheduler):
        raise RuntimeError(ort_capability("train", cell.device, cell.precision)[1])


class OrtFusedBackend(OrtBackend):
    """`ort-fused`: the graph after ONNX Runtime's transformer optimizer (Attention fusion)."""

    name = "ort-fused"
    fused = True
