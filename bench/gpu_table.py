"""Compact table of every record under the given run directories, next to DESIGN.md's H200
reference figures (bert-base architecture, seq 128) where the same cell has one.

    python bench/gpu_table.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (workload, runtime, compile mode, precision, batch size) -> (seq/s, batch-1 p50 ms)
REFERENCE: dict[tuple[str, str, str | None, str, int], tuple[float | None, float | None]] = {
    ("infer", "eager", None, "fp32", 128): (2044, None),
    ("infer", "eager", None, "tf32", 128): (8576, None),
    ("infer", "eager", None, "fp16", 128): (12766, None),
    ("infer", "eager", None, "bf16", 128): (11401, None),
    ("infer", "eager", None, "bf16-weights", 512): (18190, None),
    ("infer", "compile", "default", "bf16-weights", 512): (19607, None),
    ("infer", "eager", None, "bf16", 1): (None, 3.93),
    ("infer", "compile", "reduce-overhead", "bf16", 1): (None, 0.59),
    ("train", "eager", None, "fp32", 32): (552, None),
    ("train", "eager", None, "tf32", 32): (935, None),
    ("train", "eager", None, "bf16", 32): (988, None),
    ("train", "eager", None, "bf16", 256): (4048, None),
    ("train", "compile", "default", "bf16", 128): (4659, None),
    ("train", "compile", "default", "bf16", 256): (5132, None),
}
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
    if spec["model"] == "bert-base" and spec["seq_len"] == 128:
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


def main(dirs: list[str]) -> int:
    rows = [HEAD]
    for name in dirs:
        path = Path(name) / "results.jsonl"
        if not path.is_file():
            rows.append((Path(name).name, "(no results)", "", "", "", "", "", "", "", ""))
            continue
        for line in path.read_text().splitlines():
            try:
                rows.append(row(Path(name).name, json.loads(line)))
            except (json.JSONDecodeError, KeyError):
                continue
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
