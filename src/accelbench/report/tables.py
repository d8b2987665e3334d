"""Report tables: per-workload results with their warnings, cells that did not run, environment."""

from __future__ import annotations

import math

import pandas as pd

from accelbench.measure.env import SOFTWARE_KEYS
from accelbench.report.doc import Cell, Table
from accelbench.report.frame import Run, is_false
from accelbench.report.labels import is_auto, ordered, varying
from accelbench.report.ratios import MEASURED

SHAPE_COLUMNS = {
    "run": "run",
    "device": "device",
    "padding": "padding",
    "batch_size": "batch",
    "seq_len": "seq",
    "nproc": "procs",
}
LEGEND = (
    (
        "speedup",
        "time per sentence of fp32 eager of the same run and shape over this cell's, 95% CI "
        "(across processes with --repeats, else a bootstrap of one process's timings)",
    ),
    ("runs", "processes (--repeats) behind a figure: means, with 95% intervals across them"),
    (
        "ΔF1",
        "entity F1 points against fp32 eager (infer: the run's reference pass; train: "
        "the fp32 eager fine-tune of the same shape)",
    ),
    ("p50/p99", "per-batch latency (infer) or per-step time (train)"),
    (
        "memory",
        "cuda cells: device memory (torch's peak allocated, or for a runtime with its own "
        "allocator such as ORT the growth NVML saw); cpu cells: process peak RSS",
    ),
    (
        "scaling",
        "throughput of N training processes / (N × that of the 1-process cell of the same spec)",
    ),
    ("⚠", "hover or see the numbered notes"),
)


def missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def num(value: object) -> str:
    """Three significant figures or so, with thousands separators."""
    if missing(value):
        return "–"
    v = float(value)
    return format(v, ",.0f") if abs(v) >= 100 else format(v, ".1f" if abs(v) >= 10 else ".2f")


def runtime_text(row: pd.Series) -> str:
    """e.g. `compile [default]`; a missing compile mode (None, or NaN after a concat) shows
    nothing."""
    mode = row["compile_mode"]
    return row["runtime"] + ("" if missing(mode) else f" [{mode}]")


def shape_text(row: pd.Series, column: str) -> str:
    """A shape coordinate as shown; an auto batch shows the batch its search chose."""
    if column == "batch_size" and is_auto(row[column]):
        ran = row["batch_size_ran"]
        return "auto" if missing(ran) else f"auto ({int(ran)})"
    if column == "batch_size" and isinstance(row.get("batch_capped"), str):
        return f"{row[column]} (ran {int(row['batch_size_ran'])}) ⚠"
    return str(row[column])


def _speedup(row: pd.Series, baseline_unstable: bool) -> Cell:
    if missing(row["speedup"]):
        return Cell("–", numeric=True)
    if row["runtime"] == "eager" and row["precision"] == "fp32":
        return Cell("1 (baseline)", tone="muted", numeric=True)
    text = f"{row['speedup']:.2f}× [{row['speedup_low']:.2f}–{row['speedup_high']:.2f}]"
    if is_false(row["stable"]) or baseline_unstable:
        return Cell(text, "warn", "speedup rests on an unstable measurement (see notes)", True)
    tone = "good" if row["speedup_low"] > 1 else "bad" if row["speedup_high"] < 1 else None
    return Cell(text, tone, numeric=True)


def memory_cell(row: pd.Series) -> Cell:
    """A row's memory in MB: on CUDA the device's (torch's peak allocated, else the runtime's
    own allocator as NVML saw it: ORT's arena), never the host's RSS; on CPU the peak RSS."""
    if row["device"] != "cuda":
        return Cell(num(row["peak_rss_mb"]), numeric=True)
    memory = row["cuda_peak_allocated_mb"]
    if missing(memory):
        memory = row["device_memory_mb"]
    if missing(memory):
        reason = row["device_memory_reason"]
        return Cell("–", "muted", None if missing(reason) else reason, True)
    return Cell(num(memory), numeric=True)


def _repeated(row: pd.Series) -> bool:
    return not missing(row.get("repeats")) and row["repeats"] > 1


def f1_cell(row: pd.Series) -> Cell:
    if missing(row["f1"]):
        return Cell("–", numeric=True)
    text = f"{row['f1'] * 100:.1f}"
    if _repeated(row) and not missing(row["f1_low"]):
        text += f" ±{(row['f1_high'] - row['f1_low']) * 50:.1f}"
    if row["status"] == "numeric_fail":
        return Cell(text, "bad", row["reason"], True)
    if "not checked" in (row.get("f1_gate"), row.get("f1_verdict")):
        return Cell(text, "muted", f"not checked: {row['reference_undertrained']}", True)
    if row.get("role") == "reference" and isinstance(row.get("reference_undertrained"), str):
        return Cell(text, "bad", f"undertrained: {row['reference_undertrained']}", True)
    if is_false(row["f1_meaningful"]):
        return Cell(text, "muted", "random-init model: F1 shows the pipeline, not accuracy", True)
    verdict = row.get("f1_verdict")
    if isinstance(verdict, str) and verdict.startswith("not established"):
        return Cell(text, "muted", verdict, True)
    target = row.get("accuracy_target")
    if isinstance(target, str) and not missing(row.get("f1_required")):
        gate = f"held: at least {target} of the fp32 reference's F1 ({row['f1_required']:.4f})"
        return Cell(text, None, gate, True)
    return Cell(text, numeric=True)


