"""Frozen, validated configuration: the run as asked for, and the cells it expands into."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import typing
from dataclasses import asdict, dataclass, field, fields

from accelbench.config.fields import coerce
from accelbench.config.runtimes import runtime_targets
from accelbench.errors import UserError

WORKLOADS = ("train", "infer", "serve")
SCENARIOS = ("single-stream", "server", "offline")  # MLPerf LoadGen scenarios of serve cells
DEVICES = ("cpu", "cuda")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "bf16-weights", "fp16-weights", "int8")
PRECISIONS += ("fp8", "int4-weight")  # torchao (backends/quant.py); int8 also ORT's
FP8_RECIPES = ("tensorwise", "rowwise")  # torchao float8 scaling: one scale per tensor / row
PADDINGS = ("pad-max", "dynamic", "bucket")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
AUTO_BATCH = "auto"  # the batch size "auto": each cell searches for its own (autobatch.py)
BatchSize = int | typing.Literal["auto"]
REFERENCE_BATCH = 16  # the reference fine-tune's batch when only "auto" is asked for

# CellSpec fields added after the first release, with the value that leaves a cell as it was:
# left out of the stored spec and the cell_id hash at that value, so earlier run directories
# still resume and compare.
ADDED_FIELDS = {"nproc": 1, "grad_accum": 1, "scenario": None}
# --latency-bound-ms when not given: the server scenario's p99 bound per device
LATENCY_BOUND_MS = {"cpu": 50.0, "cuda": 10.0}
# LoadGen's early stopping cannot estimate a p90 from fewer queries: a run below is never VALID
EARLY_STOPPING_MIN_QUERIES = 64


def _check_choice(key: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    if not values:
        raise UserError(f"--{key} is empty: give at least one of {', '.join(allowed)}")
    for value in values:
        if value not in allowed:
            raise UserError(
                f"unknown {key[:-1] if key.endswith('s') else key} '{value}': "
                f"choose from {', '.join(allowed)}"
            )


def target_f1(text: str) -> tuple[bool, float]:
    """--target-f1 as (relative to the fp32 reference's dev F1?, value): "0.35" is an entity F1
    of 0.35 on the dev split, "ref:0.99" is 99 % of the reference's final dev F1."""
    relative = text.startswith("ref:")
    number = text.removeprefix("ref:")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not 0 < value <= (2.0 if relative else 1.0):
        raise UserError(
            f"--target-f1 must be an F1 in (0, 1] (e.g. 0.35) or ref:FRACTION of the fp32 "
            f"reference's dev F1 (e.g. ref:0.99), got {text!r}"
        )
    return relative, value


def accuracy_target(text: str) -> float:
    """--accuracy-target as a fraction of the fp32 reference's entity F1: "99%" is MLPerf's
    BERT-99 (0.99), "99.9%" BERT-99.9."""
    try:
        value = float(text.removesuffix("%")) / 100 if text.endswith("%") else math.nan
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise UserError(
            "--accuracy-target must be a percentage of the fp32 reference's F1 in (0%, 100%] "
            f"(e.g. 99% or 99.9%, MLPerf's BERT-99 and BERT-99.9), got {text!r}"
        )
    return value


def _check_positive(key: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise UserError(f"--{key} must be positive, got {value}")


@dataclass(frozen=True)
class RunConfig:
    """Everything `accelbench run` was asked for. Typed and validated at construction: a tuple
    field also takes a list or a single value (`precisions="fp32"` is `("fp32",)`)."""

    model: str = "bundled"
    dataset: str = "bundled"
    workloads: tuple[str, ...] = ("train", "infer")
    runtimes: tuple[str, ...] = ("eager",)
    devices: tuple[str, ...] = ("cpu",)
    precisions: tuple[str, ...] = ("fp32", "bf16")
    paddings: tuple[str, ...] = ("dynamic",)
    batch_sizes: tuple[BatchSize, ...] = (16,)
    seq_lens: tuple[int, ...] = (128,)
    train_steps: int | None = 300
    epochs: float | None = None
    eval_limit: int | None = None
    lr: float = 3e-4
    warmup_ratio: float = 0.1
    seed: int = 42
    synthetic: bool = False
    checkpoint: str | None = None
    compile_mode: str = "default"
    f1_tolerance: float = 1.0
    accuracy_target: str | None = None  # "99%": F1 >= 99 % of the reference's (replaces points)
    warmup_iters: int = 3
    min_iters: int = 10
    min_time: float = 2.0
    cell_timeout: float = 1800.0
    threads: int | None = None
    ceilings: bool = True
    ceilings_file: str | None = None  # matmul/copy ceilings measured before (JSON), reused
    tokenizer: str | None = None  # tokenizer directory overriding the model's own
    oom_backoff: bool = False
    in_process: bool = False  # every cell in the calling process (no timeout, no isolation)
    keep_checkpoint: bool = True  # False: RUN_DIR/checkpoint is deleted when the run completes
    grad_accum: int = 1
    nprocs: tuple[int, ...] = (1,)
    dist_timeout: float = 300.0
    repeats: int = 1  # each cell this many times, each in a fresh process, interleaved
    target_f1: str | None = None  # dev F1 to reach: "0.35", or "ref:0.99" (of the reference's)
    eval_every: int | None = None  # training steps between dev-F1 points (default: 5 points)
    scenarios: tuple[str, ...] = SCENARIOS
    latency_bound_ms: float | None = None  # None: LATENCY_BOUND_MS of the cell's device
    serve_min_time: float = 5.0
    serve_min_queries: int = 700
    serve_max_wait_ms: float = 2.0
    fp8_recipe: str = "tensorwise"  # fp8 cells' scaling (FP8_RECIPES), in their cell_id

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(RunConfig)
        if isinstance(self.target_f1, int | float) and not isinstance(self.target_f1, bool):
            object.__setattr__(self, "target_f1", str(self.target_f1))  # 0.35 as a number
        for f in fields(self):
            value = coerce(f.name, getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, value)
        _check_choice("workloads", self.workloads, WORKLOADS)
        _check_choice("runtimes", self.runtimes, tuple(runtime_targets()))
        _check_choice("devices", self.devices, DEVICES)
        _check_choice("precisions", self.precisions, PRECISIONS)
        _check_choice("paddings", self.paddings, PADDINGS)
        _check_choice("compile-mode", (self.compile_mode,), COMPILE_MODES)
        _check_choice("scenarios", self.scenarios, SCENARIOS)
        _check_choice("fp8-recipe", (self.fp8_recipe,), FP8_RECIPES)
        if self.ceilings_file and not self.ceilings:
            raise UserError("--no-ceilings and --ceilings FILE contradict each other: give one")
        for key in ("batch_sizes", "seq_lens"):
            if not getattr(self, key):
                raise UserError(f"--{key[:-1].replace('_', '-')} is empty: give at least one")
        for value in self.batch_sizes:
            if value != AUTO_BATCH:
                _check_positive("batch-size", value)
        if not self.nprocs:
            raise UserError("--nproc is empty: give at least one process count")
        for value in self.nprocs:
            _check_positive("nproc", value)
        if max(self.nprocs) > 1 and AUTO_BATCH in self.batch_sizes:
            raise UserError(
                "--batch-size auto searches one process's batch: with --nproc above 1 "
                "give the per-rank batch size"
            )
        if max(self.nprocs) > 1 and "train" not in self.workloads:
            raise UserError(
                f"--nproc {','.join(map(str, self.nprocs))} distributes training only: "
                "add train to --workloads"
            )
        for key in (
            "train_steps",
            "epochs",
            "eval_limit",
            "lr",
            "min_iters",
            "min_time",
            "cell_timeout",
            "threads",
            "grad_accum",
            "dist_timeout",
            "repeats",
            "latency_bound_ms",
            "serve_min_time",
            "serve_min_queries",
        ):
            _check_positive(key.replace("_", "-"), getattr(self, key))
        for seq_len in self.seq_lens:
            if seq_len < 8 or seq_len > 512:
                raise UserError(f"--seq-len must be between 8 and 512, got {seq_len}")
        if self.train_steps is None and self.epochs is None:
            raise UserError("give --train-steps or --epochs")
        if self.f1_tolerance < 0:
            raise UserError(f"--f1-tolerance must be >= 0, got {self.f1_tolerance}")
        if self.target_f1 is not None:
            target_f1(self.target_f1)
        if self.accuracy_target is not None:
            accuracy_target(self.accuracy_target)
        if "serve" in self.workloads and self.serve_min_queries < EARLY_STOPPING_MIN_QUERIES:
            raise UserError(
                f"--serve-min-queries {self.serve_min_queries} can never give a VALID serve "
                f"cell: LoadGen's early stopping needs at least {EARLY_STOPPING_MIN_QUERIES} "
                "queries; give 64 or more"
            )
        _check_positive("eval-every", self.eval_every)
        if self.synthetic and "serve" in self.workloads:
            raise UserError(
                "serve cells score entity F1 on the test split's sentences: drop --synthetic "
                "or serve from --workloads"
            )
        if "serve" in self.workloads and AUTO_BATCH in self.batch_sizes:
            raise UserError(
                "serve cells batch up to --batch-size, which auto cannot pick: give a number"
            )
        if self.serve_max_wait_ms < 0:
            raise UserError(f"--serve-max-wait-ms must be >= 0, got {self.serve_max_wait_ms}")

    def latency_bound(self, device: str) -> float:
        """The server scenario's p99 latency bound in ms on `device`."""
        return self.latency_bound_ms or LATENCY_BOUND_MS[device]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RunConfig:
        data = dict(data)
        for old in ("batch_size", "seq_len"):  # run.json written before sweeps existed
            if old in data:
                data[old + "s"] = [data.pop(old)]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown run setting(s) {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class CellSpec:
    """One cell of the matrix. Its cell_id is a stable hash of these fields."""

    workload: str
    runtime: str
    device: str
    precision: str
    padding: str
    batch_size: BatchSize
    seq_len: int
    model: str
    dataset: str
    seed: int
    synthetic: bool
    train_steps: int | None = None
    epochs: float | None = None
    eval_limit: int | None = None
    compile_mode: str | None = None
    checkpoint: str | None = None
    # (key, value) coordinates beyond the named fields (none built in; part of the cell_id)
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    nproc: int = 1  # training processes (data-parallel ranks)
    grad_accum: int = 1  # micro-batches per optimizer step
    scenario: str | None = None  # serve cells: the LoadGen scenario (SCENARIOS)

    @property
    def cell_id(self) -> str:
        blob = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def auto_batch(self) -> bool:
        return self.batch_size == AUTO_BATCH

    @property
    def label(self) -> str:
        mode = f"[{self.compile_mode}]" if self.runtime == "compile" else ""
        batch = "auto" if self.auto_batch else str(self.batch_size)
        accum = f"x{self.grad_accum}" if self.grad_accum > 1 else ""
        procs = f" x{self.nproc}" if self.nproc > 1 else ""
        scenario = f" {self.scenario}" if self.scenario else ""
        return (
            f"{self.workload} {self.runtime}{mode} {self.device} {self.precision} "
            f"{self.padding} b{batch}{accum} s{self.seq_len}{procs}{scenario}"
        )

    def to_json(self) -> dict:
        """The spec as stored and hashed. Fields added after the first release are left out
        at their default, so cells that do not use them keep their cell_id."""
        data = asdict(self)
        for name, default in ADDED_FIELDS.items():
            if data[name] == default:
                del data[name]
        return data


def cell_for(
    config: RunConfig,
    workload: str,
    runtime: str,
    device: str,
    precision: str,
    padding: str,
    batch_size: BatchSize | None = None,
    seq_len: int | None = None,
    nproc: int = 1,
    scenario: str | None = None,
) -> CellSpec:
    """The cell of `config` with these coordinates (workload-specific fields filled in).

    Batch size and sequence length default to the first of the swept values."""
    train = workload == "train"
    return CellSpec(
        workload=workload,
        runtime=runtime,
        device=device,
        precision=precision,
        padding="pad-max" if config.synthetic else padding,
        batch_size=config.batch_sizes[0] if batch_size is None else batch_size,
        seq_len=config.seq_lens[0] if seq_len is None else seq_len,
        model=config.model,
        dataset="synthetic" if config.synthetic else config.dataset,
        seed=config.seed,
        synthetic=config.synthetic,
        train_steps=config.train_steps if train else None,
        epochs=config.epochs if train and config.train_steps is None else None,
        eval_limit=config.eval_limit,
        compile_mode=config.compile_mode if runtime == "compile" else None,
        checkpoint=None if train else (config.checkpoint or "run-reference"),
        grad_accum=config.grad_accum if train else 1,
        nproc=nproc if train else 1,
        scenario=scenario if workload == "serve" else None,
        extra=(("fp8_recipe", config.fp8_recipe),) if precision == "fp8" else (),
    )


def expand(config: RunConfig) -> list[CellSpec]:
    """The matrix: workloads x runtimes x devices x precisions x paddings x batch sizes x
    sequence lengths (x process counts, for training; x scenarios, for serving), train cells
    first."""
    paddings = ("pad-max",) if config.synthetic else config.paddings
    cells = [
        cell_for(config, w, r, d, p, pad, b, s, n, sc)
        for w, r, d, p, pad, b, s in itertools.product(
            config.workloads,
            config.runtimes,
            config.devices,
            config.precisions,
            paddings,
            config.batch_sizes,
            config.seq_lens,
        )
        for n in (config.nprocs if w == "train" else (1,))
        for sc in (config.scenarios if w == "serve" else (None,))
    ]
    return sorted(dict.fromkeys(cells), key=lambda c: WORKLOADS.index(c.workload))


def reference_cell_on(config: RunConfig, device: str) -> CellSpec:
    """The fp32 eager cell on `device` that every inference cell of the run is held against:
    the fine-tune whose checkpoint they use, or with --checkpoint an inference pass over it."""
    workload = "infer" if config.checkpoint else "train"
    return cell_for(
        config, workload, "eager", device, "fp32", config.paddings[0], reference_batch(config)
    )


def reference_batch(config: RunConfig) -> int:
    """The first explicit batch size: a searched one would make F1 depend on the machine."""
    return next((b for b in config.batch_sizes if b != AUTO_BATCH), REFERENCE_BATCH)
