"""results.jsonl: one JSON record per cell, appended and fsynced as each cell ends."""

from __future__ import annotations

import json
import os
from pathlib import Path

SCHEMA_VERSION = 1
RESULTS = "results.jsonl"


class ResultStore:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RESULTS

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def records(self) -> list[dict]:
        """All complete records; a torn last line (a killed writer) is skipped."""
        return read_records(self.path)


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
