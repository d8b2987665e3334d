"""Blocks -> Markdown: pipe tables, footnoted cell notes, figures as files beside the page."""

from __future__ import annotations

from accelbench.report.doc import Block, Bullets, Cell, Figure, Heading, Para, Table, table_notes

_SUP = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def marker(c: Cell, numbers: dict[str, int]) -> str:
    if not c.note:
        return ""
    return ("⚠" if c.tone in ("warn", "bad") else "") + str(numbers[c.note]).translate(_SUP)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> list[str]:
    notes = table_notes(t)
    numbers = {text: n for n, text in notes}
    lines = ["| " + " | ".join(_escape(c) for c in t.columns) + " |"]
    lines.append(
        "|" + "|".join("---:" if _numeric(t, i) else "---" for i in range(len(t.columns))) + "|"
    )
    for row in t.rows:
        cells = []
        for c in row:
            text = c.text
            if c.tone == "bad" and text:
                text = f"**{text}**"
            cells.append(_escape(text + marker(c, numbers)))
        lines.append("| " + " | ".join(cells) + " |")
    out = [f"*{t.caption}*", ""] if t.caption else []
    out += lines
    if notes or t.legend:
        out.append("")
    out += [f"{str(n).translate(_SUP)} {_escape(text)}  " for n, text in notes]
    if t.legend:
        out.append("; ".join(f"**{k}**: {v}" for k, v in t.legend))
    return out


def _numeric(t: Table, col: int) -> bool:
    return any(row[col].numeric for row in t.rows)


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text]
        elif isinstance(b, Para):
            out += [f"> **{b.text}**" if b.tone in ("warn", "bad") else b.text]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items]
        elif isinstance(b, Table):
            out += _table(b)
        elif isinstance(b, Figure):
            out += [f"![{b.caption}](figures/{b.name}.png)", "", f"*{b.caption}*"]
        out.append("")
    return "\n".join(out)
