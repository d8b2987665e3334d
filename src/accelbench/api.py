"""accelbench from Python: run a matrix, load a run directory, compare runs.

    import accelbench
    res = accelbench.run(precisions=["fp32", "bf16"], workloads=["infer"], out="runs/a")
    df = res.to_pandas()                # one row per cell: the summary.csv columns
    res.report()                        # report.html, report.md, summary.csv in runs/a
    old = accelbench.load("runs/base")
    cmp = accelbench.compare(old, res)  # cmp.regressions(5), cmp.to_pandas()

`run` takes the options of `accelbench run` as keyword arguments: every CLI name with `_` for `-`
(batch_size, padding, seq_len, nproc, no_ceilings=True, ...) or RunConfig's field names; a list
or a single value where the CLI takes a comma list. Progress lines go to `progress` (default:
stderr), never to stdout. Cells run in fresh interpreters started with `python -m`, so a script
calling `run` needs no `if __name__ == "__main__":` guard. Bad options raise
accelbench.errors.UserError. One name differs: `--ceilings FILE` is `ceilings_file=` (RunConfig's
`ceilings` is the on/off switch that `no_ceilings` sets).
"""

from __future__ import annotations

import difflib
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from accelbench.config.specs import RunConfig
from accelbench.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from accelbench.report.compare import Comparison

# the CLI's option names where they differ from RunConfig's fields
ALIASES = {"batch_size": "batch_sizes", "padding": "paddings", "seq_len": "seq_lens"}
ALIASES |= {"nproc": "nprocs"}
# --no-X switches: no_X=True sets X=False
NEGATED = {"no_ceilings": "ceilings", "no_keep_checkpoint": "keep_checkpoint"}
RunPath = str | os.PathLike[str]


@dataclass(frozen=True)
class Results:
    """The records of one run directory, as stored in its results.jsonl."""

    path: Path
    records: tuple[dict, ...]

    @property
    def config(self) -> RunConfig | None:
        """The settings the run was started with (run.json), None for a bare results file."""
        from accelbench.runner.matrix import RUN_FILE, load_run_file

        return load_run_file(self.path)[0] if (self.path / RUN_FILE).is_file() else None

    def to_pandas(self) -> pd.DataFrame:
        """One row per cell with the columns of summary.csv (speedups, F1, latency, MFU ...)."""
        from accelbench.report.frame import records_frame

        return records_frame(self.records, self.path.resolve().name)

    def report(self, out: RunPath | None = None) -> list[Path]:
        """Write report.html, report.md (+ figures/) and summary.csv; default: into the run
        directory. Returns their paths."""
        from accelbench.report.render import write_report

        return write_report([self.path], Path(out) if out is not None else None)

    def summary(self) -> str:
        """The fixed-width table `accelbench run` prints at the end."""
        from accelbench.report.frame import summary_table

        return summary_table(self.records)


def config_of(
    options: dict[str, object], preset: str | None = None, matrix: RunPath | None = None
) -> RunConfig:
    """The RunConfig of these options over a preset's or matrix file's settings."""
    from accelbench.config.presets import merge, preset_path, read_matrix

    if preset is not None and matrix is not None:
        raise UserError("give a preset or a matrix file, not both")
    known = [f.name for f in fields(RunConfig)]
    settings = {}
    for key, value in options.items():
        if key in NEGATED:
            key, value = NEGATED[key], not value
        name = ALIASES.get(key, key)
        if name not in known:
            close = difflib.get_close_matches(key, known + list(ALIASES) + list(NEGATED), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise UserError(f"unknown run option '{key}'{hint}")
        settings[name] = value
    if settings.get("train_steps") is not None and settings.get("epochs") is not None:
        raise UserError("give train_steps or epochs, not both")
    source = preset_path(preset) if preset is not None else matrix
    return RunConfig(**merge(read_matrix(Path(source)) if source else {}, settings))


def default_out() -> Path:
    """reports/<timestamp>-<host> under the current directory."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{stamp}-{socket.gethostname()}"


def run(
    *,
    out: RunPath | None = None,
    resume: RunPath | None = None,
    preset: str | None = None,
    matrix: RunPath | None = None,
    progress: Callable[[str], None] | None = None,
    **options: object,
) -> Results:
    """Run a benchmark matrix (the same options as `accelbench run`) and return its records.

    `out`: the run directory (default reports/<timestamp>-<host>); it must not hold results
    already. `resume`: finish an interrupted run directory instead (no other options).
    `preset` / `matrix`: start from a preset's or a YAML file's settings; options override.
    """
    from accelbench.runner.matrix import load_run_file, run_matrix

    if resume is not None:
        if options or preset or matrix or out is not None:
            raise UserError("resume continues a run with its own settings: give no other options")
        run_dir = Path(resume)
        config, run_id = load_run_file(run_dir)
    else:
        config, run_id = config_of(options, preset, matrix), None
        run_dir = Path(out) if out is not None else default_out()
    kwargs = {"echo": progress} if progress is not None else {}
    records = run_matrix(config, run_dir, run_id, **kwargs)
    return Results(run_dir, tuple(records))


def load(path: RunPath) -> Results:
    """A run directory written by `accelbench run` (or accelbench.run)."""
    from accelbench.report.frame import load_run

    stored = load_run(Path(path))
    return Results(Path(path), stored.records)


def compare(
    base: Results | RunPath, new: Results | RunPath, *more: Results | RunPath
) -> Comparison:
    """BASE against one or more NEW runs, cell by cell (matched by cell_id): speed ratios with
    95 % CIs, F1 changes, comparability warnings; `.regressions(pct)`, `.to_pandas()`,
    `.write(dir)`. Nothing is printed."""
    from accelbench.report.compare import compare_runs
    from accelbench.report.frame import load_run

    def as_run(x: Results | RunPath):
        return load_run(x.path if isinstance(x, Results) else Path(x))

    runs: Sequence = [as_run(x) for x in (base, new, *more)]
    return compare_runs(runs[0], runs[1:])
