"""`accelbench compare BASE NEW [NEW ...]`: cells matched by spec, speed ratios with CIs,
comparability checks from the fingerprints, regressions against a threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from accelbench.errors import UserError
from accelbench.measure.env import SOFTWARE_KEYS
from accelbench.measure.spread import ratio_across
from accelbench.measure.stats import RatioCI
from accelbench.report.frame import Run, load_run
from accelbench.report.ratios import (
    MEASURED,
    NOISE_FLOOR_CVS,
    NOISE_FLOOR_MIN_PCT,
    SETTLE,
    speed_ratio,
)

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


def judged_cv(record: dict) -> float | None:
    """The CV a record's stability verdict judged (device time, latency or step time)."""
    m = record.get("metrics") or {}
    return (m.get("device_time_ms") or m.get("latency_ms") or m.get("step_time_ms") or {}).get("cv")


@dataclass(frozen=True)
class Match:
    """One cell of BASE found in NEW by its cell_id (a hash of the spec), with every repeat of
    it on each side (`--repeats`: one record per process)."""

    label: str
    new_run: str
    base_all: tuple[dict, ...]
    new_all: tuple[dict, ...]
    speed: RatioCI | None  # NEW speed / BASE speed (time per sentence)
    speed_basis: str  # what the interval covers
    delta_f1: float | None  # points, NEW - BASE (means over repeats)
    served: float | None = None  # serve cells: NEW / BASE scenario metric, > 1 is better

    @property
    def base(self) -> dict:
        return self.base_all[0]

    @property
    def new(self) -> dict:
        return self.new_all[0]

    @property
    def scenario_metric(self) -> str | None:
        return self.base["metrics"].get("scenario_metric")

    @property
    def comparable(self) -> bool:
        return self.base["status"] in MEASURED and self.new["status"] in MEASURED

    @property
    def across_processes(self) -> bool:
        return self.speed_basis.startswith("across")

    @property
    def noise_floor(self) -> float | None:
        """Percent: how far a one-process-per-side figure must fall before it counts (see
        NOISE_FLOOR_MIN_PCT); None when both sides ran two processes or more."""
        if self.across_processes:
            return None
        cvs = [cv for r in (self.base, self.new) if (cv := judged_cv(r)) is not None]
        cvs = [cv for cv in cvs if cv == cv]  # NaN: too few samples for a CV
        return max(NOISE_FLOOR_MIN_PCT, NOISE_FLOOR_CVS * 100 * max(cvs, default=0.0))

    def limit(self, pct: float) -> float:
        """The slowdown in percent beyond which this cell is a regression."""
        return max(pct, self.noise_floor or 0.0)

    @property
    def unstable(self) -> list[str]:
        """The sides whose measurement was flagged unstable, with the reasons."""
        return [
            f"{side} ({'; '.join(stab.get('reasons') or [])})"
            for side, r in (("BASE", self.base), (self.new_run, self.new))
            if (stab := r["metrics"].get("stability") or {}).get("stable") is False
        ]

    def caveats(self) -> list[str]:
        """What keeps this cell's ratio from being settled: one process per side (its noise
        floor), an unstable measurement on either side."""
        out = []
        if self.noise_floor is not None and self.comparable:
            out.append(
                f"one process per side: the verdict rests on a within-process interval, noise "
                f"floor {self.noise_floor:.0f}%; {SETTLE}"
            )
        if self.unstable:
            out.append("unstable measurement in " + " and ".join(self.unstable))
        return out

    def stability(self) -> str:
        return "; ".join(self.caveats()) or "settled"

    def verdict(self, pct: float) -> str:
        """`regression` when the whole interval of the speed ratio lies below the limit (pct %,
        or the noise floor when one process per side ran and the floor is higher); `within
        noise` when only the point estimate lies below 1 − pct %; else `ok`."""
        if self.speed is None or self.speed.ratio >= 1 - pct / 100:
            return "ok"
        return "regression" if self.speed.high < 1 - self.limit(pct) / 100 else "within noise"

    def served_regressed(self, pct: float) -> bool:
        """Serve cells: the scenario metric fell by more than the limit (one LoadGen run per
        process, no interval: with one process per side the noise floor applies)."""
        return self.served is not None and self.served < 1 - self.limit(pct) / 100


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


def _measured(records: Sequence[dict]) -> list[dict]:
    return [r for r in records if r["status"] in MEASURED]


