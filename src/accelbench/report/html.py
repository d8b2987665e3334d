"""Blocks -> one self-contained HTML page: inline CSS, figures as base64 PNG, no network."""

from __future__ import annotations

import base64
import re
from html import escape

from accelbench.report.doc import Block, Bullets, Cell, Heading, Para, Table, table_notes

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1300px;
  padding:0 1.5em;color:#1d2430;line-height:1.45}
h1{border-bottom:2px solid #4c72b0;padding-bottom:.2em}
h2{margin-top:2em;border-bottom:1px solid #d6dbe3;padding-bottom:.15em}
nav{font-size:14px;margin:.5em 0 1.5em}nav a{margin-right:1.2em;color:#4c72b0}
table{border-collapse:collapse;font-size:13px;margin:.4em 0 .3em}
th{background:#eef1f6;text-align:left;padding:4px 9px;border-bottom:2px solid #c5ccd8;
  white-space:nowrap}
td{padding:3px 9px;border-bottom:1px solid #e3e7ee;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:hover td{background:#f7f9fc}
.good{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.warn{background:#fff4d6}.muted{color:#8a94a6}
sup{font-size:10px;margin-left:2px;cursor:help}
p.warn,ul.warn{border-left:4px solid #e0a800;padding:.4em .8em}
p.bad,ul.bad{border-left:4px solid #c62828;background:#fdecea;padding:.4em .8em}
ol.notes{font-size:12px;color:#4a5568;margin:.2em 0 1em;padding-left:2em}
.legend{font-size:12px;color:#4a5568;margin:.2em 0 1em}
table.inline{display:inline-table;vertical-align:top;margin-right:2.5em}
caption{text-align:left;font-weight:600;padding:.3em 0}
figure{display:inline-block;vertical-align:top;margin:.6em 1em .6em 0;max-width:100%}
figure img{max-width:100%;border:1px solid #e3e7ee}
figcaption{font-size:13px;color:#4a5568}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _cell(c: Cell, numbers: dict[str, int]) -> str:
    classes = " ".join(x for x in ("num" if c.numeric else "", c.tone or "") if x)
    attr = f' class="{classes}"' if classes else ""
    sup = ""
    if c.note:
        mark = ("⚠" if c.tone in ("warn", "bad") else "") + str(numbers[c.note])
        sup = f'<sup title="{escape(c.note)}">{mark}</sup>'
    return f"<td{attr}>{escape(c.text)}{sup}</td>"


def _table(t: Table) -> str:
    notes = table_notes(t)
    numbers = {text: n for n, text in notes}
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(c, numbers) for c in row) + "</tr>" for row in t.rows)
    caption = f"<caption>{escape(t.caption)}</caption>" if t.caption else ""
    cls = ' class="inline"' if t.inline else ""
    out = f"<table{cls}>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if notes:
        items = "".join(f'<li value="{n}">{escape(text)}</li>' for n, text in notes)
        out += f'<ol class="notes">{items}</ol>'
    if t.legend:
        legend = "; ".join(f"<b>{escape(k)}</b>: {escape(v)}" for k, v in t.legend)
        out += f'<div class="legend">{legend}</div>'
    return out


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        return f'<h{b.level} id="{_slug(b.text)}">{escape(b.text)}</h{b.level}>'
    if isinstance(b, Para):
        return f'<p class="{b.tone}">{escape(b.text)}</p>' if b.tone else f"<p>{escape(b.text)}</p>"
    if isinstance(b, Bullets):
        cls = f' class="{b.tone}"' if b.tone else ""
        return f"<ul{cls}>" + "".join(f"<li>{escape(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table(b)
    data = base64.b64encode(b.png).decode()
    return (
        f'<figure><img alt="{escape(b.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(b.caption)}</figcaption></figure>"
    )


def to_html(title: str, blocks: list[Block]) -> str:
    sections = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    nav = "".join(f'<a href="#{_slug(h.text)}">{escape(h.text)}</a>' for h in sections)
    body = "\n".join(_block(b) for b in blocks)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body><h1>{escape(title)}</h1><nav>{nav}</nav>\n{body}\n</body></html>\n"
    )
