"""torch.compile (Inductor) over the eager sessions: same precision modes, compiled forward.

Shapes: with the `dynamic` padding policy every batch has its own length, so the model is
compiled once with symbolic batch and length (`dynamic=True`); `bucket` and `pad-max` give few
distinct shapes, so each gets its own static graph (`dynamic=False`) under a recompile limit
that covers them. Compilation happens in the calls that first meet a graph: inference in
`prepare_infer` and the workload's per-shape warm-up, training in `warm_shapes` (one forward
and backward per exact shape the run will meet, before the first step). Those calls are timed apart
(`compile_time_s`) and counted; a timed call that compiled anyway is left out of the samples.

CUDA graphs: whether the mode records them is read from Inductor's own options for the mode
(`torch._inductor.list_mode_options`, key `triton.cudagraphs`), on CUDA only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from accelbench.backends import quant
from accelbench.backends.base import Capability
from accelbench.backends.eager import TorchInfer, TorchTrain, session_mode, torch_probe
from accelbench.backends.precision import PrecisionMode
from accelbench.config.specs import CellSpec
from accelbench.data.encode import Batch
from accelbench.measure.timing import synchronize, warm_shapes

RECOMPILE_LIMIT = 64  # static graphs per bucket width x (full, last partial) batch size
CUDAGRAPH_WARM_CALLS = 3  # cudagraph trees: warm-up call, recording call, first replay


def mode_cudagraphs(mode: str, device: str) -> bool:
    """Whether Inductor records CUDA graphs in `mode` on `device`: the mode's own options
    (reduce-overhead and max-autotune set `triton.cudagraphs`), else Inductor's global
    setting; never off CUDA."""
    from torch._inductor import config, list_mode_options

    options = list_mode_options(mode)
    return device == "cuda" and bool(options.get("triton.cudagraphs", config.triton.cudagraphs))


def serving_refusal(cell: CellSpec) -> str:
    """Why a serve cell cannot run in its compile mode, or "": serving forms batches of any
    size up to --batch-size at whatever width the queued sentences need, and a mode that
    records CUDA graphs records one per (rows, width) when first met, inside timed queries."""
    mode = cell.compile_mode
    if cell.workload != "serve" or mode is None or not mode_cudagraphs(mode, cell.device):
        return ""
    return (
        f"compile mode {mode} records a CUDA graph for each (rows, width) when first met, and "
        "serving meets new shapes during timed queries: serve with --compile-mode default "
        "or max-autotune-no-cudagraphs"
    )


@dataclass(frozen=True)
class CompileOptions:
    mode: str
    dynamic: bool
    shape_policy: str
    cudagraphs: bool

    @classmethod
    def for_cell(cls, cell: CellSpec) -> CompileOptions:
        mode = cell.compile_mode or "default"
        dynamic = cell.padding == "dynamic"
        policy = (
            "dynamic=True: one graph, symbolic batch size and length"
            if dynamic
            else f"dynamic=False: one static graph per shape ({cell.padding} padding)"
        )
        return cls(mode, dynamic, policy, mode_cudagraphs(mode, cell.device))

    @property
    def warm_calls(self) -> int:
        return CUDAGRAPH_WARM_CALLS if self.cudagraphs else 1

    def compile(self, module: torch.nn.Module) -> Callable[..., Any]:
        config = torch._dynamo.config
        name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))
        return torch.compile(module, mode=self.mode, dynamic=self.dynamic)

    def details(self) -> dict:
        info = {
            "compile_mode": self.mode,
            "dynamic_shapes": self.dynamic,
            "shape_policy": self.shape_policy,
            "cudagraphs": self.cudagraphs,
        }
        if not self.cudagraphs and mode_cudagraphs(self.mode, "cuda"):
            info["compile_note"] = f"{self.mode} uses CUDA graphs only on CUDA; none here"
        return info


def _dynamo_counts() -> tuple[int, int]:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())


class CompileWatch:
    """Times and counts the calls during which Dynamo compiled a new graph.

    The time is the host wall time of those calls: Dynamo and Inductor compile synchronously
    before launching, so it is compile time plus one launch. No device sync is added.
    """

    def __init__(self) -> None:
        self._graphs0, self._breaks0 = _dynamo_counts()
        self.compile_s = 0.0
        self.compiling_calls = 0
        self.calls = 0

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        graphs = _dynamo_counts()[0]
        t0 = time.perf_counter()
        out = fn(*args)
        self.calls += 1
        if _dynamo_counts()[0] != graphs:
            self.compile_s += time.perf_counter() - t0
            self.compiling_calls += 1
        return out

    def details(self) -> dict:
        graphs, breaks = _dynamo_counts()
        return {
            "compile_time_s": self.compile_s,
            "compiling_calls": self.compiling_calls,
            "recompiles": max(0, self.compiling_calls - 1),
            "graphs_compiled": graphs - self._graphs0,
            "graph_breaks": breaks - self._breaks0,
            "compiled_calls": self.calls,
        }


class CompiledInfer(TorchInfer):
    """TorchInfer whose model is compiled; the example batch is compiled for in prepare."""

    def __init__(
        self,
        model: torch.nn.Module,
        device: str,
        mode: PrecisionMode,
        options: CompileOptions,
        recipe: quant.Recipe | None = None,
    ) -> None:
        super().__init__(model, device, mode, recipe)
        self.options = options
        self.model = options.compile(self.model)
        self.watch = CompileWatch()
        self.warm_calls = options.warm_calls

    @property
    def compiling_calls(self) -> int:
        return self.watch.compiling_calls

    def warm_up(self, example: Batch) -> None:
        self.logits(example.to(self.device))
        synchronize(self.device)

    def logits(self, batch: Batch) -> torch.Tensor:
        return self.watch.call(super().logits, batch)

    def details(self) -> dict:
        return {**super().details(), **self.options.details(), **self.watch.details()}


class CompiledTrain(TorchTrain):
    """TorchTrain with a compiled forward (backward compiled by AOTAutograd on first use).
    Data-parallel, the DDP-wrapped model is compiled (Dynamo splits the graph at DDP's
    gradient buckets so the all-reduce still overlaps the backward pass).

    The model is evaluated after training in eager mode: same weights, no second compile.
    """

    def __init__(
        self,
        model,
        device,
        mode,
        optimizer,
        scheduler,
        options: CompileOptions,
        data_parallel,
        recipe: quant.Recipe | None = None,
    ) -> None:
        super().__init__(model, device, mode, optimizer, scheduler, data_parallel, recipe)
        self.options = options
        self.forward = options.compile(self.forward)
        self.watch = CompileWatch()

    @property
    def compiling_calls(self) -> int:
        return self.watch.compiling_calls

    def warm_shapes(self, examples: Sequence[Batch]) -> None:
        """One forward and backward per exact shape of the examples (`warm_calls` each where
        CUDA graphs are recorded), as inference warms: under dynamic=True the first batch of a
        graph can still specialize it (rows equal to width), so a later shape would recompile
        in a timed step. Gradients accumulate outside DDP's all-reduce and are zeroed
        afterwards; no optimizer step, and the RNG state restored, so weights, optimizer,
        schedule and dropout stream are as if nothing ran."""
        gpus = [torch.cuda.current_device()] if self.device == "cuda" else []
        with torch.random.fork_rng(devices=gpus), self._accumulating(last=False):
            warm_shapes(
                lambda batch: self.watch.call(self._backward, batch, 1),
                examples,
                self.options.warm_calls,
                _signature,
            )
        self.optimizer.zero_grad(set_to_none=True)
        synchronize(self.device)

    def step(self, batches: Sequence[Batch]) -> torch.Tensor:
        return self.watch.call(super().step, batches)

    def details(self) -> dict:
        return {
            **super().details(),
            **self.options.details(),
            **self.watch.details(),
            "evaluator": "eager",
        }


def _signature(batch: Batch) -> Hashable:
    return batch.signature


def _has_triton() -> bool:
    from torch.utils._triton import has_triton

    return has_triton()


def python_include() -> Path:
    """Where Triton looks for Python.h when it builds its launchers (triton/runtime/build.py:
    the default install scheme's include path, Debian's posix_local read as posix_prefix)."""
    scheme = sysconfig.get_default_scheme()
    return Path(
        sysconfig.get_paths(scheme="posix_prefix" if scheme == "posix_local" else scheme)["include"]
    )


def compiler_missing(device: str) -> str:
    """Why Inductor cannot build kernels for `device` here, or "" when it can. On CUDA,
    Triton builds its driver module and kernel launchers with the host C compiler ($CC if
    set, run as one program; else gcc or clang on PATH, as triton/runtime/build.py looks)
    against Python's headers, so a GPU box without either cannot compile."""
    if device == "cpu" and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "Inductor's CPU backend needs a C++ compiler (g++ or clang++) on PATH"
    if device != "cuda":
        return ""
    if not _has_triton():
        return "Inductor's CUDA backend needs Triton, which this torch install lacks"
    cc = os.environ.get("CC")
    words = shlex.split(cc) if cc else []
    if len(words) > 1:
        return (
            f"CC={cc!r} is a command line, but Triton runs $CC as one program: set CC to the "
            f"compiler alone (e.g. CC={words[-1]}), or unset it to use gcc or clang from PATH"
        )
    compilers = words or ["gcc", "clang"]
    if not any(shutil.which(c) for c in compilers):
        return (
            "Triton builds its kernel launchers with a host C compiler and finds none "
            f"({' or '.join(compilers)} not on PATH): install gcc or set CC"
        )
    include = python_include()
    if not (include / "Python.h").is_file():
        dev = f"python3.{sys.version_info.minor}-dev"
        return (
            f"Triton builds its kernel launchers against Python's headers and {include} has "
            f"no Python.h: install the Python development headers (e.g. {dev})"
        )
    return ""


class CompileBackend:
    name = "compile"
    data_parallel = True
    serves = True

    def probe(self, workload: str, device: str, precision: str) -> Capability:
        cap = torch_probe(workload, device, precision)
        reason = compiler_missing(device) if cap.ok else cap.reason
        return Capability(not reason, reason)

    def prepare_infer(
        self, model: torch.nn.Module, cell: CellSpec, example: Batch
    ) -> CompiledInfer:
        mode, recipe = session_mode(cell)
        session = CompiledInfer(model, cell.device, mode, CompileOptions.for_cell(cell), recipe)
        session.warm_up(example)
        return session

    def prepare_train(self, model, cell, optimizer, scheduler) -> CompiledTrain:
        mode, recipe = session_mode(cell)
        return CompiledTrain(
            model,
            cell.device,
            mode,
            optimizer,
            scheduler,
            CompileOptions.for_cell(cell),
            cell.nproc > 1,
            recipe,
        )