def _speed(base: Sequence[dict], new: Sequence[dict]) -> tuple[RatioCI | None, str]:
    """Across processes when both sides ran the cell twice or more (one throughput per
    process); otherwise the within-process bootstrap of the first repeats' raw timings."""
    b, n = _measured(base), _measured(new)
    if len(b) >= 2 and len(n) >= 2:
        sps = [[r["metrics"]["samples_per_s"] for r in side] for side in (b, n)]
        return ratio_across(*sps), f"across processes ({len(b)} BASE, {len(n)} NEW)"
    if b and n:
        return speed_ratio(b[0], n[0]), "one process per side (within-process bootstrap)"
    return None, "not measured on both sides"


def _f1(records: Sequence[dict]) -> float | None:
    values = [r["metrics"].get("f1") for r in _measured(records)]
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _by_cell(run: Run) -> dict[str, tuple[dict, ...]]:
    cells: dict[str, list[dict]] = {}
    for rec in run.records:
        cells.setdefault(rec["cell_id"], []).append(rec)
    return {k: tuple(sorted(v, key=lambda r: r.get("repeat", 0))) for k, v in cells.items()}


def match(base: Run, new: Run) -> list[Match]:
    theirs = _by_cell(new)
    out = []
    for cell_id, mine in _by_cell(base).items():
        other = theirs.get(cell_id)
        if other is None:
            continue
        f1_b, f1_n = _f1(mine), _f1(other)
        meaningful = mine[0]["metrics"].get("f1_meaningful", True)
        delta = (f1_n - f1_b) * 100 if None not in (f1_b, f1_n) and meaningful else None
        speed, basis = _speed(mine, other)
        served = scenario_ratio(mine, other)
        out.append(
            Match(mine[0].get("label", ""), new.name, mine, other, speed, basis, delta, served)
        )
    if not out:
        raise UserError(
            f"no cell of {new.path} matches {base.path} ({_spec_diff(base, new)}): "
            "compare runs of the same matrix"
        )
    return out


def _scenario_value(records: Sequence[dict]) -> float | None:
    values = [r["metrics"].get("scenario_value") for r in _measured(records)]
    values = [v for v in values if v]
    return sum(values) / len(values) if values else None


def scenario_ratio(base: Sequence[dict], new: Sequence[dict]) -> float | None:
    """Serve cells: how many times better NEW's scenario metric is than BASE's, means over
    repeats (served QPS at the bound and offline samples/s: NEW / BASE; single-stream p90
    latency: BASE / NEW)."""
    b, n = _scenario_value(base), _scenario_value(new)
    if b is None or n is None:
        return None
    return b / n if base[0]["metrics"].get("higher_is_better") is False else n / b


def _caveats(m: Match) -> str:
    return "".join(f"; {c}" for c in m.caveats())


def regressions(matches: Sequence[Match], pct: float, f1_tolerance: float) -> list[str]:
    """One line per matched cell whose throughput fell by more than pct % beyond its noise
    (the whole 95 % interval below the limit; one process per side: below the noise floor
    too), whose F1 fell by more than `f1_tolerance` points, or that no longer runs. Each
    speed line carries what keeps it from being settled (`Match.caveats`)."""
    out = []
    for m in matches:
        name = f"{m.label} ({m.new_run})"
        if m.base["status"] == "ok" and m.new["status"] not in ("ok", "unsupported"):
            out.append(f"{name}: {m.base['status']} → {m.new['status']} ({m.new['reason']})")
        if m.verdict(pct) == "regression":
            limit = f"limit -{m.limit(pct):g}%"
            out.append(f"{name}: throughput {_ratio_text(m.speed)}, {limit}{_caveats(m)}")
        if m.served_regressed(pct):
            change = f"{(m.served - 1) * 100:+.1f}%"
            out.append(
                f"{name}: {m.scenario_metric} {change} (LoadGen), limit -{m.limit(pct):g}%"
                f"{_caveats(m)}"
            )
        if m.delta_f1 is not None and m.delta_f1 < -f1_tolerance:
            out.append(f"{name}: entity F1 {m.delta_f1:+.2f} points, limit -{f1_tolerance:g}")
    return out


def within_noise(matches: Sequence[Match], pct: float) -> list[str]:
    """Cells slower by more than pct % at the point estimate whose interval still reaches the
    limit: not reported as regressions."""
    return [
        f"{m.label} ({m.new_run}): throughput {_ratio_text(m.speed)} is within noise of the "
        f"-{pct:g}% limit ({m.speed_basis}){_caveats(m)}"
        for m in matches
        if m.verdict(pct) == "within noise"
    ]


