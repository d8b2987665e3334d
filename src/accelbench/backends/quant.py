"""PyTorch int8, float8 and int4 weight-only through torchao, for the eager and compile runtimes.

A quantized precision is a plain precision mode (the dtype of everything torchao leaves alone)
plus one torchao transform of the model's linear layers:

- `int8`: `Int8DynamicActivationInt8WeightConfig` (int8 weights, activations quantized per
  token at run time, `torch._int_mm`); inference on CPU (fp32 around it) and CUDA (bf16).
- `fp8`: CUDA, compute capability >= 8.9. Inference: `Float8DynamicActivationFloat8WeightConfig`
  over bf16 weights (e4m3, `torch._scaled_mm`). Training: `convert_to_float8_training` under
  bf16 autocast with fp32 master weights. Scaling per tensor or per row (`--fp8-recipe`).
- `int4-weight`: `Int4WeightOnlyConfig` (group 128, tinygemm's tile-packed format, bf16),
  inference on CUDA only.

Only linears whose both dimensions are multiples of 16 are converted (the fp8 and int8 matmul
kernels' shape rule; it leaves the token classifier of a few labels in high precision). Which
torchao and torch pair is supported is read from installed metadata, without importing torchao.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from accelbench.backends.base import Capability
from accelbench.backends.precision import PrecisionMode
from accelbench.config.specs import FP8_RECIPES
from accelbench.measure.env import dist_version

PRECISIONS = ("int8", "fp8", "int4-weight")
FP8_MIN_CAPABILITY = (8, 9)  # Ada and Hopper: the first GPUs with fp8 Tensor Cores
EXTRA = "pip install 'accelbench[quant]'"
# torchao versions this code is written against, [low, high); each with the oldest torch it
# supports (torchao 0.18.0's release notes: PyTorch 2.11 or newer)
TORCHAO_RANGE = ((0, 18), (0, 19))
TORCHAO_MIN_TORCH = {(0, 18): (2, 11)}
SHAPE_MULTIPLE = 16

_BF16 = torch.bfloat16
# the precision mode around each transform, per device and workload
_MODES = {
    ("int8", "cpu", "infer"): PrecisionMode("int8", None, None, False, False, False, False),
    ("int8", "cuda", "infer"): PrecisionMode("int8", None, _BF16, False, False, False, True),
    ("fp8", "cuda", "infer"): PrecisionMode("fp8", None, _BF16, False, False, False, True),
    ("fp8", "cuda", "train"): PrecisionMode("fp8", _BF16, None, False, False, True, True),
    ("int4-weight", "cuda", "infer"): PrecisionMode(
        "int4-weight", None, _BF16, False, False, False, True
    ),
}


def _release(version: str | None) -> tuple[int, int] | None:
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Stack:
    """What decides whether a quantized cell can run: versions and the GPU's capability."""

    torchao: str | None
    torch: str
    cuda_available: bool
    capability: tuple[int, int] | None  # of CUDA device 0
    gpu: str | None

    @classmethod
    def here(cls) -> Stack:
        cuda = torch.cuda.is_available()
        return cls(
            torchao=dist_version("torchao"),
            torch=torch.__version__,
            cuda_available=cuda,
            capability=tuple(torch.cuda.get_device_capability(0)) if cuda else None,
            gpu=torch.cuda.get_device_name(0) if cuda else None,
        )


def torchao_problem(stack: Stack) -> str:
    """Why the installed torchao cannot be used with this torch, or ""."""
    if stack.torchao is None:
        return f"torchao is not installed: {EXTRA}"
    release = _release(stack.torchao)
    low, high = TORCHAO_RANGE
    if release is None or not low <= release < high:
        return (
            f"torchao {stack.torchao} is not the version accelbench uses "
            f"(>={low[0]}.{low[1]},<{high[0]}.{high[1]}): {EXTRA}"
        )
    need = TORCHAO_MIN_TORCH[release]
    have = _release(stack.torch)
    if have is None or have < need:
        return f"torchao {stack.torchao} needs torch >= {need[0]}.{need[1]} (found {stack.torch})"
    return ""


