"""Which pairs the report drills down into: the examples of each worst difference and of
each failed gate (pure).

A gate's examples come from where its evidence was counted: a parity gate from its
endpoint's regressing fields, error handling from the status and error-type rows,
compatibility and streaming parity from every regressing row (streams' first), memory
routing from the routing tallies, the client contract from its points. Gates that judge
timings or processes (latency, load, memory) have no pairs to show.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.report.model import DiffRow, ReadinessReport
from harness.report.tally import Evidence

__all__ = ["PER_ITEM", "drilldown"]

PER_ITEM = 3  # example pairs per worst difference or failed gate


def _ids(rows: Iterable[DiffRow]) -> tuple[str, ...]:
    out: list[str] = []
    for row in rows:
        for example in row.examples:
            pair_id = str(example.get("pair_id", ""))
            if pair_id and pair_id not in out:
                out.append(pair_id)
    return tuple(out[:PER_ITEM])


def _gate_ids(name: str, report: ReadinessReport, evidence: Evidence) -> tuple[str, ...]:
    regressions = [r for t in report.tables for r in t.fields if r.verdict == "regression"]
    worse = [r for r in report.worst if r.verdict == "regression"]
    if name.startswith("parity: "):
        endpoint = name.removeprefix("parity: ")
        return _ids([r for r in regressions if r.endpoint == endpoint])
    if name == "error handling":
        return _ids([r for r in regressions if r.category in ("status", "error_type")])
    if name in ("compatibility", "streaming parity"):
        return _ids([*worse, *regressions])
    if name == "memory routing":
        return tuple(
            dict.fromkeys(e.pair_id for tally in evidence.routing.values() for e in tally.examples)
        )[:PER_ITEM]
    if name == "client contract":
        return tuple(
            dict.fromkeys(i for point in evidence.contract.values() for i in point.examples)
        )[:PER_ITEM]
    return ()


def drilldown(
    report: ReadinessReport, evidence: Evidence
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(what, pair ids) for each worst difference and each failed gate that has pairs."""
    items: list[tuple[str, tuple[str, ...]]] = []
    for row in report.worst:
        ids = _ids([row])
        if ids:
            items.append((f"worst: {row.endpoint} {row.key} ({row.category})", ids))
    for gate in report.failed:
        ids = _gate_ids(gate.name, report, evidence)
        if ids:
            items.append((f"failed gate: {gate.name}", ids))
    return tuple(items)
