"""Environment fingerprint: enough to say whether two records were measured alike."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import accelbench

# the fingerprint's software versions, as reports list them and comparisons check them
SOFTWARE_KEYS = (
    "accelbench",
    "git_sha",
    "git_dirty",
    "python",
    "torch",
    "cuda",
    "cudnn",
    "transformers",
    "onnxruntime",
    "torchao",
    "numpy",
    "seqeval",
    "loadgen",
)
ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF",
    "TORCH_COMPILE_DEBUG",
    "NVIDIA_TF32_OVERRIDE",
)


def dist_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that compute in bf16 natively


@functools.cache
def cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


# x86 CPU features that decide how fast the precisions run: vector width, int8 dot products
# (VNNI), bf16/fp16 arithmetic, AMX tiles
FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
)


def cpu_topology(cpuinfo: str) -> dict:
    """Sockets, physical cores and logical CPUs as /proc/cpuinfo lists them (x86: `physical
    id` and `core id` per logical CPU; where those are absent, every CPU counts as a core)."""
    cpus = []
    for block in cpuinfo.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (x.partition(":") for x in block.splitlines())
        )
        if "processor" in fields:
            cpus.append(fields)
    if not cpus:
        return {"cpu_sockets": None, "cpu_cores": None, "cpu_logical": None}
    cores = {(c.get("physical id"), c.get("core id", c["processor"])) for c in cpus}
    return {
        "cpu_sockets": len({socket for socket, _ in cores}),
        "cpu_cores": len(cores),
        "cpu_logical": len(cpus),
    }


def ram_gb(meminfo: str) -> float | None:
    """MemTotal of /proc/meminfo in GB (1e9 bytes)."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) * 1024 / 1e9, 1)
    return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_bf16(flags: frozenset[str]) -> bool | None:
    """Whether the CPU has bf16 instructions (None where /proc/cpuinfo says nothing): without
    them oneDNN emulates bf16 and CPU bf16 cells run several times slower than fp32."""
    return any(f in flags for f in BF16_FLAGS) if flags else None


def git_state() -> dict:
    src = Path(accelbench.__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=src,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        return {"git_sha": sha, "git_dirty": bool(dirty.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "git_dirty": None}


def _gpu() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"gpu": None, "gpu_count": 0}
    props = torch.cuda.get_device_properties(0)
    info = {
        "gpu": props.name,
        "gpu_count": torch.cuda.device_count(),
        "gpu_memory_gb": round(props.total_memory / 1e9, 1),
        "gpu_capability": f"{props.major}.{props.minor}",
        "gpu_sm_count": props.multi_processor_count,
    }
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        info["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        info["driver"] = None
    return info


# distributions that install the `onnxruntime` module; more than one at once is a broken install
# (the last one unpacked wins, e.g. onnxruntime over onnxruntime-gpu drops the CUDA provider)
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-qnn",
    "onnxruntime-training",
)


def ort_distributions() -> dict[str, str]:
    """{distribution: version} of each ONNX Runtime distribution installed."""
    found = {name: dist_version(name) for name in ORT_DISTRIBUTIONS}
    return {name: version for name, version in found.items() if version}


@functools.cache
def fingerprint() -> dict:
    import torch

    try:
        import onnxruntime

        ort_version, ort_providers = onnxruntime.__version__, onnxruntime.get_available_providers()
    except ImportError:
        ort_version, ort_providers = None, []
    return {
        "accelbench": accelbench.__version__,
        **git_state(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "transformers": dist_version("transformers"),
        "onnxruntime": ort_version,
        "onnxruntime_distributions": ort_distributions(),
        "onnxruntime_providers": ort_providers,
        "torchao": dist_version("torchao"),
        "numpy": dist_version("numpy"),
        "seqeval": dist_version("seqeval"),
        "loadgen": dist_version("mlcommons-loadgen"),
        "cpu": cpu_model(),
        "cpu_isa": torch.backends.cpu.get_cpu_capability(),
        "cpu_bf16": cpu_bf16(cpu_flags()),
        "cpu_flags": [f for f in FLAGS_OF_INTEREST if f in cpu_flags()],
        **cpu_topology(_read("/proc/cpuinfo")),
        "numa_nodes": len(list(Path("/sys/devices/system/node").glob("node[0-9]*"))) or None,
        "ram_gb": ram_gb(_read("/proc/meminfo")),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
        **_gpu(),
    }
