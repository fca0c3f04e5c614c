"""The parts a report section is made of: tables of display strings, headings, notes (pure).

:mod:`.sections` and :mod:`.triage_sections` build them; :mod:`.render_md`,
:mod:`.render_html` and ``harness show`` lay them out. A column's :class:`Kind` says what
its cells are (a status, a field path, a number), never how to draw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from harness.report.model import Chart

__all__ = [
    "Cell",
    "Column",
    "Heading",
    "Kind",
    "Nested",
    "Note",
    "Part",
    "Row",
    "Section",
    "Table",
    "columns",
    "numbers",
    "table",
]


class Kind(StrEnum):
    """What a column holds; each renderer decides how that looks."""

    TEXT = "text"
    NAME = "name"  # what the row is about (a gate)
    NUMBER = "number"  # written by .formatting: no markup in it, aligned as a number
    STATUS = "status"  # a Status value
    VERDICT = "verdict"  # regression, not in A/A, info, noise, ok
    CODE = "code"  # a field path, as the tables group it
    MONO = "mono"  # an id, a concrete path, a version or hash
    CAPTURED = "captured"  # a captured value; a row's two are compared side by side
    PAIR = "pair"  # a pair id whose drill-down view is in the report (a link, in HTML)
    DECISION = "decision"  # a Decision value (GO, NO-GO, INCONCLUSIVE)


# A cell is one string, or a list of strings (a row's examples).
Cell = str | tuple[str, ...]


@dataclass(frozen=True)
class Column:
    title: str
    kind: Kind = Kind.TEXT


@dataclass(frozen=True)
class Nested:
    """A table that belongs to one row: a gate's checks, a field's examples.

    Laid out apart (Markdown) it goes after its parent table under ``title``, a heading of
    its own when ``heading``, else a lead-in line; folded into its row (HTML) it hides
    behind ``label``. ``title`` is (text, kind) pieces joined by spaces, since a field path
    in it reads as code.
    """

    title: tuple[tuple[str, Kind], ...]
    label: str
    table: Table
    heading: bool = False


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    nested: Nested | None = None


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    note: str = ""  # said right under the table: what it leaves out, how to read it
    fold: int = 0  # the column a row's nested table folds into, where it is folded


@dataclass(frozen=True)
class Heading:
    text: str
    anchor: str = ""  # a stable id to link to (HTML), e.g. a pair's drill-down view


@dataclass(frozen=True)
class Note:
    text: str


Part = Heading | Note | Table


@dataclass(frozen=True)
class Section:
    slug: str  # a stable id (the HTML anchor)
    title: str
    parts: tuple[Part, ...]
    charts: tuple[Chart, ...] = ()


def columns(*specs: str | tuple[str, Kind]) -> tuple[Column, ...]:
    return tuple(Column(s) if isinstance(s, str) else Column(*s) for s in specs)


def numbers(*titles: str) -> tuple[Column, ...]:
    return tuple(Column(title, Kind.NUMBER) for title in titles)


def table(columns: tuple[Column, ...], rows: Sequence[Sequence[Cell]], note: str = "") -> Table:
    return Table(columns, tuple(Row(tuple(cells)) for cells in rows), note)
