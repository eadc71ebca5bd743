"""What a report page is made of: sections of blocks (text, tables, figures, heads), plain data that the
template renders. Every string here comes from data and is escaped by the template, never here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    """A caption, column names and rows of cells (numbers are formatted by :func:`cell`)."""

    caption: str
    columns: list[str]
    rows: list[list[str]]
    kind: str = "table"


@dataclass
class Figure:
    """An inline PNG (a ``data:`` URI) and its caption."""

    caption: str
    uri: str
    kind: str = "figure"


@dataclass
class Text:
    text: str
    kind: str = "text"


@dataclass
class Example:
    """One pair shown under a head: which response the head prefers, by how much, and the texts."""

    margin: float
    agrees: bool  # the head prefers the response the label chose
    prompt: str
    chosen: str
    rejected: str


@dataclass
class HeadCard:
    """One head of "what each head means"."""

    head: str
    name: str
    summary: str  # accuracy and explained variance in one line
    correlations: list[tuple[str, str]]  # (attribute, r) strongest first
    more_words: list[str]
    less_words: list[str]
    top: list[Example]
    bottom: list[Example]
    description: str | None = None


@dataclass
class Heads:
    caption: str
    cards: list[HeadCard]
    kind: str = "heads"


Block = Table | Figure | Text | Heads


@dataclass
class Section:
    """One input of the report: its title, what it was detected as, where it came from, its blocks."""

    title: str
    kind: str
    source: str
    blocks: list[Block] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "section-" + "".join(c if c.isalnum() else "-" for c in f"{self.kind}-{self.title}").lower()


def cell(value: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` places (NaN/None as "–"), everything else as text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def interval(row: dict, low: str = "ci_low", high: str = "ci_high") -> str:
    """``low–high`` of a row's 95 % interval."""
    return f"{cell(row.get(low))}–{cell(row.get(high))}"
