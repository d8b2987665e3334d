"""The compare report: compare.html (self-contained) and compare.md (+ figures/)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from accelbench.report import plots  # noqa: F401  (selects the Agg backend)
from accelbench.report.doc import Block, Bullets, Cell, Figure, Heading, Para, Table
from accelbench.report.frame import Run
from accelbench.report.html import to_html
from accelbench.report.markdown import to_markdown
from accelbench.report.plots import png
from accelbench.report.ratios import NOISE_FLOOR_CVS, NOISE_FLOOR_MIN_PCT, SETTLE
from accelbench.report.tables import num

if TYPE_CHECKING:  # compare.py imports this module to write a Comparison: names for types only
    from accelbench.report.compare import Comparison, Match


def _speed_cell(m: Match) -> Cell:
    if m.served is not None:
        tone = "good" if m.served > 1 else "bad" if m.served < 1 else None
        return Cell(f"{m.served:.3f}×", tone, f"{m.scenario_metric}: one LoadGen run each", True)
    if m.speed is None:
        return Cell("–", numeric=True)
    s = m.speed
    text = f"{s.ratio:.3f}× [{s.low:.3f}–{s.high:.3f}]"
    if m.unstable:
        return Cell(text + " unsettled", "warn", m.stability(), True)
    tone = "good" if s.low > 1 else "bad" if s.high < 1 else None
    return Cell(text, tone, m.stability() if m.caveats() else None, True)


def _f1(rec: dict) -> str:
    f1 = rec["metrics"].get("f1")
    return "–" if f1 is None else f"{f1 * 100:.1f}"


def _gate(rec: dict) -> Cell:
    m = rec["metrics"]
    gate = m.get("f1_gate")
    if gate is None:
        return Cell("–")
    rule = m.get("accuracy_target") or "points"
    if gate == "not checked":
        return Cell(f"{rule}: not checked", "muted", m.get("reference_undertrained"))
    return Cell(f"{rule}: {gate.split(':')[0]}", "bad" if gate == "numeric_fail" else None)


def _table(matches: Sequence[Match]) -> Table:
    rows = []
    for m in matches:
        status = (
            m.base["status"]
            if m.base["status"] == m.new["status"]
            else (f"{m.base['status']} → {m.new['status']}")
        )
        rows.append(
            (
                Cell(m.label),
                Cell(m.new_run),
                Cell(status, None if m.comparable else "muted"),
                Cell(f"{len(m.base_all)} / {len(m.new_all)}", numeric=True),
                Cell(num(m.base["metrics"].get("samples_per_s")), numeric=True),
                Cell(num(m.new["metrics"].get("samples_per_s")), numeric=True),
                _speed_cell(m),
                Cell(_f1(m.base), numeric=True),
                Cell(_f1(m.new), numeric=True),
                Cell("–" if m.delta_f1 is None else f"{m.delta_f1:+.2f}", numeric=True),
                _gate(m.new),
            )
        )
    legend = (
        (
            "NEW / BASE",
            "speed ratio per sentence with a 95% CI: across processes when both sides ran "
            "--repeats 2 or more, else a bootstrap of one process's raw timings",
        ),
        (
            "serve cells",
            "NEW / BASE of the scenario's metric (served QPS at the bound, offline samples/s; "
            "single-stream p90 as BASE / NEW): > 1 is better; no interval",
        ),
        ("runs", "processes (repeats) per side, BASE / NEW"),
        ("ΔF1", "entity F1 points, NEW − BASE (means over repeats)"),
        (
            "NEW F1 gate",
            "NEW's F1 against its own run's fp32 reference: --accuracy-target PCT% of it "
            "(MLPerf's BERT-99 form) or --f1-tolerance points below it",
        ),
    )
    columns = ("cell", "NEW run", "status", "runs", "BASE seq/s", "NEW seq/s", "NEW / BASE")
    columns += ("BASE F1 %",)
    return Table((*columns, "NEW F1 %", "ΔF1", "NEW F1 gate"), tuple(rows), legend=legend)


def _figure(matches: Sequence[Match]) -> Figure | None:
    shown = [m for m in matches if m.speed is not None]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(shown) + 1.5))
    runs = sorted({m.new_run for m in shown})
    colors = dict(zip(runs, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    y = np.arange(len(shown))
    ratios = np.array([m.speed.ratio for m in shown])
    err = np.array([[m.speed.ratio - m.speed.low, m.speed.high - m.speed.ratio] for m in shown]).T
    if len(runs) == 1:  # one NEW run: colour says faster or slower
        bar_colors = ["#1a7f37" if r >= 1 else "#c62828" for r in ratios]
    else:
        bar_colors = [colors.get(m.new_run, "#7f7f7f") for m in shown]
    ax.barh(y, ratios - 1, left=1, color=bar_colors)
    ax.errorbar(ratios, y, xerr=err, fmt="none", ecolor="black", capsize=3)
    ax.axvline(1, color="black", lw=0.8)
    lows, highs = [m.speed.low for m in shown], [m.speed.high for m in shown]
    ax.set_xlim(min(0.95, 0.95 * min(lows)), max(1.05, 1.05 * max(highs)))
    labels = [m.label + (f" ({m.new_run})" if len(runs) > 1 else "") for m in shown]
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("NEW speed / BASE speed (95% CI)")
    ax.set_title("throughput ratio per matched cell")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return Figure("compare_speed", png(fig), "NEW / BASE throughput per matched cell")


def _unmatched(base: Run, news: Sequence[Run]) -> list[str]:
    base_ids = {r["cell_id"] for r in base.records}
    out = []
    for new in news:
        ids = {r["cell_id"] for r in new.records}
        only_base = [r["label"] for r in base.records if r["cell_id"] not in ids]
        only_new = [r["label"] for r in new.records if r["cell_id"] not in base_ids]
        if only_base:
            out.append(f"only in BASE, not in {new.name}: {', '.join(only_base)}")
        if only_new:
            out.append(f"only in {new.name}: {', '.join(only_new)}")
    return out


def write_compare(
    comparison: Comparison,
    regressions: Sequence[str] | None,
    noise: Sequence[str] | None,
    out: Path,
) -> list[Path]:
    base, news, matches = comparison.base, comparison.news, comparison.matches
    runs = [f"BASE {base.name} ({base.path})", *(f"NEW {n.name} ({n.path})" for n in news)]
    blocks: list[Block] = [Heading("Runs"), Bullets(tuple(runs))]
    if comparison.warnings:
        blocks += [Heading("Comparability warnings")]
        blocks.append(Bullets(comparison.warnings, tone="warn"))
    if comparison.notes:
        blocks.append(Bullets(comparison.notes))
    blocks.append(Heading("Regressions"))
    if regressions is None:
        blocks.append(Para("No threshold given (--fail-on-regression PCT)."))
    elif regressions:
        blocks.append(Bullets(tuple(regressions), tone="bad"))
    else:
        blocks.append(Para("None beyond the thresholds and their noise."))
    if noise:
        blocks.append(Para("Past the limit at the point estimate, but within noise:"))
        blocks.append(Bullets(tuple(noise), tone="warn"))
    if not all(m.across_processes for m in matches if m.speed is not None):
        blocks.append(
            Para(
                "Cells measured in one process per side carry only within-process noise, which "
                "cannot see run-to-run noise: such a cell is a regression only when it fell "
                f"beyond its noise floor too ({NOISE_FLOOR_CVS:g} × the larger within-process "
                f"CV of its two sides, at least {NOISE_FLOOR_MIN_PCT:g} %); {SETTLE}.",
                tone="warn",
            )
        )
    blocks += [Heading("Matched cells"), _table(matches)]
    fig = _figure(matches)
    blocks += [fig] if fig else []
    if unmatched := _unmatched(base, news):
        blocks += [Heading("Unmatched cells"), Bullets(tuple(unmatched))]
    out.mkdir(parents=True, exist_ok=True)
    if fig:
        (out / "figures").mkdir(exist_ok=True)
        (out / "figures" / f"{fig.name}.png").write_bytes(fig.png)
    title = f"accelbench compare: {base.name} vs {', '.join(n.name for n in news)}"
    paths = [out / "compare.html", out / "compare.md"]
    paths[0].write_text(to_html(title, blocks), encoding="utf-8")
    paths[1].write_text(f"# {title}\n\n" + to_markdown(blocks), encoding="utf-8")
    return paths
