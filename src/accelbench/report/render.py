"""report.md (figures as PNG files beside it) and report.html (one self-contained file)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from accelbench.errors import UserError
from accelbench.report.frame import records_frame
from accelbench.report.plots import figures
from accelbench.store import RESULTS, read_records

TABLE_COLUMNS = [
    "workload",
    "runtime",
    "device",
    "precision",
    "padding",
    "batch_size",
    "status",
    "samples_per_s",
    "tokens_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "f1",
    "delta_f1",
    "reason",
]


def _table(df: pd.DataFrame) -> pd.DataFrame:
    t = df[TABLE_COLUMNS].copy()
    for col in ("f1", "delta_f1"):
        t[col] = (t[col].astype(float) * 100).round(2)
    for col in ("samples_per_s", "tokens_per_s", "latency_p50_ms", "latency_p99_ms"):
        t[col] = t[col].astype(float).round(2)
    return t.rename(columns={"f1": "F1 (%)", "delta_f1": "ΔF1 (points)"}).fillna("")


def _environment(records: list[dict]) -> dict:
    env = next((r["env"] for r in records if r.get("env")), {})
    keys = (
        "hostname",
        "cpu",
        "cpu_count",
        "gpu",
        "driver",
        "python",
        "torch",
        "cuda",
        "transformers",
        "onnxruntime",
        "git_sha",
    )
    return {k: env.get(k) for k in keys}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_report(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    records = read_records(Path(run_dir) / RESULTS)
    if not records:
        raise UserError(
            f"{run_dir} holds no results ({RESULTS} missing or empty): give a "
            "directory written by accelbench run"
        )
    out = Path(out_dir or run_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    df = records_frame(records)
    table = _table(df)
    env = _environment(records)
    pngs = {name: _png(fig) for name, fig in figures(df).items()}
    for name, data in pngs.items():
        (out / "figures" / f"{name}.png").write_bytes(data)

    md = [
        "# accelbench report",
        "",
        "## Environment",
        "",
        *(f"- **{k}**: {v}" for k, v in env.items() if v is not None),
        "",
        "## Cells",
        "",
        table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False),
        "",
        "## Figures",
        "",
        *(f"![{n}](figures/{n}.png)" for n in pngs),
    ]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")

    imgs = "".join(
        f'<figure><img alt="{n}" src="data:image/png;base64,'
        f'{base64.b64encode(d).decode()}"><figcaption>{n}</figcaption></figure>'
        for n, d in pngs.items()
    )
    env_html = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in env.items()
        if v is not None
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>accelbench report</title>"
        f"<style>{CSS}</style></head><body><h1>accelbench report</h1>"
        f"<h2>Environment</h2><table>{env_html}</table><h2>Cells</h2>"
        f"{table.to_html(index=False, border=0)}<h2>Figures</h2>{imgs}</body></html>"
    )
    html_path = out / "report.html"
    html_path.write_text(page)
    return [md_path, html_path]


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;"
    "border-bottom:1px solid #ddd;text-align:left}figure{display:inline-block;margin:1em}"
    "img{max-width:560px}"
)
