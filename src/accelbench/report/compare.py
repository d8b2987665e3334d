"""`accelbench compare BASE NEW [NEW ...]`: cells matched by spec, speed ratios with CIs,
comparability checks from the fingerprints, regressions against a threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from accelbench.errors import UserError
from accelbench.measure.env import SOFTWARE_KEYS
from accelbench.measure.stats import RatioCI
from accelbench.report.frame import Run, load_run
from accelbench.report.ratios import MEASURED, speed_ratio

# fingerprint keys whose difference makes numbers hard to compare (machines may differ freely)
VERSION_KEYS = tuple(k for k in SOFTWARE_KEYS if k != "git_dirty")
MACHINE_KEYS = ("cpu", "cpu_count", "gpu", "gpu_count", "driver", "hostname")
# run settings that change the numbers without entering the cell spec
SETTING_KEYS = ("lr", "warmup_ratio", "warmup_iters", "min_iters", "min_time", "threads")
DATA_KEYS = ("dataset", "split_hash", "labels", "train_sentences", "test_sentences")


@dataclass(frozen=True)
class Match:
    """One cell of BASE found in NEW by its cell_id (a hash of the spec)."""

    label: str
    new_run: str
    base: dict
    new: dict
    speed: RatioCI | None  # NEW speed / BASE speed
    delta_f1: float | None  # points, NEW - BASE

    @property
    def comparable(self) -> bool:
        return self.base["status"] in MEASURED and self.new["status"] in MEASURED


def _first(run: Run, key: str) -> dict:
    return next((rec[key] for rec in run.records if rec.get(key)), {})


def _diffs(base: dict, new: dict, keys: Sequence[str]) -> list[str]:
    return [f"{k} {base.get(k)} → {new.get(k)}" for k in keys if base.get(k) != new.get(k)]


def comparability(base: Run, new: Run) -> tuple[list[str], list[str]]:
    """(warnings, notes): what differs between the runs besides the cells themselves."""
    warnings, notes = [], []
    env_b, env_n = _first(base, "env"), _first(new, "env")
    if d := _diffs(_first(base, "data"), _first(new, "data"), DATA_KEYS):
        warnings.append(f"{new.name}: different data ({', '.join(d)}): F1 is not comparable")
    if d := _diffs(env_b, env_n, VERSION_KEYS):
        warnings.append(f"{new.name}: library versions differ: {', '.join(d)}")
    cfg_b, cfg_n = base.meta.get("config", {}), new.meta.get("config", {})
    if d := _diffs(cfg_b, cfg_n, SETTING_KEYS):
        warnings.append(f"{new.name}: run settings differ: {', '.join(d)}")
    if env_n.get("git_dirty") or env_b.get("git_dirty"):
        notes.append("uncommitted changes in the accelbench checkout of at least one run")
    if d := _diffs(env_b, env_n, MACHINE_KEYS):
        notes.append(f"{new.name}: other machine ({', '.join(d)})")
    return warnings, notes


def _spec_diff(base: Run, new: Run) -> str:
    """Which spec fields keep two runs from sharing any cell, e.g. 'batch_size 32 vs 64'."""
    out = []
    for key in sorted({k for rec in base.records for k in rec["spec"]}):
        a = sorted({str(rec["spec"].get(key)) for rec in base.records})
        b = sorted({str(rec["spec"].get(key)) for rec in new.records})
        if not set(a) & set(b):
            out.append(f"{key} {','.join(a)} vs {','.join(b)}")
    return "; ".join(out) or "no cell_id in common"


def match(base: Run, new: Run) -> list[Match]:
    by_id = {rec["cell_id"]: rec for rec in new.records}
    out = []
    for rec in base.records:
        other = by_id.get(rec["cell_id"])
        if other is None:
            continue
        both = rec["status"] in MEASURED and other["status"] in MEASURED
        f1_b, f1_n = rec["metrics"].get("f1"), other["metrics"].get("f1")
        meaningful = rec["metrics"].get("f1_meaningful", True)
        delta = (f1_n - f1_b) * 100 if both and None not in (f1_b, f1_n) and meaningful else None
        speed = speed_ratio(rec, other) if both else None
        out.append(Match(rec.get("label", ""), new.name, rec, other, speed, delta))
    if not out:
        raise UserError(
            f"no cell of {new.path} matches {base.path} ({_spec_diff(base, new)}): "
            "compare runs of the same matrix"
        )
    return out


def regressions(matches: Sequence[Match], pct: float, f1_tolerance: float) -> list[str]:
    """One line per matched cell slower by more than pct %, lower in F1, or no longer running."""
    out = []
    for m in matches:
        name = f"{m.label} ({m.new_run})"
        if m.base["status"] == "ok" and m.new["status"] not in ("ok", "unsupported"):
            out.append(f"{name}: {m.base['status']} → {m.new['status']} ({m.new['reason']})")
        if m.speed is not None and m.speed.ratio < 1 - pct / 100:
            out.append(
                f"{name}: throughput {(m.speed.ratio - 1) * 100:+.1f}% "
                f"(95% CI {(m.speed.low - 1) * 100:+.1f}…{(m.speed.high - 1) * 100:+.1f}%), "
                f"limit -{pct:g}%"
            )
        if m.delta_f1 is not None and m.delta_f1 < -f1_tolerance:
            out.append(f"{name}: entity F1 {m.delta_f1:+.2f} points, limit -{f1_tolerance:g}")
    return out


@dataclass(frozen=True)
class Comparison:
    """BASE against one or more NEW runs: matched cells with speed ratios and F1 changes, and
    what differs between the runs besides the cells. Pure data: nothing is printed."""

    base: Run
    news: tuple[Run, ...]
    matches: tuple[Match, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    def regressions(self, pct: float, f1_tolerance: float = 1.0) -> list[str]:
        """One line per matched cell slower by more than `pct` %, lower in entity F1 by more
        than `f1_tolerance` points, or no longer running."""
        if pct < 0:
            raise UserError(f"the regression threshold must be >= 0 %, got {pct:g}")
        return regressions(self.matches, pct, f1_tolerance)

    def to_pandas(self):
        """One row per matched cell: its label, the NEW run, both statuses, the speed ratio
        (NEW / BASE) with its 95 % CI, and the F1 change in points."""
        import pandas as pd

        rows = [
            {
                "label": m.label,
                "new_run": m.new_run,
                "cell_id": m.base["cell_id"],
                "base_status": m.base["status"],
                "new_status": m.new["status"],
                "speed_ratio": m.speed.ratio if m.speed else None,
                "speed_low": m.speed.low if m.speed else None,
                "speed_high": m.speed.high if m.speed else None,
                "delta_f1_points": m.delta_f1,
            }
            for m in self.matches
        ]
        return pd.DataFrame(rows)

    def write(self, out_dir: Path, found: Sequence[str] | None = None) -> list[Path]:
        """compare.html and compare.md (+ figures/) under `out_dir`; `found`: the regressions
        to list, None when no threshold was given."""
        from accelbench.report.compare_doc import write_compare

        return write_compare(
            self.base, self.news, self.matches, self.warnings, self.notes, found, Path(out_dir)
        )


def compare_runs(base: Run, news: Sequence[Run]) -> Comparison:
    matches, warnings, notes = [], [], []
    for new in news:
        matches += match(base, new)
        w, n = comparability(base, new)
        warnings += w
        notes += n
    return Comparison(base, tuple(news), tuple(matches), tuple(warnings), tuple(notes))


def run_compare(
    run_dirs: Sequence[Path],
    out_dir: Path | None,
    fail_pct: float | None,
    f1_tolerance: float,
    warn: Callable[[str], None],
) -> int:
    """`accelbench compare`: write compare.html and compare.md, print the ratios; 1 if
    --fail-on-regression found a regression."""
    if fail_pct is not None and fail_pct < 0:
        raise UserError(f"--fail-on-regression must be >= 0, got {fail_pct:g}")
    base, *news = [load_run(Path(d)) for d in run_dirs]
    comparison = compare_runs(base, news)
    for line in comparison.warnings:
        warn(line)
    found = comparison.regressions(fail_pct, f1_tolerance) if fail_pct is not None else None
    paths = comparison.write(Path(out_dir or run_dirs[-1]), found)
    for m in comparison.matches:
        if m.speed is not None:
            print(
                f"{m.label:44s} {m.new_run}: {m.speed.ratio:.3f}× "
                f"[{m.speed.low:.3f}, {m.speed.high:.3f}]"
            )
    for line in found or []:
        print(f"REGRESSION {line}")
    for path in paths:
        print(path)
    return 1 if found else 0