def capability(workload: str, device: str, precision: str, stack: Stack) -> Capability:
    """Whether eager/compile can run this torchao precision: the rules, then the stack."""
    infer = "infer" if workload == "serve" else workload
    if infer == "train" and precision != "fp8":
        return Capability(False, f"{precision} is an inference mode here; train with bf16 or fp8")
    if precision == "fp8" and device == "cpu":
        return Capability(
            False, "fp8 needs a CUDA GPU of compute capability >= 8.9 (Ada, Hopper); not the CPU"
        )
    if precision == "int4-weight" and device == "cpu":
        return Capability(
            False, "torchao's int4 weight-only kernels (tinygemm) run on CUDA; not the CPU"
        )
    problem = torchao_problem(stack)
    if problem:
        return Capability(False, problem)
    if device == "cuda":
        if not stack.cuda_available:
            return Capability(False, f"no CUDA device visible to torch {stack.torch}")
        if precision == "fp8" and (stack.capability or (0, 0)) < FP8_MIN_CAPABILITY:
            major, minor = stack.capability or (0, 0)
            return Capability(
                False,
                f"fp8 needs compute capability >= 8.9; {stack.gpu} is {major}.{minor}",
            )
    return Capability(True)


def mode(precision: str, device: str, workload: str) -> PrecisionMode:
    """The precision mode around the transform (autocast, weight dtype of the rest)."""
    return _MODES[(precision, device, "infer" if workload == "serve" else workload)]


def convertible(module: torch.nn.Module, fqn: str = "") -> bool:
    """A linear layer the int8/fp8 kernels take: both dimensions multiples of 16."""
    return (
        isinstance(module, torch.nn.Linear)
        and module.in_features % SHAPE_MULTIPLE == 0
        and module.out_features % SHAPE_MULTIPLE == 0
    )


@dataclass(frozen=True)
class Recipe:
    """One quantized precision as torchao builds it, and what the record says about it."""

    precision: str
    workload: str  # train | infer
    fp8_recipe: str = "tensorwise"

    def __post_init__(self) -> None:
        if self.fp8_recipe not in FP8_RECIPES:
            raise ValueError(f"fp8 recipe {self.fp8_recipe!r} is not one of {FP8_RECIPES}")

    @classmethod
    def for_cell(cls, precision: str, workload: str, extra: tuple[tuple[str, str], ...]) -> Recipe:
        options = dict(extra)
        return cls(
            precision,
            "train" if workload == "train" else "infer",
            options.get("fp8_recipe", "tensorwise"),
        )

    @property
    def api(self) -> str:
        """The torchao entry point and its configuration, as the record names them."""
        if self.precision == "int8":
            return "quantize_(Int8DynamicActivationInt8WeightConfig())"
        if self.precision == "int4-weight":
            return "quantize_(Int4WeightOnlyConfig(group_size=128, tile_packed_to_4d))"
        if self.workload == "train":
            config = f"Float8LinearConfig.from_recipe_name({self.fp8_recipe!r})"
            return f"convert_to_float8_training({config})"
        granularity = "PerRow()" if self.fp8_recipe == "rowwise" else "PerTensor()"
        return f"quantize_(Float8DynamicActivationFloat8WeightConfig(granularity={granularity}))"

    def config(self) -> object:
        """The torchao configuration object (imports torchao)."""
        from torchao import quantization as q

        if self.precision == "int8":
            return q.Int8DynamicActivationInt8WeightConfig()
        if self.precision == "int4-weight":
            from torchao.quantization.quantize_.workflows.int4.int4_packing_format import (
                Int4PackingFormat,
            )

            return q.Int4WeightOnlyConfig(
                group_size=128, int4_packing_format=Int4PackingFormat.TILE_PACKED_TO_4D
            )
        if self.workload == "train":
            from torchao.float8 import Float8LinearConfig

            return Float8LinearConfig.from_recipe_name(self.fp8_recipe)
        granularity = q.PerRow() if self.fp8_recipe == "rowwise" else q.PerTensor()
        return q.Float8DynamicActivationFloat8WeightConfig(granularity=granularity)

    def record(self) -> dict:
        info = {"library": "torchao", "torchao": dist_version("torchao"), "api": self.api}
        if self.precision == "fp8":
            info["fp8_recipe"] = self.fp8_recipe
        return info

    def apply(self, model: torch.nn.Module) -> dict:
        """Convert the model's eligible linears in place; what was done, for the record."""
        linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
        chosen = [n for n, m in model.named_modules() if convertible(m)]
        if self.precision == "fp8" and self.workload == "train":
            from torchao.float8 import convert_to_float8_training

            convert_to_float8_training(model, config=self.config(), module_filter_fn=convertible)
        else:
            from torchao.quantization import quantize_

            quantize_(model, self.config(), filter_fn=convertible)
        kinds = sorted({type(m.weight).__name__ for n, m in model.named_modules() if n in chosen})
        return {
            **self.record(),
            "linears_converted": len(chosen),
            "linears_kept": sorted(set(linears) - set(chosen)),
            "converted_types": sorted(
                {type(m).__name__ for n, m in model.named_modules() if n in chosen}
            ),
            "weight_types": kinds,
        }
