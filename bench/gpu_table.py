"""Compact table of every record under the given run directories, next to the H200 reference
figures of bench/h200_reference.json (bert-base architecture, seq 128; given to the project,
not measured by accelbench) where the same cell has one; with --targets also the suite's own
H200 targets, met or not. Latency is compared as p50 of `latency_ms`, the request latency.
Only like with like: a record is compared (and counted for the targets) only when it ran on
CUDA on the reference's GPU product (names as measure/flops.py PARTS knows them: an H100 or an
H200 NVL is not an H200); other records show their figures, and the table says that no
reference exists for their device.

    python bench/gpu_table.py [--targets] RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from accelbench.measure.flops import PARTS

REFERENCE_FILE = Path(__file__).with_name("h200_reference.json")
Key = tuple[str, str, str | None, str, int]


def load_reference(path: Path = REFERENCE_FILE) -> dict[Key, tuple[float | None, float | None]]:
    """(workload, runtime, compile mode, precision, batch size) -> (seq/s, batch-1 p50 ms)."""
    cells = json.loads(path.read_text())["cells"]
    return {
        (c["workload"], c["runtime"], c["compile_mode"], c["precision"], c["batch_size"]): (
            c.get("samples_per_s"),
            c.get("p50_ms"),
        )
        for c in cells
    }


def product(gpu_name: str | None) -> str | None:
    """The GPU product a device name denotes (flops.PARTS: exact names, spaces collapsed, case
    ignored), else the name itself; None without a GPU."""
    if not gpu_name:
        return None
    norm = " ".join(gpu_name.split()).lower()
    parts = {" ".join(k.split()).lower(): p.product for k, p in PARTS.items()}
    return parts.get(norm, norm)


def record_gpu(rec: dict) -> str | None:
    """The GPU a record ran on; None for a CPU cell."""
    return (rec.get("env") or {}).get("gpu") if rec["spec"]["device"] == "cuda" else None


def comparable(rec: dict) -> bool:
    """Ran on CUDA on the reference's GPU product."""
    gpu = record_gpu(rec)
    return gpu is not None and product(gpu) == product(REFERENCE_GPU)


REFERENCE = load_reference()
REFERENCE_GPU: str = json.loads(REFERENCE_FILE.read_text())["gpu"]
# the suite's targets on an H200: best bert-base seq-128 cells and the full GPU preset
TARGET_INFER_SPS = 25_000
TARGET_TRAIN_SPS = 7_000
TARGET_B1_P50_MS = 0.5
TARGET_GPU_FULL_S = 600
HEAD = ("run", "cell", "status", "seq/s", "p50 ms", "F1", "TC GEMM", "mode", "compile s", "ref")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def row(run: str, rec: dict) -> tuple[str, ...]:
    spec, m, d = rec["spec"], rec.get("metrics", {}), rec.get("details", {})
    kp = d.get("kernel_profile") or {}
    lat = m.get("latency_ms") or m.get("step_time_ms") or {}
    key = (
        spec["workload"],
        spec["runtime"],
        spec.get("compile_mode"),
        spec["precision"],
        spec["batch_size"],
    )
    ref_sps, ref_ms = (None, None)
    if spec["model"] == "bert-base" and spec["seq_len"] == 128 and comparable(rec):
        ref_sps, ref_ms = REFERENCE.get(key, (None, None))
    ref = ""
    if ref_sps and m.get("samples_per_s"):
        ref = f"{m['samples_per_s'] / ref_sps:.2f}x of {ref_sps}"
    elif ref_ms and lat.get("p50"):
        ref = f"{ref_ms / lat['p50']:.2f}x of {ref_ms} ms"
    status = rec["status"] if rec["status"] in ("ok", "numeric_fail") else rec["status"] + ": "
    status += "" if rec["status"] in ("ok", "numeric_fail") else rec.get("reason", "")[:48]
    mode = {True: "yes", False: "NO: " + kp.get("mode_note", ""), None: "?"}
    return (
        run,
        rec["label"] + (" (ref)" if rec.get("role") != "cell" else ""),
        status,
        _fmt(m.get("samples_per_s"), ",.0f"),
        _fmt(lat.get("p50"), ".2f"),
        _fmt(m["f1"] * 100 if m.get("f1") is not None else None, ".1f"),
        _fmt((kp.get("gemm") or {}).get("tensor_core_share"), ".0%"),
        mode[kp.get("mode_effective")] if kp else "-",
        _fmt(d.get("compile_time_s"), ".0f"),
        ref,
    )