def _ratio_text(ci: RatioCI | None) -> str:
    if ci is None:
        return "not measured"
    low, high = (ci.low - 1) * 100, (ci.high - 1) * 100
    return f"{(ci.ratio - 1) * 100:+.1f}% (95% CI {low:+.1f}…{high:+.1f}%)"


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
        """One line per matched cell slower by more than `pct` % beyond its noise, lower in
        entity F1 by more than `f1_tolerance` points, or no longer running."""
        if pct < 0:
            raise UserError(f"the regression threshold must be >= 0 %, got {pct:g}")
        return regressions(self.matches, pct, f1_tolerance)

    def within_noise(self, pct: float) -> list[str]:
        """Cells whose point estimate is past the `pct` % limit but whose interval is not."""
        return within_noise(self.matches, pct)

    def to_pandas(self, pct: float | None = None):
        """One row per matched cell: its label, the NEW run, both statuses and repeats, the speed
        ratio (NEW / BASE, per sentence) with its 95 % CI and what the CI covers, the noise
        floor (one process per side), `stability` (`settled`, or what keeps the ratio from
        being settled), the F1 change in points, NEW's F1 gate (`accuracy_target` as run,
        `f1_gate`); with `pct`, each cell's verdict (ok, within noise, regression)."""
        import pandas as pd

        rows = [
            {
                "label": m.label,
                "new_run": m.new_run,
                "cell_id": m.base["cell_id"],
                "base_status": m.base["status"],
                "new_status": m.new["status"],
                "base_repeats": len(m.base_all),
                "new_repeats": len(m.new_all),
                "speed_ratio": m.speed.ratio if m.speed else None,
                "speed_low": m.speed.low if m.speed else None,
                "speed_high": m.speed.high if m.speed else None,
                "speed_basis": m.speed_basis,
                "noise_floor_pct": m.noise_floor,
                "stability": m.stability(),
                "delta_f1_points": m.delta_f1,
                "accuracy_target": m.new["metrics"].get("accuracy_target"),
                "f1_gate": m.new["metrics"].get("f1_gate"),
                **({"verdict": m.verdict(pct)} if pct is not None else {}),
            }
            for m in self.matches
        ]
        return pd.DataFrame(rows)

    def write(
        self, out_dir: Path, pct: float | None = None, f1_tolerance: float = 1.0
    ) -> list[Path]:
        """compare.html and compare.md (+ figures/) under `out_dir`; with `pct`, the
        regressions and the cells within noise of the limit are listed."""
        from accelbench.report.compare_doc import write_compare

        found = None if pct is None else self.regressions(pct, f1_tolerance)
        noise = None if pct is None else self.within_noise(pct)
        return write_compare(self, found, noise, Path(out_dir))


def compare_runs(base: Run, news: Sequence[Run]) -> Comparison:
    matches, warnings, notes = [], [], []
    for new in news:
        matches += match(base, new)
        w, n = comparability(base, new)
        warnings += w
        notes += n
    return Comparison(base, tuple(news), tuple(matches), tuple(warnings), tuple(notes))


COMPARE_MD = "compare.md"


def default_compare_dir(run_dirs: Sequence[Path]) -> Path:
    """compare-BASE-vs-NEW[-vs-NEW2...] beside the last run directory: one per set of runs."""
    names = [Path(d).resolve().name for d in run_dirs]
    return Path(run_dirs[-1]).resolve().parent / f"compare-{'-vs-'.join(names)}"


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
    out = Path(out_dir) if out_dir is not None else default_compare_dir(run_dirs)
    if (out / COMPARE_MD).exists():
        warn(f"replacing the earlier comparison in {out}")
    paths = comparison.write(out, fail_pct, f1_tolerance)
    for m in comparison.matches:
        if m.speed is not None:
            flag = " ⚠ unstable" if m.unstable else ""
            print(
                f"{m.label:44s} {m.new_run}: {m.speed.ratio:.3f}× "
                f"[{m.speed.low:.3f}, {m.speed.high:.3f}] {m.speed_basis}{flag}"
            )
        if m.served is not None:
            print(f"{m.label:44s} {m.new_run}: {m.served:.3f}× {m.scenario_metric}")
    found = [] if fail_pct is None else comparison.regressions(fail_pct, f1_tolerance)
    for line in [] if fail_pct is None else comparison.within_noise(fail_pct):
        print(f"within noise: {line}")
    for line in found:
        print(f"REGRESSION {line}")
    for path in paths:
        print(path)
    return 1 if found else 0
