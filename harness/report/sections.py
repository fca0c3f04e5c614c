"""The report's sections, built once as tables of display strings (pure).

The parts they are made of are :mod:`.layout`'s; the triage sections (accepted
differences, drill-down, what changed) are :mod:`.triage_sections`'.

As coverage.py's ``tabular_report`` hands each reporter the same header and rows, every
wording, number and choice of rows is made here; :mod:`.render_md` and :mod:`.render_html`
only lay the sections out and escape them, so the two formats cannot disagree. A column's
:class:`Kind` says what its cells are (a status, a field path, a number), never how to draw
them: each renderer maps kinds to its own markup.

::

    ReadinessReport --sections--> (Section: title, [Heading | Note | Table], charts)
    Table: columns (title, kind), rows of display strings, a row's nested table
"""

from __future__ import annotations

from harness.report.diffy import NOT_IN_AA
from harness.report.first_screen import not_mirrored_text, run_text
from harness.report.formatting import MISSING, interval_text, ms, pct, utc_text
from harness.report.layout import (
    Cell,
    Column,
    Heading,
    Kind,
    Nested,
    Note,
    Part,
    Row,
    Section,
    Table,
)
from harness.report.layout import columns as _columns
from harness.report.layout import numbers as _numbers
from harness.report.layout import table as _table
from harness.report.model import (
    DiffRow,
    DiffTable,
    GateResult,
    LatencySummary,
    MemorySummary,
    ReadinessReport,
    RunContext,
)
from harness.report.outcomes import Direction
from harness.report.triage_sections import (
    accepted_section,
    changes_rows,
    changes_section,
    drilldown_section,
    pair_anchor,
    pair_parts,
)

__all__ = [
    "EXAMPLES_OF",
    "OUTCOME_EXAMPLES",
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
    "changes_rows",
    "pair_anchor",
    "pair_parts",
    "sections",
]

OUTCOME_EXAMPLES = 2  # per endpoint: a table cell, not a log
# The verdicts whose fields show their examples.
EXAMPLES_OF = ("regression", NOT_IN_AA, "info")


_CHECKS = _columns(
    "check", ("status", Kind.STATUS), ("samples", Kind.NUMBER), "measured", "threshold", "note"
)


def _checks(gate: GateResult) -> Nested | None:
    if not gate.checks:
        return None
    rows = [
        (c.name, c.status.value, str(c.samples), c.measured, c.threshold, c.detail or MISSING)
        for c in gate.checks
    ]
    title = ((f"{gate.name}: {gate.status.value}", Kind.TEXT),)
    return Nested(title, "checks", _table(_CHECKS, rows), heading=True)


def _gates(report: ReadinessReport) -> Section:
    columns = _columns(
        ("gate", Kind.NAME),
        ("status", Kind.STATUS),
        ("samples", Kind.NUMBER),
        "detail",
        "threshold",
    )
    rows = tuple(
        Row(
            (g.name, g.status.value, str(g.samples), g.summary or MISSING, g.threshold),
            _checks(g),
        )
        for g in report.gates
    )
    return Section("gates", "Gates", (Table(columns, rows, fold=3),))


def _uncomparable(report: ReadinessReport) -> Section | None:
    found = report.uncomparable
    if not found.rows:
        return None
    title = (
        f"Uncomparable captures: {found.rows:,} of {found.of_rows:,} rows "
        f"({pct(found.rate)}), in no gate's samples"
    )
    reasons = _table(
        _columns("reason", ("rows", Kind.NUMBER)), [(r, str(n)) for r, n in found.reasons]
    )
    listed = _table(
        _columns(("row id", Kind.NUMBER), "reason"),
        [(str(i), r) for i, r in found.listed],
        f"{found.left_out:,} more rows not listed." if found.left_out else "",
    )
    return Section("uncomparable", title, (reasons, listed))


_EXAMPLES = _columns(
    ("pair", Kind.MONO),
    ("path", Kind.MONO),
    ("SDK", Kind.CAPTURED),
    ("legacy", Kind.CAPTURED),
    "note",
)