def read(name: str) -> list[dict]:
    path = Path(name) / "results.jsonl"
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _best(records: list[dict], pick) -> tuple[float, str] | None:
    found = [(v, r["label"]) for r in records if (v := pick(r)) is not None]
    return max(found) if found else None


def _speed_cell(rec: dict, workload: str) -> float | None:
    spec = rec["spec"]
    if (spec["workload"], spec["model"], spec["seq_len"]) != (workload, "bert-base", 128):
        return None
    return rec.get("metrics", {}).get("samples_per_s") if rec["status"] == "ok" else None


def _b1_p50(rec: dict) -> float | None:
    spec, lat = rec["spec"], rec.get("metrics", {}).get("latency_ms") or {}
    ok = rec["status"] == "ok" and spec["batch_size"] == 1 and spec["model"] == "bert-base"
    return -lat["p50"] if ok and lat.get("p50") else None  # negated: the best is the largest


def reference_lines(runs: dict[str, list[dict]]) -> list[str]:
    """What the figures were compared with, and for which devices no reference exists."""
    records = [r for recs in runs.values() for r in recs if "spec" in r]
    others = sorted(
        {record_gpu(r) or r["spec"]["device"] for r in records if not comparable(r)}, key=str
    )
    lines = []
    if any(comparable(r) for r in records):
        lines.append(f"compared with the {REFERENCE_GPU} reference ({REFERENCE_FILE.name})")
    if others:
        lines.append(
            f"no reference exists for {', '.join(others)}: {REFERENCE_FILE.name} holds "
            f"{REFERENCE_GPU} figures only, so those rows show their own figures, uncompared"
        )
    return lines


def target_lines(runs: dict[str, list[dict]]) -> list[str]:
    records = [r for recs in runs.values() for r in recs if "spec" in r and comparable(r)]
    if not records:
        return [f"targets: not checked, they are {REFERENCE_GPU} targets and no cell ran on one"]
    lines = []
    for what, goal, best in (
        ("best inference", TARGET_INFER_SPS, _best(records, lambda r: _speed_cell(r, "infer"))),
        ("best training", TARGET_TRAIN_SPS, _best(records, lambda r: _speed_cell(r, "train"))),
    ):
        if best is None:
            lines.append(f"{what}: no ok bert-base seq-128 cell (target >= {goal:,} seq/s)")
            continue
        met = "met" if best[0] >= goal else "NOT met"
        lines.append(f"{what}: {best[0]:,.0f} seq/s ({best[1]}) vs >= {goal:,}: {met}")
    b1 = _best(records, _b1_p50)
    if b1 is None:
        lines.append(f"batch-1 p50: no ok bert-base batch-1 cell (target <= {TARGET_B1_P50_MS} ms)")
    else:
        met = "met" if -b1[0] <= TARGET_B1_P50_MS else "NOT met"
        lines.append(f"batch-1 p50: {-b1[0]:.3f} ms ({b1[1]}) vs <= {TARGET_B1_P50_MS} ms: {met}")
    for name, recs in runs.items():
        recs = [r for r in recs if "spec" in r and comparable(r)]
        if Path(name).name == "gpu-full" and recs:
            meta = json.loads((Path(name) / "run.json").read_text())
            start = datetime.fromisoformat(meta["created_at"])
            last = max(
                datetime.fromisoformat(r["started_at"]) + timedelta(seconds=r["duration_s"])
                for r in recs
            )
            took = (last - start).total_seconds()
            met = "met" if took <= TARGET_GPU_FULL_S else "NOT met"
            statuses = Counter(r["status"] for r in recs)
            lines.append(
                f"--preset gpu-full: {took:.0f} s for {len(recs)} cells {dict(statuses)} "
                f"vs <= {TARGET_GPU_FULL_S} s: {met}"
            )
    return lines


def main(argv: list[str]) -> int:
    targets = "--targets" in argv
    dirs = [a for a in argv if a != "--targets"]
    runs = {name: read(name) for name in dirs}
    rows = [HEAD]
    for name, recs in runs.items():
        if not recs:
            rows.append((Path(name).name, "(no results)", "", "", "", "", "", "", "", ""))
        for rec in recs:
            try:
                rows.append(row(Path(name).name, rec))
            except KeyError:
                continue
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print()
    print("\n".join(reference_lines(runs)))
    if targets:
        print()
        print("\n".join(target_lines(runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