def delta_cell(row: pd.Series) -> Cell:
    if missing(row["delta_f1"]):
        return Cell("–", numeric=True)
    text = f"{row['delta_f1'] * 100:+.2f}"
    if not missing(row.get("delta_f1_low")):
        low, high = row["delta_f1_low"] * 100, row["delta_f1_high"] * 100
        return Cell(f"{text} [{low:+.2f}, {high:+.2f}]", numeric=True)
    return Cell(text, numeric=True)


def _throughput(row: pd.Series) -> Cell:
    text = num(row["samples_per_s"])
    note = None
    if _repeated(row) and not missing(row["samples_per_s_low"]):
        half = (row["samples_per_s_high"] - row["samples_per_s_low"]) / 2
        text += f" ±{half / row['samples_per_s']:.1%}"
        within = "" if missing(row["cv"]) else f", within-process CV {row['cv']:.1%}"
        note = (
            f"mean of {row['repeats']} processes, 95% CI {num(row['samples_per_s_low'])}–"
            f"{num(row['samples_per_s_high'])}; between-process CV {row['between_cv']:.1%}{within}"
        )
    if is_false(row["stable"]):
        return Cell(text, "warn", f"unstable: {row['unstable_reasons']}", True)
    return Cell(text, None, note, True)


def _mfu(row: pd.Series) -> Cell:
    if missing(row["mfu"]):
        return Cell("–", "muted", row.get("mfu_reason") or None, True)
    return Cell(f"{row['mfu'] * 100:.1f}%", numeric=True)


def _scaling(row: pd.Series) -> Cell:
    if row["nproc"] == 1:
        return Cell("(1 process)", tone="muted", numeric=True)
    if missing(row["scaling_efficiency"]):
        return Cell("–", "muted", "no ok 1-process cell of the same spec to scale against", True)
    return Cell(f"{row['scaling_efficiency']:.0%} of {row['nproc']}×", numeric=True)


def workload_table(df: pd.DataFrame, workload: str) -> Table | None:
    """Measured cells of one workload: runtime × precision (× the shape coordinates that vary)."""
    part = df[(df["workload"] == workload) & df["status"].isin(MEASURED)]
    if part.empty:
        return None
    shapes = [c for c in SHAPE_COLUMNS if c in varying(part)]
    with_mfu = part["mfu"].notna().any()
    with_scaling = bool((part["nproc"] > 1).any())
    with_runs = bool((part["repeats"] > 1).any())
    part = ordered(part)
    unstable_base = {
        (r.run_id, r.device, r.padding, r.batch_size, r.seq_len)
        for r in part.itertuples()
        if r.runtime == "eager" and r.precision == "fp32" and is_false(r.stable)
    }
    columns = [SHAPE_COLUMNS[c] for c in shapes]
    columns += ["runtime", "precision", "seq/s", "tok/s", "speedup", "F1 %", "ΔF1", "p50 ms"]
    columns += ["p99 ms", "memory MB", *(["MFU"] if with_mfu else [])]
    columns += [*(["scaling"] if with_scaling else []), *(["runs"] if with_runs else []), "status"]
    rows = []
    for _, row in part.iterrows():
        p50, p99 = (
            ("latency_p50_ms", "latency_p99_ms")
            if workload == "infer"
            else ("step_p50_ms", "step_p99_ms")
        )
        key = (row["run_id"], row["device"], row["padding"], row["batch_size"], row["seq_len"])
        status = row["status"] + (" (reference)" if row["role"] != "cell" else "")
        rows.append(
            (
                *(Cell(shape_text(row, c)) for c in shapes),
                Cell(runtime_text(row)),
                Cell(row["precision"]),
                _throughput(row),
                Cell(num(row["tokens_per_s"]), numeric=True),
                _speedup(row, key in unstable_base),
                f1_cell(row),
                delta_cell(row),
                Cell(num(row[p50]), numeric=True),
                Cell(num(row[p99]), numeric=True),
                memory_cell(row),
                *([_mfu(row)] if with_mfu else []),
                *([_scaling(row)] if with_scaling else []),
                *([Cell(str(row["repeats"]), numeric=True)] if with_runs else []),
                Cell(status, "bad" if row["status"] != "ok" else None),
            )
        )
    legend = tuple(
        kv
        for kv in LEGEND
        if (with_scaling or kv[0] != "scaling") and (with_runs or kv[0] != "runs")
    )
    if not with_mfu:
        reasons = ", ".join(sorted(set(part["mfu_reason"].dropna())))
        legend += (("MFU", f"not shown ({reasons or 'no peak known'})"),)
    return Table(tuple(columns), tuple(rows), legend=legend)


