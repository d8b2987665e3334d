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
    repeat: int = 0  # which of the cell's --repeats (each in a fresh process)

    @property
    def seed(self) -> int:
        """Training's seed (head init, data order): the cell's seed + repeat, so repeats are
        seeds; the data split keeps the cell's seed."""
        return self.cell.seed + self.repeat

    @property
    def writes_reference(self) -> bool:
        """The reference's first repeat writes the run's checkpoint and reference logits; its
        later repeats are further seeds of the reference, measured like any cell."""
        return self.role is Role.REFERENCE and self.repeat == 0

    @property
    def log_path(self) -> Path:
        """The cell's own log: everything its process printed, a failure's full traceback."""
        suffix = f"-r{self.repeat}" if self.repeat else ""
        return self.run_dir / "logs" / f"{self.cell.cell_id}{suffix}.log"