def _examples(row: DiffRow) -> Nested | None:
    if not row.examples or row.verdict not in EXAMPLES_OF:
        return None
    rows = [
        (e["pair_id"], e["path"], e["sdk"], e["legacy"], e["detail"] or MISSING)
        for e in row.examples
    ]
    title = (("Examples of", Kind.TEXT), (row.key, Kind.CODE), (f"({row.endpoint}):", Kind.TEXT))
    return Nested(title, f"{len(row.examples)} examples", _table(_EXAMPLES, rows))


_RATES = _numbers("pairs", "difference rate", "noise rate")


def _rates(row: DiffRow) -> tuple[str, str, str]:
    return str(row.count), pct(row.rate), pct(row.noise_rate)


def _difference_parts(table: DiffTable) -> list[Part]:
    parts: list[Part] = [
        Heading(
            f"{table.endpoint}: {table.compared:,} compared pairs, "
            f"{table.noise_samples:,} A/A repeats"
        )
    ]
    shown = table.shown_categories
    if not shown:
        return [*parts, Note("No differences.")]
    categories = _table(
        (Column("category"), *_RATES, Column("verdict", Kind.VERDICT)),
        [(r.key, *_rates(r), r.verdict) for r in shown],
    )
    fields = Table(
        (*_columns(("field", Kind.CODE), "category"), *_RATES, Column("verdict", Kind.VERDICT)),
        tuple(Row((r.key, r.category, *_rates(r), r.verdict), _examples(r)) for r in table.fields),
        f"{table.fields_left_out} more fields not listed." if table.fields_left_out else "",
    )
    return [*parts, categories, fields]


def _differences(report: ReadinessReport) -> Section:
    parts: list[Part] = []
    for table in report.tables:
        parts += _difference_parts(table)
    title = "Differences (SDK vs legacy against the legacy A/A noise)"
    return Section("differences", title, tuple(parts) or (Note("No compared pairs."),))


def _outcomes(report: ReadinessReport) -> Section:
    parts: list[Part] = []
    for direction, how, failing, shifts in (
        (
            Direction.SDK_BETTER,
            "set apart: not compared, not regressions",
            "legacy",
            report.sdk_better,
        ),
        (Direction.SDK_WORSE, "compared as always: counted in the gates", "SDK", report.sdk_worse),
    ):
        parts.append(Heading(f"{direction.label} ({how})"))
        if not shifts:
            parts.append(Note("None."))
            continue
        columns = _columns(
            "endpoint",
            ("pairs", Kind.NUMBER),
            ("of mirrored", Kind.NUMBER),
            f"{failing} answered",
            "examples",
        )
        rows = [
            (
                s.endpoint,
                str(s.pairs),
                f"{s.of_pairs} ({pct(s.rate)})",
                s.failures_text,
                tuple(f"{e['pair_id']}: {e['detail']}" for e in s.examples[:OUTCOME_EXAMPLES]),
            )
            for s in shifts
        ]
        parts.append(_table(columns, rows))
    title = "Outcomes: one proxy failed outright (5xx, 429, 408, no answer), one succeeded"
    return Section("outcomes", title, tuple(parts))


def _sides(values: dict[str, dict[str, float | None]], key: str) -> str:
    return f"{ms(values['sdk'][key])} / {ms(values['legacy'][key])}"


def _latency_row(s: LatencySummary) -> tuple[str, ...]:
    return (
        s.label,
        f"{s.samples['sdk']} / {s.samples['legacy']}",
        _sides(s.total, "p50"),
        _sides(s.total, "p95"),
        _sides(s.total, "p99"),
        _sides(s.ttft, "p50") if s.ttft else MISSING,
        _sides(s.ttft, "p95") if s.ttft else MISSING,
        interval_text(s.intervals.get("p50")),
        interval_text(s.intervals.get("p95")),
    )


def _latency(report: ReadinessReport) -> Section:
    title = "Latency (ms, SDK / legacy)"
    charts = tuple(c for c in report.charts if c.slug.startswith(("latency-", "ttft-")))
    if not report.latency:
        return Section("latency", title, (Note("No successful exchanges with timings."),), charts)
    numbers = _numbers("samples", "p50", "p95", "p99", "TTFT p50", "TTFT p95")
    table = _table(
        (Column("slice"), *numbers, *_numbers("p50 diff 95 % CI", "p95 diff 95 % CI")),
        [_latency_row(s) for s in report.latency],
        "Intervals: 95 % bootstrap of SDK minus legacy; a gate fails when the interval lies "
        "wholly above the allowed slowdown, passes when wholly within it.",
    )
    return Section("latency", title, (Note(latency_method_text(report.context)), table), charts)


