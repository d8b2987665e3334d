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
SETTING_KEYS = (
    "lr",
    "warmup_ratio",
    "warmup_iters",
    "min_iters",
    "min_time",
    "threads",
    "latency_bound_ms",
    "serve_min_time",
    "serve_min_queries",
    "serve_max_wait_ms",
)
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
    served: float | None = None  # serve cells: NEW / BASE scenario metric, > 1 is better

    @property
    def scenario_metric(self) -> str | None:
        return self.base["metrics"].get("scenario_metric")

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
        served = scenario_ratio(rec, other) if both else None
        out.append(Match(rec.get("label", ""), new.name, rec, other, speed, delta, served))
    if not out:
        raise UserError(
            f"no cell of {new.path} matches {base.path} ({_spec_diff(base, new)}): "
            "compare runs of the same matrix"
        )
    return out


def scenario_ratio(base: dict, new: dict) -> float | None:
    """Serve cells: how many times better NEW's scenario metric is than BASE's (served QPS at
    the bound and offline samples/s: NEW / BASE; single-stream p90 latency: BASE / NEW)."""
    b, n = base["metrics"].get("scenario_value"), new["metrics"].get("scenario_value")
    if not b or not n:
        return None
    return b / n if base["metrics"].get("higher_is_better") is False else n / b


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
        if m.served is not None and m.served < 1 - pct / 100:
            out.append(
                f"{name}: {m.scenario_metric} {(m.served - 1) * 100:+.1f}% (LoadGen, one run "
                f"each), limit -{pct:g}%"
            )
        if m.delta_f1 is not None and m.delta_f1 < -f1_tolerance:
            out.append(f"{name}: entity F1 {m.delta_f1:+.2f} points, limit -{f1_tolerance:g}")
    return out


def run_compare(
    run_dirs: Sequence[Path],
    out_dir: Path | None,
    fail_pct: float | None,
    f1_tolerance: float,
    warn: Callable[[str], None],
) -> int:
    """Write compare.html and compare.md; 1 if --fail-on-regression found a regression."""
    from accelbench.report.compare_doc import write_compare

    if fail_pct is not None and fail_pct < 0:
        raise UserError(f"--fail-on-regression must be >= 0, got {fail_pct:g}")
    base, *news = [load_run(Path(d)) for d in run_dirs]
    matches, warnings, notes = [], [], []
    for new in news:
        matches += match(base, new)
        w, n = comparability(base, new)
        warnings += w
        notes += n
    for line in warnings:
        warn(line)
    found = regressions(matches, fail_pct, f1_tolerance) if fail_pct is not None else None
    paths = write_compare(
        base, news, matches, warnings, notes, found, Path(out_dir or run_dirs[-1])
    )
    for m in matches:
        if m.speed is not None:
            print(
                f"{m.label:44s} {m.new_run}: {m.speed.ratio:.3f}× "
                f"[{m.speed.low:.3f}, {m.speed.high:.3f}]"
            )
        if m.served is not None:
            print(f"{m.label:44s} {m.new_run}: {m.served:.3f}× {m.scenario_metric}")
    for line in found or []:
        print(f"REGRESSION {line}")
    for path in paths:
        print(path)
    return 1 if found else 0