def not_run_table(df: pd.DataFrame) -> Table | None:
    part = df[~df["status"].isin(MEASURED)]
    if part.empty:
        return None
    rows = tuple(
        (
            Cell(r.label),
            Cell(r.status, "muted" if r.status == "unsupported" else "bad"),
            Cell(r.reason),
        )
        for r in part.itertuples()
    )
    return Table(("cell", "status", "reason"), rows)


ENV_ROWS = {
    "Machine": (
        "hostname",
        "cpu",
        "cpu_isa",
        "cpu_bf16",
        "cpu_count",
        "cpu_affinity",
        "gpu",
        "gpu_count",
        "gpu_memory_gb",
        "gpu_capability",
        "driver",
        "platform",
    ),
    "Software": SOFTWARE_KEYS,
    "Flags": ("torch_threads", "env"),
}
SETTINGS = (
    "model",
    "checkpoint",
    "checkpoint trained",
    "dataset",
    "split_hash",
    "train_sentences",
    "test_sentences",
    "train_steps",
    "epochs",
    "lr",
    "seed",
    "eval_limit",
    "warmup_iters",
    "min_iters",
    "min_time",
    "f1_tolerance",
    "accuracy_target",
    "threads",
)


def _text(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "–" if value is None else str(value)


def _grid(title: str, keys: tuple[str, ...], runs: list[str], values: list[dict]) -> Table:
    """key × run; a value that differs between runs is marked."""
    rows = []
    for key in keys:
        texts = [_text(v.get(key)) for v in values]
        if all(t == "–" for t in texts):
            continue
        differ = len(set(texts)) > 1
        rows.append(
            (
                Cell(key),
                *(
                    Cell(t, "warn" if differ else None, "differs between runs" if differ else None)
                    for t in texts
                ),
            )
        )
    heads = ("value",) if len(runs) == 1 else tuple(runs)
    return Table(("", *heads), tuple(rows), title, inline=True)


def _checkpoint(run: Run) -> dict:
    """A --checkpoint run's settings as they were: the checkpoint and how it was trained, from
    its own metadata; nothing was fine-tuned here, so no train_steps, epochs or lr."""
    ckpt = next(
        (c for rec in run.records if (c := (rec.get("details") or {}).get("checkpoint"))),
        None,
    )
    if not run.meta.get("config", {}).get("checkpoint") and ckpt is None:
        return {}
    out: dict = {k: "– (--checkpoint: not trained in this run)" for k in ("train_steps", "lr")}
    out["epochs"] = None
    if ckpt is None:  # a run recorded before checkpoints described themselves
        out["checkpoint"] = run.meta["config"]["checkpoint"]
        out["model"] = "–"
        return out
    out["checkpoint"] = ckpt["path"]
    base = ckpt.get("base_model")
    out["model"] = f"{ckpt.get('model_type') or '?'}" + (
        f", fine-tuned from {base}" if base else ""
    )
    trained = ckpt.get("trained")
    if trained:
        f1 = ckpt.get("test_f1")
        out["checkpoint trained"] = (
            f"{trained['label']}: {trained['train_steps']} steps ({trained['epochs']:.2f} "
            f"epochs), lr {trained['lr']:g}, seed {trained['seed']}, on {ckpt.get('dataset')}"
            + ("" if f1 is None else f"; test F1 {f1:.4f}")
            + f"; run {trained['run_dir']}"
        )
    else:
        out["checkpoint trained"] = "not written by accelbench: no record of its training"
    return out


def environment_tables(runs: list[Run]) -> list[Table]:
    """Machine, software, flags and run settings: one column per run."""
    names = [r.name for r in runs]
    envs = [next((rec["env"] for rec in r.records if rec.get("env")), {}) for r in runs]
    settings = []
    for r in runs:
        data = next((rec["data"] for rec in r.records if rec.get("data")), {})
        config = r.meta.get("config", {})
        dataset = "synthetic" if config.get("synthetic") else config.get("dataset")
        settings.append(
            {**config, **data, "dataset": data.get("dataset", dataset), **_checkpoint(r)}
        )
    tables = [_grid(title, keys, names, envs) for title, keys in ENV_ROWS.items()]
    tables.append(_grid("Run settings", SETTINGS, names, settings))
    flags: dict[str, dict] = {}
    for r in runs:
        for rec in r.records:
            pf = (rec.get("details") or {}).get("precision_flags")
            if pf:
                flags.setdefault(rec["spec"]["precision"], pf)
    if flags:
        keys = sorted({k for f in flags.values() for k in f})
        rows = tuple((Cell(p), *(Cell(_text(f.get(k))) for k in keys)) for p, f in flags.items())
        tables.append(Table(("precision", *keys), rows, "Precision flags as run", inline=True))
    return tables