def latency_method_text(context: RunContext) -> str:
    """How the compared timings were taken, in one paragraph (every format shows it)."""
    timing = context.latency_timing
    alike, served = timing.get("alike", 0), timing.get("as served", 0)
    parts = ["How latency is measured:"]
    if alike:
        parts.append(
            f"{alike:,} pairs timed alike. Under replay each mirrored request is sent at the "
            "same moment, by the mirror's own HTTP client, to the legacy proxy and to a "
            "latency twin (the SDK build, from the same config), and both are answered by "
            "the replay upstream with the provider's answer to the primary, at the "
            "primary's pace. Both are timed at their HTTP boundary with the same clock, "
            "client and load, on the same upstream timing: the difference is the two "
            "proxies' own overhead."
        )
    if served:
        parts.append(
            f"{served:,} pairs timed as served (live mode, a legacy primary, or no twin): "
            "the primary inside its own server, the mirror by the sidecar's client, after a "
            "socket hop each way and at the sidecar's low CPU priority. These two are not "
            "timed alike: the primary looks faster than it is."
        )
    if not alike and not served:
        parts.append("no pair was timed.")
    return " ".join(parts)


def _count(value: int | None) -> str:
    return MISSING if value is None else str(value)


def _load(report: ReadinessReport) -> Section:
    if not report.load:
        return Section("load", "Load runs", (Note("No load runs."),))
    slo = {True: "passed", False: "missed", None: MISSING}
    rows = [
        (
            s.target,
            s.run,
            _count(s.users),
            _count(s.requests),
            _count(s.failures),
            MISSING if s.rps is None else f"{s.rps:.1f}",
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            slo[s.slo_passed],
        )
        for s in report.load
    ]
    numbers = _numbers("users", "requests", "failures", "rps", "p50", "p95", "p99")
    columns = (*_columns("target", "run"), *numbers, Column("SLO"))
    return Section("load", "Load runs", (_table(columns, rows),))


def _mb(value: float | None, unit: str = "MB", sign: str = "") -> str:
    return MISSING if value is None else f"{value:{sign}.1f} {unit}"


def _growth(s: MemorySummary) -> str:
    if s.growth_mb_per_10k is None or s.growth_low is None or s.growth_high is None:
        return MISSING
    return f"{s.growth_mb_per_10k:+.2f} MB ({s.growth_low:+.2f} to {s.growth_high:+.2f})"


def _memory(report: ReadinessReport) -> Section:
    charts = tuple(c for c in report.charts if c.slug == "rss")
    if not report.memory:
        return Section("memory", "Memory (RSS)", (Note("No process samples."),), charts)
    rows = [
        (
            s.target,
            s.run,
            str(s.samples),
            f"{s.duration_s:.0f} s",
            MISSING
            if s.requests is None
            else f"{s.requests:,}" + ("*" if s.requests_estimated else ""),
            _mb(s.first_mb),
            _mb(s.last_mb),
            _growth(s),
        )
        for s in report.memory
    ]
    numbers = _numbers(
        "samples", "duration", "requests", "first", "last", "growth per 10k requests (95 %)"
    )
    columns = (*_columns("target", "run"), *numbers)
    parts: tuple[Part, ...] = (_table(columns, rows),)
    if any(s.requests_estimated for s in report.memory):
        parts += (
            Note(
                "* requests spread over the run at a steady rate from its total (the load "
                "run stored no per-sample request counts)"
            ),
        )
    return Section("memory", "Memory (RSS)", parts, charts)


