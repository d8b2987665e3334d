"""Scaling efficiency of data-parallel training against the 1-process cell of the same spec.

efficiency = throughput_N / (N · throughput_1): 1 is linear scaling, 0.5 means N processes
deliver half of N times what one delivers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

OK = "ok"


def efficiency(throughput: float, nproc: int, baseline: float) -> float:
    return throughput / (nproc * baseline)


def nproc(spec: dict) -> int:
    """Processes of a stored spec (specs of one process leave the field out)."""
    return int(spec.get("nproc") or 1)


def _key(spec: dict) -> str:
    """The spec without its process count: what a cell shares with its scaling baseline."""
    rest = {k: v for k, v in spec.items() if k != "nproc"}
    return json.dumps({**rest, "extra": list(rest.get("extra") or [])}, sort_keys=True)


def _host(record: dict) -> str | None:
    return (record.get("env") or {}).get("hostname")


def scaling_baselines(records: Sequence[dict]) -> dict[int, dict]:
    """index of an ok record of N > 1 processes -> the ok 1-process record of the same spec:
    from the same run, else from another run of the same host (e.g. a torchrun job and the
    plain run beside it)."""
    singles: dict[str, list[dict]] = {}
    for rec in records:
        if rec.get("status") == OK and nproc(rec["spec"]) == 1:
            singles.setdefault(_key(rec["spec"]), []).append(rec)
    out = {}
    for i, rec in enumerate(records):
        if rec.get("status") != OK or nproc(rec["spec"]) == 1:
            continue
        found = singles.get(_key(rec["spec"]), [])
        same_run = [b for b in found if b.get("run_id") == rec.get("run_id")]
        same_host = [b for b in found if _host(b) is not None and _host(b) == _host(rec)]
        if same_run or same_host:
            out[i] = (same_run or same_host)[0]
    return out
