"""A report as a list of blocks, rendered alike to HTML (html.py) and Markdown (markdown.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

# A `tone` colours text on the page: "good", "bad", "warn" or "muted".


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str
    tone: str | None = None


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    tone: str | None = None


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, an optional tone and a note shown next to it (a footnote)."""

    text: str
    tone: str | None = None
    note: str | None = None
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    inline: bool = False  # small tables that may sit side by side
    # column header -> what it means, shown under the table
    legend: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Figure:
    name: str  # file stem: figures/<name>.png
    png: bytes
    caption: str


Block = Heading | Para | Bullets | Table | Figure


def table_notes(table: Table) -> list[tuple[int, str]]:
    """Distinct notes of a table, numbered from 1 in reading order."""
    seen: dict[str, int] = {}
    for row in table.rows:
        for c in row:
            if c.note and c.note not in seen:
                seen[c.note] = len(seen) + 1
    return [(n, text) for text, n in seen.items()]