def _context(report: ReadinessReport) -> Section:
    c = report.context
    primaries = ", ".join(f"{t}: {n:,}" for t, n in c.primaries.items()) or MISSING
    rows = (
        ("generated", utc_text(c.generated_at)),
        ("project version (memory_proxy)", c.project_version),
        ("litellm version", c.litellm_version),
        ("config", f"{c.config_path} (sha256 {c.config_sha256 or 'unreadable'})"),
        ("store", c.store_path),
        # Which pairs were read when no one run was (a run's own rows say it below).
        *((("pairs read", c.scope),) if c.shadow_run is None and c.scope != "all pairs" else ()),
        ("time span", f"{utc_text(c.first_received)} to {utc_text(c.last_received)}"),
        ("pairs", f"{c.pairs:,} ({c.mirrored:,} mirrored, {c.compared:,} compared)"),
        *(
            (("not mirrored (primary only)", not_mirrored_text(c.not_mirrored)),)
            if c.not_mirrored
            else ()
        ),
        ("A/A repeats", f"{c.aa_samples:,}"),
        ("answered clients", primaries),
        ("sampling", f"{c.sample_rate:g} % of users mirrored, {c.aa_rate:g} % repeated (A/A)"),
        ("load runs / process samples", f"{c.load_runs} / {c.process_samples:,}"),
        *_run_rows(report),
    )
    table = _table(_columns("", ("", Kind.MONO)), rows)
    return Section("context", "Run context", (table,))


def _canary(report: ReadinessReport) -> Section | None:
    canary = report.canary
    if canary is None:
        return None
    steps = ",".join(f"{s:g}" for s in canary.steps)
    title = f"Canary: {canary.status}, {canary.percent:g} % on the SDK proxy (steps {steps})"
    rows = [
        (utc_text(line.at), str(line.step), f"{line.percent:g}", line.event, line.detail or MISSING)
        for line in canary.lines
    ]
    columns = _columns(
        ("at", Kind.MONO), ("step", Kind.NUMBER), ("SDK %", Kind.NUMBER), "event", "detail"
    )
    note = (
        "Each step's window is judged by the report's gates (error rate, latency, parity); "
        "a failing window sends every user back to legacy at once."
    )
    return Section("canary", title, (_table(columns, rows, note),))


def _run_rows(report: ReadinessReport) -> tuple[tuple[str, str], ...]:
    """The shadow run read: what produced it and its mirror coverage."""
    run = report.context.shadow_run
    if run is None:
        return ()
    coverage = report.context.coverage
    return (
        ("run", run_text(report)),
        *((f"{role} proxy version", text) for role, text in sorted(run.versions.items())),
        *(
            (f"{name} config (run)", f"{c.get('path')} (sha256 {c.get('sha256') or 'unreadable'})")
            for name, c in sorted(run.configs.items())
            if isinstance(c, dict)
        ),
        ("mirror coverage", coverage.line() if coverage is not None else "not recorded"),
    )


def _instances(report: ReadinessReport) -> Section | None:
    """A team store's proxies, when there is more than one: who saw which client family,
    and each one's difference rate beside the rest of the team's."""
    if len(report.instances) < 2:
        return None
    columns = (
        Column("instance", Kind.MONO),
        *_numbers("pairs", "compared", "differing", "rest of the team"),
        Column("client families"),
    )
    rows = [
        (
            r.instance,
            f"{r.pairs:,}",
            f"{r.compared:,}",
            pct(r.rate) if r.rate is not None else MISSING,
            pct(r.others_rate) if r.others_rate is not None else MISSING,
            ", ".join(f"{family} ({n:,})" for family, n in r.families),
        )
        for r in report.instances
    ]
    by_family: dict[str, list[str]] = {}
    for r in report.instances:
        for family, n in r.families:
            by_family.setdefault(family, []).append(f"{r.instance} ({n:,})")
    families = _table(
        _columns("client family", "instances (pairs)"),
        [(family, ", ".join(names)) for family, names in sorted(by_family.items())],
    )
    title = f"Proxy instances ({len(report.instances)})"
    return Section("instances", title, (_table(columns, rows), families))


def sections(report: ReadinessReport) -> tuple[Section, ...]:
    """Everything after the first screen, in reading order."""
    built = (
        changes_section(report),
        _gates(report),
        _canary(report),
        _uncomparable(report),
        accepted_section(report),
        _differences(report),
        _outcomes(report),
        drilldown_section(report),
        _latency(report),
        _load(report),
        _memory(report),
        _instances(report),
        _context(report),
    )
    return tuple(s for s in built if s is not None)
