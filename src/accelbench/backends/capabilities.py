"""`accelbench list`: every runtime x device x precision x workload and whether it runs here."""

from __future__ import annotations

import itertools

from accelbench.backends import get_backend
from accelbench.backends.base import Capability
from accelbench.config.runtimes import runtime_targets
from accelbench.config.specs import DEVICES, PRECISIONS, WORKLOADS
from accelbench.errors import UserError

FILTERS = ("runtime", "device", "precision", "workload")


def capability_rows(**wanted: tuple[str, ...]) -> list[dict]:
    """One row per runtime x device x precision x workload, limited to the values `wanted` names
    per column (runtime=("ort",), device=("cpu", "cuda"), ...; an empty tuple keeps all)."""
    choices = {
        "runtime": tuple(runtime_targets()),
        "device": DEVICES,
        "precision": PRECISIONS,
        "workload": WORKLOADS,
    }
    for column, values in wanted.items():
        for value in values:
            if value not in choices[column]:
                raise UserError(
                    f"unknown {column} '{value}': choose from {', '.join(choices[column])}"
                )
    pick = {c: wanted.get(c) or choices[c] for c in FILTERS}
    rows = []
    for runtime in pick["runtime"]:
        backend = get_backend(runtime)
        for device, precision, workload in itertools.product(
            pick["device"], pick["precision"], pick["workload"]
        ):
            cap = backend.probe(workload, device, precision)
            if cap.ok and workload == "serve" and not getattr(backend, "serves", False):
                cap = Capability(False, "no serving path (any batch size from 1)")
            rows.append(
                {
                    "runtime": runtime,
                    "device": device,
                    "precision": precision,
                    "workload": workload,
                    "ok": cap.ok,
                    "reason": cap.reason,
                }
            )
    return rows


def capability_table(rows: list[dict]) -> str:
    if not rows:
        return "no runtime x device x precision x workload matches"
    widths = [max(len(r[k]) for r in rows) for k in ("runtime", "device", "precision", "workload")]
    head = ["runtime", "device", "precision", "workload"]
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + "  available"]
    for r in rows:
        cols = [r["runtime"], r["device"], r["precision"], r["workload"]]
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
            + "  "
            + ("yes" if r["ok"] else f"no: {r['reason']}")
        )
    return "\n".join(lines)
