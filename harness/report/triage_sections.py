"""The report's triage sections: accepted differences, the drill-down into example pairs,
and what changed since an earlier report (pure; laid out like every section).

:func:`pair_parts` is one pair drilled down: the HTML report and ``harness show`` both
lay it out.
"""

from __future__ import annotations

from harness.report.formatting import MISSING, utc_text
from harness.report.layout import Column, Heading, Kind, Note, Part, Section
from harness.report.layout import columns as _columns
from harness.report.layout import table as _table
from harness.report.model import PairView, ReadinessReport

__all__ = [
    "accepted_section",
    "changes_rows",
    "changes_section",
    "drilldown_section",
    "pair_anchor",
    "pair_parts",
]


_RULE_STATE = {
    "applied": "applied",
    "stale": "stale: matched nothing",
    "expired": "expired: not applied",
    "refused": "refused: matched only SDK failures",
}


def accepted_section(report: ReadinessReport) -> Section | None:
    if not report.accepted:
        return None
    columns = _columns(
        ("rule", Kind.NAME),
        "state",
        ("pairs", Kind.NUMBER),
        ("differences", Kind.NUMBER),
        "matches",
        "reason",
        "owner",
        ("expires", Kind.MONO),
        ("examples", Kind.MONO),
    )
    rows = [
        (
            r.name,
            _RULE_STATE[r.state],
            str(r.pairs),
            str(r.differences),
            r.matches,
            r.reason,
            r.owner or MISSING,
            r.expires or MISSING,
            r.examples,
        )
        for r in report.accepted
    ]
    parts: list[Part] = [
        _table(
            columns,
            rows,
            "Accepted differences are deliberate, not regressions: they are in no gate. "
            "A rule is never applied where the SDK failed and legacy succeeded.",
        )
    ]
    refused = [r for r in report.accepted if r.refused]
    if refused:
        parts.append(
            _table(
                _columns(("rule", Kind.NAME), ("pairs", Kind.NUMBER), ("examples", Kind.MONO)),
                [(r.name, str(r.refused), r.refused_examples) for r in refused],
                "Not accepted: the SDK failed outright (or cut its stream) where legacy "
                "succeeded; these pairs count in the gates as regressions.",
            )
        )
    title = f"Accepted differences: {report.accepted_pairs:,} pairs, {len(report.accepted)} rules"
    return Section("accepted", title, tuple(parts))


def pair_anchor(pair_id: str) -> str:
    return f"pair-{pair_id}"


def pair_parts(view: PairView) -> tuple[Part, ...]:
    """One pair, drilled down: the request, both answers side by side, what differs (the
    accepted differences marked) and each side's provider calls."""
    parts: list[Part] = [Heading(view.title, pair_anchor(view.pair_id))]
    if view.note:
        parts.append(Note(view.note))
    parts.append(
        _table(
            _columns("", ("", Kind.MONO)),
            [("received", utc_text(view.received_at)), ("client request", view.request)],
        )
    )
    sides = (view.sdk, view.legacy)
    if any(sides):

        def cell(side: object, attribute: str) -> str:
            return str(getattr(side, attribute)) if side is not None else "not mirrored"

        rows = [
            (label, cell(view.sdk, attribute), cell(view.legacy, attribute))
            for label, attribute in (
                ("status", "status"),
                ("headers", "headers"),
                ("assembled message" if view.stream else "answer", "answer"),
                *((("event sequence", "events"),) if view.stream else ()),
            )
        ]
        columns = _columns("", ("SDK", Kind.CAPTURED), ("legacy", Kind.CAPTURED))
        parts.append(_table(columns, rows))
    if view.differences:
        columns = _columns(
            "category", ("path", Kind.MONO), ("SDK", Kind.CAPTURED), ("legacy", Kind.CAPTURED)
        ) + (Column("note"),)
        found = [(d.category, d.path, d.sdk, d.legacy, d.note or MISSING) for d in view.differences]
        parts.append(_table(columns, found))
    else:
        parts.append(Note("No differences."))
    calls = [
        (side.target, call)
        for side in sides
        if side is not None
        for call in side.upstream or ("no provider call",)
    ]
    if calls:
        parts.append(_table(_columns("side", ("provider call", Kind.MONO)), calls))
    return tuple(parts)


def drilldown_section(report: ReadinessReport) -> Section | None:
    if not report.drilldown:
        return None
    index = _table(
        _columns("what", ("example pairs", Kind.PAIR)),
        [(what, ids) for what, ids in report.drilldown],
        "Each pair below in full; in a terminal: harness show PAIR_ID.",
    )
    parts: list[Part] = [index]
    for view in report.pairs:
        parts += pair_parts(view)
    return Section("pairs", "Drill-down: example pairs", tuple(parts))


def changes_rows(report: ReadinessReport) -> tuple[tuple[str, str, str, str], ...]:
    """(what, name, before, now) for each change since the compared report."""
    changes = report.changes
    if changes is None:
        return ()
    rows = [("gate flipped", name, old, new) for name, old, new in changes.flipped]
    rows += [("new gate", name, MISSING, "") for name in changes.new_gates]
    rows += [("difference appeared", key, MISSING, "regression") for key in changes.appeared]
    rows += [("difference gone", key, "regression", MISSING) for key in changes.disappeared]
    rows += [("accepted rule", name, old, new) for name, old, new in changes.rules]
    return tuple(rows)


def changes_section(report: ReadinessReport) -> Section | None:
    changes = report.changes
    parts: list[Part] = []
    if changes is not None:
        when = changes.previous_generated or "an earlier report"
        parts.append(Note(f"Compared to {changes.against} ({when}, {changes.previous_decision})."))
        rows = changes_rows(report)
        if rows:
            parts.append(_table(_columns("change", ("what", Kind.MONO), "before", "now"), rows))
        else:
            parts.append(Note("Nothing changed: the same gates, differences and rules."))
    if len(report.timeline) > 1:
        parts.append(Heading("Timeline: each report's decision"))
        parts.append(
            _table(
                _columns(
                    ("report", Kind.MONO),
                    ("decision", Kind.DECISION),
                    ("failed", Kind.NUMBER),
                    ("inconclusive", Kind.NUMBER),
                ),
                [
                    (
                        e.generated + (" (this one)" if e.current else ""),
                        e.decision,
                        str(e.failed),
                        str(e.inconclusive),
                    )
                    for e in report.timeline
                ],
            )
        )
    return Section("changes", "What changed", tuple(parts)) if parts else None
