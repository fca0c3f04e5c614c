"""What changed between two reports, and the decisions of earlier ones (pure).

Both reports are read as ``report.json`` dicts (the previous one from disk, the current
one from :func:`harness.report.render_json.report_dict`), so any earlier report compares,
whatever code wrote it, as long as it has the schema's keys. Named: the gates whose status
flipped, the regressing differences that appeared or disappeared, and the accept rules
that were added, removed, or whose state or hits changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.report.model import ReportChanges, TimelineEntry

__all__ = ["TIMELINE", "compare_reports", "timeline"]

TIMELINE = 12  # earlier reports shown, newest last


def _gates(report: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(g.get("name")): str(g.get("status"))
        for g in report.get("gates") or ()
        if isinstance(g, Mapping)
    }


def _regressions(report: Mapping[str, Any]) -> dict[str, int]:
    """``"chat body.usage.cost (schema)"`` -> pairs, for every regressing field."""
    out: dict[str, int] = {}
    for table in report.get("differences") or ():
        if not isinstance(table, Mapping):
            continue
        for row in table.get("fields") or ():
            if isinstance(row, Mapping) and row.get("verdict") == "regression":
                key = f"{table.get('endpoint')} {row.get('key')} ({row.get('category')})"
                out[key] = int(row.get("count") or 0)
    return out


def _rules(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    accepted = report.get("accepted")
    rules = accepted.get("rules") if isinstance(accepted, Mapping) else None
    return {str(r.get("name")): r for r in rules or () if isinstance(r, Mapping)}


def _rule_state(rule: Mapping[str, Any]) -> str:
    return f"{rule.get('state')}, {rule.get('pairs', 0)} pairs"


def compare_reports(
    previous: Mapping[str, Any], current: Mapping[str, Any], against: str
) -> ReportChanges:
    before, after = _gates(previous), _gates(current)
    flipped = tuple(
        (name, before[name], status)
        for name, status in after.items()
        if name in before and before[name] != status
    )
    new_gates = tuple(name for name in after if name not in before)
    old, new = _regressions(previous), _regressions(current)
    old_rules, new_rules = _rules(previous), _rules(current)
    rules: list[tuple[str, str, str]] = []
    for name, rule in new_rules.items():
        was = old_rules.get(name)
        if was is None:
            rules.append((name, "added", _rule_state(rule)))
        elif _rule_state(was) != _rule_state(rule):
            rules.append((name, _rule_state(was), _rule_state(rule)))
    rules += [
        (name, _rule_state(r), "removed") for name, r in old_rules.items() if name not in new_rules
    ]
    context = previous.get("context")
    generated = context.get("generated_at") if isinstance(context, Mapping) else None
    return ReportChanges(
        against=against,
        previous_generated=str(generated) if generated else None,
        previous_decision=str(previous.get("decision", "?")),
        flipped=flipped,
        new_gates=new_gates,
        appeared=tuple(sorted(k for k in new if k not in old)),
        disappeared=tuple(sorted(k for k in old if k not in new)),
        rules=tuple(rules),
    )


def _entry(report: Mapping[str, Any], current: bool) -> TimelineEntry:
    summary = report.get("summary") if isinstance(report.get("summary"), Mapping) else {}
    context = report.get("context") if isinstance(report.get("context"), Mapping) else {}
    assert isinstance(summary, Mapping) and isinstance(context, Mapping)
    return TimelineEntry(
        generated=str(context.get("generated_at") or "?"),
        decision=str(report.get("decision", "?")),
        failed=len(summary.get("failed") or ()),
        inconclusive=len(summary.get("inconclusive") or ()),
        current=current,
    )


def timeline(
    earlier: Iterable[Mapping[str, Any]], current: Mapping[str, Any], limit: int = TIMELINE
) -> tuple[TimelineEntry, ...]:
    """The decisions of the ``limit`` latest earlier reports, oldest first, then this one."""
    entries = sorted((_entry(r, False) for r in earlier), key=lambda e: e.generated)
    return (*entries[-limit:], _entry(current, True))
