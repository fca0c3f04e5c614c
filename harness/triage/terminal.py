"""A drilled-down pair's parts laid out for a terminal (``harness show``).

The words and rows come from :func:`harness.report.sections.pair_parts`, as in the HTML
report; this only lays them out. Two captured values in a row are highlighted with the
report's word diff: in colour on a terminal (SDK red, legacy green), else marked
``[-...-]`` / ``{+...+}`` as ``git diff --word-diff`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from harness.report.formatting import word_diff
from harness.report.sections import Heading, Kind, Note, Part, Table

__all__ = ["render_parts"]

_RED, _GREEN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


def _marked(pieces: Sequence[tuple[str, bool]], color: bool, side: str) -> str:
    out = []
    for text, changed in pieces:
        if not changed:
            out.append(text)
        elif color:
            out.append(f"{_RED if side == 'sdk' else _GREEN}{text}{_RESET}")
        else:
            out.append(f"[-{text}-]" if side == "sdk" else f"{{+{text}+}}")
    return "".join(out)


def _text(cell: str | tuple[str, ...]) -> str:
    return ", ".join(cell) if isinstance(cell, tuple) else cell


def _table(table: Table, color: bool) -> list[str]:
    kinds = [c.kind for c in table.columns]
    titles = [c.title for c in table.columns]
    captured = [i for i, kind in enumerate(kinds) if kind is Kind.CAPTURED]
    lines = []
    for row in table.rows:
        cells = [_text(c) for c in row.cells]
        if len(captured) == 2:
            i, j = captured
            a, b = word_diff(cells[i], cells[j])
            cells[i], cells[j] = _marked(a, color, "sdk"), _marked(b, color, "legacy")
        head = [f"{t}: {c}" if t else c for t, c in zip(titles, cells, strict=True) if c]
        if not titles[0]:  # a label column: "label" then the values, one a line
            lines.append(f"{cells[0]}:")
            lines += [f"    {h}" for h in head[1:]]
        else:
            lines.append("  - " + "\n    ".join(head))
    return lines


def render_parts(parts: Iterable[Part], *, color: bool = False) -> str:
    lines: list[str] = []
    for part in parts:
        if isinstance(part, Heading):
            title = f"{_BOLD}{part.text}{_RESET}" if color else part.text
            lines += [title, "=" * len(part.text)]
        elif isinstance(part, Note):
            lines.append(part.text)
        else:
            lines += _table(part, color)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
