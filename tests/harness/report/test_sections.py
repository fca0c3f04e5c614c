"""The Markdown and HTML reports show the same sections: titles, table headers, notes, charts.

Both lay out the sections built once in :mod:`harness.report.sections`; these tests read the
two outputs back and compare what a reader sees, so a wording that drifts in one renderer
fails here.
"""

from __future__ import annotations

import html as html_lib
import re

import pytest

from harness.report.model import ReadinessReport
from harness.report.render_html import render_html
from harness.report.render_md import render_markdown
from harness.report.sections import Table, sections

_MD_ESCAPE = re.compile(r"\\(.)")


def _md_text(text: str) -> str:
    return _MD_ESCAPE.sub(r"\1", text.strip())


def _md_sections(markdown: str) -> list[tuple[str, str]]:
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)[1:]
    return [(_md_text(title), body) for title, body in zip(parts[::2], parts[1::2], strict=True)]


def _html_sections(page: str) -> list[tuple[str, str]]:
    found = re.findall(
        r'<section id="(?!first-screen)[^"]*"><h2>(.*?)</h2>(.*?)</section>', page, re.DOTALL
    )
    return [(html_lib.unescape(title), body) for title, body in found]


def _md_headers(body: str) -> list[list[str]]:
    lines = body.splitlines()
    return [
        [_md_text(cell) for cell in lines[i - 1].strip("|").split("|")]
        for i, line in enumerate(lines)
        if re.fullmatch(r"\|(---\|)+", line)
    ]


def _html_headers(body: str) -> list[list[str]]:
    return [
        [html_lib.unescape(cell) for cell in re.findall(r"<th>(.*?)</th>", head)]
        for head in re.findall(r"<thead>(.*?)</thead>", body)
    ]


@pytest.fixture(scope="module")
def both(nogo_report: ReadinessReport) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    markdown = _md_sections(render_markdown(nogo_report))
    page = _html_sections(render_html(nogo_report))
    return list(zip(markdown, page, strict=True))


def test_same_section_titles(both: list[tuple[tuple[str, str], tuple[str, str]]]) -> None:
    titles = [md[0] for md, _ in both]
    assert titles == [page[0] for _, page in both]
    assert "Differences (SDK vs legacy against the legacy A/A noise)" in titles
    assert "Memory (RSS)" in titles


def test_same_table_headers(both: list[tuple[tuple[str, str], tuple[str, str]]]) -> None:
    for (title, md_body), (_, html_body) in both:
        assert _md_headers(md_body) == _html_headers(html_body), title
    latency = next(md_body for (title, md_body), _ in both if title.startswith("Latency"))
    assert "p50 diff 95 % CI" in _md_headers(latency)[0]


def test_same_subheadings_and_notes(both: list[tuple[tuple[str, str], tuple[str, str]]]) -> None:
    for (title, md_body), (_, html_body) in both:
        md_lines = [_md_text(line) for line in md_body.splitlines()]
        md_headings = [line[4:] for line in md_lines if line.startswith("### ")]
        for heading in re.findall(r"<h3>(.*?)</h3>", html_body):
            assert html_lib.unescape(heading) in md_headings, (title, heading)
        for note in re.findall(r'<p class="mute">(.*?)</p>', html_body):
            assert html_lib.unescape(note) in md_lines, (title, note)


def test_same_charts_in_the_same_sections(
    both: list[tuple[tuple[str, str], tuple[str, str]]],
) -> None:
    for (title, md_body), (_, html_body) in both:
        md_charts = [_md_text(alt) for alt in re.findall(r"^!\[(.*)\]\(charts/", md_body, re.M)]
        html_charts = [html_lib.unescape(t) for t in re.findall(r'aria-label="([^"]*)"', html_body)]
        assert md_charts == html_charts, title
    memory = next(md_body for (title, md_body), _ in both if title == "Memory (RSS)")
    assert "charts/rss.svg" in memory


def test_same_examples_of_outcomes(both: list[tuple[tuple[str, str], tuple[str, str]]]) -> None:
    (_, md_body), (_, html_body) = next(pair for pair in both if pair[0][0].startswith("Outcomes"))
    pair_ids = re.compile(r"req-\d+")
    assert sorted(pair_ids.findall(md_body)) == sorted(pair_ids.findall(html_body))


def test_html_leaves_no_cell_empty(nogo_report: ReadinessReport) -> None:
    # Markdown writes "-" where there is nothing to say; HTML says the same.
    assert not re.findall(r"<td[^>]*></td>", render_html(nogo_report))


def _tables(parts: tuple[object, ...]) -> list[Table]:
    found = []
    for part in parts:
        if isinstance(part, Table):
            found.append(part)
            found += _tables(tuple(r.nested.table for r in part.rows if r.nested))
    return found


def test_sections_in_reading_order(nogo_report: ReadinessReport) -> None:
    built = sections(nogo_report)
    assert [s.slug for s in built] == [
        "gates",
        "differences",
        "outcomes",
        "pairs",
        "latency",
        "load",
        "memory",
        "context",
    ]  # no uncomparable rows, no accept rules in this store: no section for them
    for section in built:
        for table in _tables(section.parts):
            assert all(len(row.cells) == len(table.columns) for row in table.rows), section.slug
            assert 0 <= table.fold < len(table.columns)
    charts = {s.slug: [c.slug for c in s.charts] for s in built}
    assert charts["memory"] == ["rss"]
    assert len(charts["latency"]) == len(nogo_report.charts) - 1
