"""The report as Markdown: the first screen, then the sections laid out as tables.

Every word and number comes from :mod:`.first_screen` and :mod:`.sections`; this module only
escapes and lays them out. Charts are separate SVG files beside the report
(``charts/<slug>.svg``), linked as images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.report.first_screen import first_screen
from harness.report.model import ReadinessReport
from harness.report.sections import Cell, Heading, Kind, Note, Section, Table, sections

__all__ = ["render_markdown"]

# Escaped: what always means something in a table cell or inline, ``<`` where it could open
# a tag, ``_`` where it could open or close emphasis (``count_tokens`` stays readable).
_SPECIAL = re.compile(r"([\\`*|\[\]]|<(?=[A-Za-z/!?])|(?<!\w)_|_(?!\w))")
_ICON = {"PASS": "PASS", "FAIL": "**FAIL**", "INCONCLUSIVE": "*INCONCLUSIVE*"}


def _esc(text: object) -> str:
    """Text made inert in Markdown: one line, special characters escaped."""
    flat = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", flat)


def _inline(text: str, kind: Kind) -> str:
    if kind is Kind.NUMBER:  # no markup in it: ``[-2.0, +0.3]`` reads as written
        return text
    if kind is Kind.STATUS:
        return _ICON[text]
    if kind is Kind.CODE:
        return f"`{text}`"
    return _esc(text)


def _cell(cell: Cell, kind: Kind) -> str:
    if isinstance(cell, tuple):
        return ", ".join(_inline(item, kind) for item in cell)
    return _inline(cell, kind)


def _table(table: Table) -> list[str]:
    header = [_esc(c.title) for c in table.columns]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    kinds = [c.kind for c in table.columns]
    lines.extend(
        "| "
        + " | ".join(_cell(cell, kind) for cell, kind in zip(row.cells, kinds, strict=True))
        + " |"
        for row in table.rows
    )
    if table.note:
        lines += ["", _esc(table.note)]
    lines.append("")
    # A row's nested table (a gate's checks, a field's examples) follows the whole table.
    for row in table.rows:
        if row.nested is None:
            continue
        title = " ".join(_inline(text, kind) for text, kind in row.nested.title)
        lines += [f"### {title}" if row.nested.heading else title, ""]
        lines += _table(row.nested.table)
    return lines


def _section(section: Section) -> list[str]:
    lines = [f"## {_esc(section.title)}", ""]
    for part in section.parts:
        if isinstance(part, Heading):
            lines += [f"### {_esc(part.text)}", ""]
        elif isinstance(part, Note):
            lines += [_esc(part.text), ""]
        else:
            lines += _table(part)
    for chart in section.charts:
        lines += [f"![{_esc(chart.title)}](charts/{chart.slug}.svg)", ""]
    return lines


def _lines(items: Iterable[str], bullet: str = "-") -> list[str]:
    return [f"{bullet} {_esc(item)}" for item in items] + [""]


def _first_screen(report: ReadinessReport) -> list[str]:
    screen = first_screen(report)
    lines = [f"# Cutover readiness: {report.decision.value}", "", f"**{_esc(screen.headline)}**"]
    lines += ["", _esc(screen.evidence), ""]
    if screen.failed:
        lines += ["Failed gates:", ""] + _lines(screen.failed)
    if screen.inconclusive:
        lines += ["Inconclusive gates:", ""] + _lines(screen.inconclusive)
    if screen.informational:
        lines += ["Informational:", ""] + _lines(screen.informational)
    lines += ["Worst differences:", ""]
    lines += [f"{i}. {_esc(line)}" for i, line in enumerate(screen.worst, 1)] + [""]
    return lines


def render_markdown(report: ReadinessReport) -> str:
    lines = _first_screen(report)
    for section in sections(report):
        lines += _section(section)
    return "\n".join(lines).rstrip() + "\n"
