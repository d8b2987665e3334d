"""What a cell process is handed: one typed job, the same for isolated cells and torchrun ranks."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from accelbench.config.specs import CellSpec, RunConfig


class Role(str, enum.Enum):
    """A cell's place in its run. Stored in each record as its value; not part of cell_id."""

    CELL = "cell"  # measured like every other cell
    # measured too, and the yardstick of the run: the fp32 eager train cell whose checkpoint and
    # test-set logits the other cells are held to, or with --checkpoint the fp32 eager infer cell
    # over that checkpoint
    REFERENCE = "reference"


@dataclass(frozen=True)
class CellJob:
    cell: CellSpec
    config: RunConfig
    run_dir: Path
    role: Role = Role.CELL

    @property
    def log_path(self) -> Path:
        """The cell's own log: everything its process printed, a failure's full traceback."""
        return self.run_dir / "logs" / f"{self.cell.cell_id}.log"
