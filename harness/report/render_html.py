"""The report as ONE self-contained HTML file: inline CSS, inline SVG, nothing fetched.

Every word and number comes from :mod:`.first_screen` and :mod:`.sections`; this module only
escapes and lays them out (a gate's checks and a field's examples fold into their rows, the
charts are drawn inline).

A Content-Security-Policy forbids every network load, so the file works offline by
construction. The one inline script only records script errors into the ``data-errors``
attribute of ``<html>``, so a headless browser can prove the page ran clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from harness.report.first_screen import first_screen
from harness.report.formatting import word_diff
from harness.report.html_assets import CSP, ERROR_RECORDER, STYLE
from harness.report.model import Chart, ReadinessReport
from harness.report.sections import (
    Heading,
    Kind,
    Note,
    Part,
    Row,
    Section,
    Table,
    pair_anchor,
    sections,
)
from harness.report.svg import render_svg

__all__ = ["render_html"]

_HEADER_CLASS = {"GO": "go", "NO-GO": "nogo", "INCONCLUSIVE": "inconclusive"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _badge(status: str) -> str:
    return f'<span class="badge {status}">{status}</span>'


def _list(items: Sequence[str], tag: str = "ul") -> str:
    return f"<{tag}>" + "".join(f"<li>{_e(item)}</li>" for item in items) + f"</{tag}>"


def _first_screen(report: ReadinessReport) -> str:
    screen = first_screen(report)
    parts = ['<section id="first-screen">']
    parts.append(
        "<div><h2>Failed gates</h2>"
        + (_list(screen.failed) if screen.failed else '<p class="mute">none</p>')
        + "</div>"
    )
    parts.append(
        "<div><h2>Inconclusive gates</h2>"
        + (_list(screen.inconclusive) if screen.inconclusive else '<p class="mute">none</p>')
        + "</div>"
    )
    if screen.informational:
        parts.append(f'<div class="wide"><h2>Informational</h2>{_list(screen.informational)}</div>')
    parts.append(f'<div class="wide"><h2>Worst differences</h2>{_list(screen.worst, "ol")}</div>')
    parts.append("</section>")
    return "".join(parts)


def _inline(text: str, kind: Kind) -> str:
    if kind is Kind.NAME:
        return f"<strong>{_e(text)}</strong>"
    if kind is Kind.STATUS:
        return _badge(text)
    if kind is Kind.DECISION:  # drawn as the gate badge of the same colour
        status = {"GO": "PASS", "NO-GO": "FAIL"}.get(text, "INCONCLUSIVE")
        return f'<span class="badge {status}">{_e(text)}</span>'
    if kind is Kind.VERDICT:
        return f'<span class="{_e(text)}">{_e(text)}</span>'
    if kind is Kind.CODE:
        return f"<code>{_e(text)}</code>"
    if kind is Kind.PAIR:
        return f'<a class="mono" href="#{_e(pair_anchor(text))}">{_e(text)}</a>'
    if kind in (Kind.MONO, Kind.CAPTURED):
        return f'<span class="mono">{_e(text)}</span>'
    return _e(text)


def _side_by_side(sdk: str, legacy: str) -> tuple[str, str]:
    """Both values with what differs marked (removed on the SDK side, added on legacy's)."""
    a, b = word_diff(sdk, legacy)
    return _marked(a, "del"), _marked(b, "ins")


def _marked(pieces: Sequence[tuple[str, bool]], mark: str) -> str:
    return "".join(
        f'<mark class="{mark}">{_e(text)}</mark>' if changed else _e(text)
        for text, changed in pieces
    )


def _cells(row: Row, kinds: Sequence[Kind]) -> list[str]:
    cells = [
        "<ul>" + "".join(f"<li>{_inline(item, kind)}</li>" for item in cell) + "</ul>"
        if isinstance(cell, tuple)
        else _inline(cell, kind)
        for cell, kind in zip(row.cells, kinds, strict=True)
    ]
    captured = [i for i, kind in enumerate(kinds) if kind is Kind.CAPTURED]
    if len(captured) == 2:  # the SDK's and legacy's value: what differs is marked
        i, j = captured
        sdk, legacy = _side_by_side(str(row.cells[i]), str(row.cells[j]))
        cells[i], cells[j] = (
            f'<span class="mono">{sdk}</span>',
            f'<span class="mono">{legacy}</span>',
        )
    return cells


def _table(table: Table) -> str:
    head = "".join(f"<th>{_e(c.title)}</th>" for c in table.columns)
    kinds = [c.kind for c in table.columns]
    body = []
    for row in table.rows:
        cells = _cells(row, kinds)
        if row.nested is not None:  # folded into its row, one click away
            nested = _table(row.nested.table)
            cells[table.fold] += (
                f"<details><summary>{_e(row.nested.label)}</summary>{nested}</details>"
            )
        tds = "".join(
            f'<td class="num">{cell}</td>' if kind is Kind.NUMBER else f"<td>{cell}</td>"
            for cell, kind in zip(cells, kinds, strict=True)
        )
        body.append(f"<tr>{tds}</tr>")
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if table.note:
        html += f'<p class="mute">{_e(table.note)}</p>'
    return html


def _part(part: Part) -> str:
    if isinstance(part, Heading):
        anchor = f' id="{_e(part.anchor)}"' if part.anchor else ""
        return f"<h3{anchor}>{_e(part.text)}</h3>"
    if isinstance(part, Note):
        return f'<p class="mute">{_e(part.text)}</p>'
    return _table(part)


def _charts(charts: Iterable[Chart]) -> str:
    svgs = [render_svg(c) for c in charts]
    return f'<div class="charts">{"".join(svgs)}</div>' if svgs else ""


def _section(section: Section) -> str:
    parts = "".join(_part(p) for p in section.parts)
    return (
        f'<section id="{_e(section.slug)}"><h2>{_e(section.title)}</h2>{parts}'
        f"{_charts(section.charts)}</section>"
    )


def render_html(report: ReadinessReport) -> str:
    screen = first_screen(report)
    decision = report.decision.value
    title = f"Cutover readiness: {decision}"
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en" data-errors="">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{_e(title)}</title>\n",
            f"<script>\n{ERROR_RECORDER}\n</script>\n",
            f"<style>{STYLE}</style>\n</head>\n<body>\n",
            f'<header class="verdict {_HEADER_CLASS[decision]}"><h1>{_e(title)}</h1>',
            f'<p class="headline">{_e(screen.headline)}</p><p>{_e(screen.evidence)}</p></header>\n',
            "<main>\n",
            _first_screen(report),
            "\n",
            "\n".join(_section(section) for section in sections(report)),
            "\n</main>\n</body>\n</html>\n",
        ]
    )
