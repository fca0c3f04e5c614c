"""The report as ONE self-contained HTML file: inline CSS, inline SVG, nothing fetched.

A Content-Security-Policy forbids every network load, so the file works offline by
construction. The one inline script only records script errors into the ``data-errors``
attribute of ``<html>``, so a headless browser can prove the page ran clean.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from html import escape

from harness.report.first_screen import first_screen
from harness.report.formatting import interval_text, ms, pct, utc_text
from harness.report.html_assets import CSP, ERROR_RECORDER, STYLE
from harness.report.model import Chart, DiffRow, DiffTable, GateResult, ReadinessReport
from harness.report.outcomes import Direction
from harness.report.svg import render_svg

__all__ = ["render_html"]

_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
_HEADER_CLASS = {"GO": "go", "NO-GO": "nogo", "INCONCLUSIVE": "inconclusive"}


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _badge(status: str) -> str:
    return f'<span class="badge {status}">{status}</span>'


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


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


def _gates(gates: Sequence[GateResult]) -> str:
    rows = []
    for g in gates:
        checks = ""
        if g.checks:
            checks = (
                "<details><summary>checks</summary>"
                + _table(
                    ("check", "status", "samples", "measured", "threshold", "note"),
                    (
                        (
                            _e(c.name),
                            _badge(c.status.value),
                            str(c.samples),
                            _e(c.measured),
                            _e(c.threshold),
                            _e(c.detail) or "-",
                        )
                        for c in g.checks
                    ),
                    numeric=(2,),
                )
                + "</details>"
            )
        rows.append(
            (
                f"<strong>{_e(g.name)}</strong>",
                _badge(g.status.value),
                str(g.samples),
                (_e(g.summary) or "-") + checks,
                _e(g.threshold),
            )
        )
    table = _table(("gate", "status", "samples", "detail", "threshold"), rows, numeric=(2,))
    return f'<section id="gates"><h2>Gates</h2>{table}</section>'


def _uncomparable(report: ReadinessReport) -> str:
    found = report.uncomparable
    if not found.rows:
        return ""
    parts = [
        f'<section id="uncomparable"><h2>Uncomparable captures: {found.rows:,} of '
        f"{found.of_rows:,} rows ({pct(found.rate)}), in no gate's samples</h2>",
        _table(("reason", "rows"), ((_e(r), str(n)) for r, n in found.reasons), numeric=(1,)),
        _table(("row id", "reason"), ((str(i), _e(r)) for i, r in found.listed), numeric=(0,)),
    ]
    if found.left_out:
        parts.append(f'<p class="mute">{found.left_out:,} more rows not listed.</p>')
    parts.append("</section>")
    return "".join(parts)


def _side_by_side(sdk: str, legacy: str) -> tuple[str, str]:
    """Both values with what differs marked (removed on the SDK side, added on legacy's).

    Word by word, so ids and sentences read whole; values with little in common are
    marked whole rather than as a confetti of matching letters.
    """
    a_words, b_words = _WORDS.findall(sdk), _WORDS.findall(legacy)
    matcher = difflib.SequenceMatcher(None, a_words, b_words, autojunk=False)
    if matcher.ratio() < 0.5:
        return f'<mark class="del">{_e(sdk)}</mark>', f'<mark class="ins">{_e(legacy)}</mark>'
    a, b = [], []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = "".join(a_words[i1:i2]), "".join(b_words[j1:j2])
        if tag == "equal":
            a.append(_e(left))
            b.append(_e(right))
            continue
        if left:
            a.append(f'<mark class="del">{_e(left)}</mark>')
        if right:
            b.append(f'<mark class="ins">{_e(right)}</mark>')
    return "".join(a), "".join(b)


def _examples(row: DiffRow) -> str:
    if not row.examples:
        return ""
    rows = []
    for example in row.examples:
        sdk, legacy = _side_by_side(example["sdk"], example["legacy"])
        rows.append(
            (
                f'<span class="mono">{_e(example["pair_id"])}</span>',
                f"<code>{_e(example['path'])}</code>",
                f'<span class="mono">{sdk}</span>',
                f'<span class="mono">{legacy}</span>',
                _e(example["detail"]) or "-",
            )
        )
    table = _table(("pair", "path", "SDK", "legacy", "note"), rows)
    return f"<details><summary>{len(row.examples)} examples</summary>{table}</details>"


def _differences(tables: Sequence[DiffTable]) -> str:
    parts = [
        '<section id="differences"><h2>Differences (SDK vs legacy against the legacy A/A '
        "noise)</h2>"
    ]
    if not tables:
        parts.append('<p class="mute">No compared pairs.</p>')
    for table in tables:
        parts.append(
            f"<h3>{_e(table.endpoint)}: {table.compared:,} compared pairs, "
            f"{table.noise_samples:,} A/A repeats</h3>"
        )
        shown = [r for r in table.categories if r.verdict != "ok" or r.noise_rate]
        if not shown:
            parts.append('<p class="mute">No differences.</p>')
            continue
        parts.append(
            _table(
                ("category", "pairs", "difference rate", "noise rate", "verdict"),
                (
                    (
                        _e(r.key),
                        str(r.count),
                        pct(r.rate),
                        pct(r.noise_rate),
                        f'<span class="{r.verdict}">{r.verdict}</span>',
                    )
                    for r in shown
                ),
                numeric=(1, 2, 3),
            )
        )
        parts.append(
            _table(
                ("field", "category", "pairs", "difference rate", "noise rate", "verdict"),
                (
                    (
                        f"<code>{_e(r.key)}</code>"
                        + (_examples(r) if r.verdict in ("regression", "info") else ""),
                        _e(r.category),
                        str(r.count),
                        pct(r.rate),
                        pct(r.noise_rate),
                        f'<span class="{r.verdict}">{r.verdict}</span>',
                    )
                    for r in table.fields
                ),
                numeric=(2, 3, 4),
            )
        )
        if table.fields_left_out:
            parts.append(f'<p class="mute">{table.fields_left_out} more fields not listed.</p>')
    parts.append("</section>")
    return "".join(parts)


def _outcomes(report: ReadinessReport) -> str:
    parts = [
        '<section id="outcomes"><h2>Outcomes: one proxy failed outright (5xx, 429, 408, '
        "no answer), one succeeded</h2>"
    ]
    for direction, how, failing, shifts in (
        (
            Direction.SDK_BETTER,
            "set apart: not compared, not regressions",
            "legacy",
            report.sdk_better,
        ),
        (Direction.SDK_WORSE, "compared as always: counted in the gates", "SDK", report.sdk_worse),
    ):
        parts.append(f"<h3>{_e(direction.label)} ({_e(how)})</h3>")
        if not shifts:
            parts.append('<p class="mute">None.</p>')
            continue
        rows = (
            (
                _e(s.endpoint),
                str(s.pairs),
                f"{s.of_pairs} ({pct(s.rate)})",
                _e(s.failures_text),
                _list([f"{e['pair_id']}: {e['detail']}" for e in s.examples[:2]]),
            )
            for s in shifts
        )
        header = ("endpoint", "pairs", "of mirrored", f"{failing} answered", "examples")
        parts.append(_table(header, rows, numeric=(1, 2)))
    parts.append("</section>")
    return "".join(parts)


def _charts(charts: Iterable[Chart]) -> str:
    svgs = [render_svg(c) for c in charts]
    return f'<div class="charts">{"".join(svgs)}</div>' if svgs else ""


def _latency(report: ReadinessReport) -> str:
    parts = ['<section id="latency"><h2>Latency (ms, SDK / legacy)</h2>']
    if not report.latency:
        parts.append('<p class="mute">No successful exchanges with timings.</p>')
    else:

        def both(values: dict[str, dict[str, float | None]], key: str) -> str:
            return f"{ms(values['sdk'][key])} / {ms(values['legacy'][key])}"

        parts.append(
            _table(
                (
                    "slice",
                    "samples",
                    "p50",
                    "p95",
                    "p99",
                    "TTFT p50",
                    "TTFT p95",
                    "p50 diff 95 % CI",
                    "p95 diff 95 % CI",
                ),
                (
                    (
                        _e(s.label),
                        f"{s.samples['sdk']} / {s.samples['legacy']}",
                        both(s.total, "p50"),
                        both(s.total, "p95"),
                        both(s.total, "p99"),
                        both(s.ttft, "p50") if s.ttft else "-",
                        both(s.ttft, "p95") if s.ttft else "-",
                        interval_text(s.intervals.get("p50")),
                        interval_text(s.intervals.get("p95")),
                    )
                    for s in report.latency
                ),
                numeric=(1, 2, 3, 4, 5, 6, 7, 8),
            )
        )
        parts.append('<p class="mute">Intervals: 95 % bootstrap of SDK minus legacy.</p>')
    parts.append(_charts(c for c in report.charts if c.slug.startswith(("latency-", "ttft-"))))
    parts.append("</section>")
    return "".join(parts)


def _load_and_memory(report: ReadinessReport) -> str:
    parts = ['<section id="load"><h2>Load runs</h2>']
    if report.load:
        parts.append(
            _table(
                (
                    "target",
                    "run",
                    "users",
                    "requests",
                    "failures",
                    "rps",
                    "p50",
                    "p95",
                    "p99",
                    "SLO",
                ),
                (
                    (
                        _e(s.target),
                        _e(s.run),
                        _e(s.users if s.users is not None else "-"),
                        _e(s.requests if s.requests is not None else "-"),
                        _e(s.failures if s.failures is not None else "-"),
                        f"{s.rps:.1f}" if s.rps is not None else "-",
                        ms(s.p50_ms),
                        ms(s.p95_ms),
                        ms(s.p99_ms),
                        {True: "passed", False: "missed", None: "-"}[s.slo_passed],
                    )
                    for s in report.load
                ),
                numeric=(2, 3, 4, 5, 6, 7, 8),
            )
        )
    else:
        parts.append('<p class="mute">No load runs.</p>')
    parts.append('</section><section id="memory"><h2>Memory (RSS)</h2>')
    if report.memory:
        parts.append(
            _table(
                ("target", "run", "samples", "duration", "first", "last", "slope"),
                (
                    (
                        _e(s.target),
                        _e(s.run),
                        str(s.samples),
                        f"{s.duration_s:.0f} s",
                        f"{s.first_mb:.1f} MB" if s.first_mb is not None else "-",
                        f"{s.last_mb:.1f} MB" if s.last_mb is not None else "-",
                        f"{s.slope_mb_per_hour:+.1f} MB/h"
                        if s.slope_mb_per_hour is not None
                        else "-",
                    )
                    for s in report.memory
                ),
                numeric=(2, 3, 4, 5, 6),
            )
        )
    else:
        parts.append('<p class="mute">No process samples.</p>')
    parts.append(_charts(c for c in report.charts if c.slug == "rss"))
    parts.append("</section>")
    return "".join(parts)


def _context(report: ReadinessReport) -> str:
    c = report.context
    primaries = ", ".join(f"{t}: {n:,}" for t, n in c.primaries.items()) or "-"
    rows = (
        ("generated", utc_text(c.generated_at)),
        ("project version (memory_proxy)", c.project_version),
        ("litellm version", c.litellm_version),
        ("config", f"{c.config_path} (sha256 {c.config_sha256 or 'unreadable'})"),
        ("store", c.store_path),
        ("time span", f"{utc_text(c.first_received)} to {utc_text(c.last_received)}"),
        ("pairs", f"{c.pairs:,} ({c.mirrored:,} mirrored, {c.compared:,} compared)"),
        ("A/A repeats", f"{c.aa_samples:,}"),
        ("answered clients", primaries),
        ("sampling", f"{c.sample_rate:g} % of users mirrored, {c.aa_rate:g} % repeated (A/A)"),
        ("load runs / process samples", f"{c.load_runs} / {c.process_samples:,}"),
    )
    table = _table(("", ""), ((_e(k), f'<span class="mono">{_e(v)}</span>') for k, v in rows))
    return f'<section id="context"><h2>Run context</h2>{table}</section>'


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
            _gates(report.gates),
            "\n",
            _uncomparable(report),
            _differences(report.tables),
            "\n",
            _outcomes(report),
            "\n",
            _latency(report),
            "\n",
            _load_and_memory(report),
            "\n",
            _context(report),
            "\n</main>\n</body>\n</html>\n",
        ]
    )
