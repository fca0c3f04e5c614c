"""The report as JSON, for CI and the cutover command (stable keys, rounded numbers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from harness.report.model import (
    AcceptedRule,
    Check,
    DiffRow,
    DiffTable,
    GateResult,
    OutcomeShift,
    ReadinessReport,
    ReportChanges,
    RunContext,
    Uncomparable,
)

__all__ = ["SCHEMA", "render_json", "report_dict", "utc"]

SCHEMA = "harness-readiness-report/1"


def utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round(value: Any) -> Any:
    """Floats to 4 decimals, all the way down: the golden files must not see float noise."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    return value


def _check(check: Check) -> dict[str, Any]:
    return {
        "name": check.name,
        "status": check.status.value,
        "samples": check.samples,
        "measured": check.measured,
        "threshold": check.threshold,
        "detail": check.detail,
    }


def _gate(gate: GateResult) -> dict[str, Any]:
    return {
        "name": gate.name,
        "status": gate.status.value,
        "samples": gate.samples,
        "needs": gate.needs,
        "needs_text": gate.needs_text,
        "measured": gate.measured,
        "threshold": gate.threshold,
        "detail": gate.detail,
        "checks": [_check(c) for c in gate.checks],
    }


def _row(row: DiffRow) -> dict[str, Any]:
    return {
        "endpoint": row.endpoint,
        "key": row.key,
        "category": row.category,
        "count": row.count,
        "rate": row.rate,
        "noise_rate": row.noise_rate,
        "verdict": row.verdict,
        "examples": list(row.examples),
    }


def _table(table: DiffTable) -> dict[str, Any]:
    return {
        "endpoint": table.endpoint,
        "compared": table.compared,
        "noise_samples": table.noise_samples,
        "categories": [_row(r) for r in table.shown_categories],
        "fields": [_row(r) for r in table.fields],
        "fields_left_out": table.fields_left_out,
    }


def _shift(shift: OutcomeShift) -> dict[str, Any]:
    return {
        "endpoint": shift.endpoint,
        "pairs": shift.pairs,
        "of_pairs": shift.of_pairs,
        "rate": shift.rate,
        "failures": dict(shift.failures),
        "examples": list(shift.examples),
    }


def _uncomparable(found: Uncomparable) -> dict[str, Any]:
    return {
        "rows": found.rows,
        "of_rows": found.of_rows,
        "rate": found.rate,
        "reasons": dict(found.reasons),
        "listed": [{"id": row_id, "reason": reason} for row_id, reason in found.listed],
        "left_out": found.left_out,
    }


def _accepted(rule: AcceptedRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "state": rule.state,
        "matches": rule.matches,
        "reason": rule.reason,
        "owner": rule.owner,
        "expires": rule.expires,
        "pairs": rule.pairs,
        "differences": rule.differences,
        "refused": rule.refused,
        "examples": list(rule.examples),
        "refused_examples": list(rule.refused_examples),
    }


def _context(context: RunContext) -> dict[str, Any]:
    return {
        "generated_at": utc(context.generated_at),
        "project_version": context.project_version,
        "litellm_version": context.litellm_version,
        "config_path": context.config_path,
        "config_sha256": context.config_sha256,
        "store_path": context.store_path,
        "first_received": utc(context.first_received),
        "last_received": utc(context.last_received),
        "pairs": context.pairs,
        "mirrored": context.mirrored,
        "not_mirrored": context.not_mirrored,
        "latency_timing": context.latency_timing,
        "compared": context.compared,
        "aa_samples": context.aa_samples,
        "primaries": context.primaries,
        "sample_rate_percent": context.sample_rate,
        "aa_rate_percent": context.aa_rate,
        "load_runs": context.load_runs,
        "process_samples": context.process_samples,
        # Live mirroring's spend and memory isolation, when any pair was mirrored live.
        **({"live_mirror": context.live} if context.live else {}),
        **_run(context),
    }


def _run(context: RunContext) -> dict[str, Any]:
    """The shadow run read, when the report read one; otherwise the pairs read, when not
    all of them (``--since``, ``--instance``, ``--run all``)."""
    run = context.shadow_run
    if run is None:
        return {"scope": context.scope} if context.scope != "all pairs" else {}
    coverage = context.coverage
    return {
        "scope": context.scope,
        "run": {
            "id": run.id,
            "mode": run.mode,
            "primary": run.primary_role,
            "started_at": utc(run.started_at),
            "ended_at": utc(run.ended_at),
            "versions": run.versions,
            "configs": run.configs,
        },
        "coverage": (
            {
                "seen": coverage.seen,
                "mirrored": coverage.mirrored,
                "skipped": dict(coverage.skipped),
                "complete": coverage.complete,
            }
            if coverage is not None
            else None
        ),
    }


def _changes(changes: ReportChanges | None) -> dict[str, Any] | None:
    if changes is None:
        return None
    return {
        "against": changes.against,
        "previous_generated_at": changes.previous_generated,
        "previous_decision": changes.previous_decision,
        "flipped": [{"gate": g, "before": b, "now": n} for g, b, n in changes.flipped],
        "new_gates": list(changes.new_gates),
        "appeared": list(changes.appeared),
        "disappeared": list(changes.disappeared),
        "rules": [{"rule": r, "before": b, "now": n} for r, b, n in changes.rules],
    }


def report_dict(report: ReadinessReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "decision": report.decision.value,
        "exit_code": report.decision.exit_code,
        "summary": {
            "gates": len(report.gates),
            "passed": len(report.passed),
            "failed": [g.name for g in report.failed],
            "inconclusive": [g.name for g in report.inconclusive],
            "sdk_better_pairs": sum(s.pairs for s in report.sdk_better),
            "sdk_worse_pairs": sum(s.pairs for s in report.sdk_worse),
            "uncomparable_rows": report.uncomparable.rows,
        },
        # rows that could not be read or compared: in no gate's samples (row id, reason)
        "uncomparable": _uncomparable(report.uncomparable),
        "worst_differences": [_row(r) for r in report.worst],
        # one proxy failed outright (5xx, 429, 408, no answer), the other succeeded
        "outcomes": {
            "sdk_better": [_shift(s) for s in report.sdk_better],  # set apart, not compared
            "sdk_worse": [_shift(s) for s in report.sdk_worse],  # compared as always
        },
        "gates": [_gate(g) for g in report.gates],
        # every accept rule: applied (hits), stale, expired or refused
        "accepted": {
            "pairs": report.accepted_pairs,
            "rules": [_accepted(r) for r in report.accepted],
        },
        # the example pairs of each worst difference and failed gate (harness show ID)
        "drilldown": [{"what": what, "pairs": list(ids)} for what, ids in report.drilldown],
        "differences": [_table(t) for t in report.tables],
        "latency": [
            {
                "endpoint": s.endpoint,
                "stream": s.stream,
                "samples": s.samples,
                "total_ms": s.total,
                "ttft_ms": s.ttft,
                "ttft_samples": s.ttft_samples,
                "diff_ci_ms": s.intervals,
            }
            for s in report.latency
        ],
        "load": [vars(s) for s in report.load],
        "memory": [vars(s) for s in report.memory],
        "context": _context(report.context),
        "changes": _changes(report.changes),
        "timeline": [vars(e) for e in report.timeline],
    }
    if report.canary is not None:
        # only for a store a canary ran on: the steps, windows, decisions, rollback evidence
        data["canary"] = {
            "status": report.canary.status,
            "steps": list(report.canary.steps),
            "percent": report.canary.percent,
            "history": [vars(line) for line in report.canary.lines],
        }
    if len(report.instances) > 1:  # a team's store: several proxies wrote the pairs
        data["instances"] = [
            {
                "instance": r.instance,
                "pairs": r.pairs,
                "compared": r.compared,
                "differing": r.differing,
                "difference_rate": r.rate,
                "rest_of_team_rate": r.others_rate,
                "client_families": dict(r.families),
            }
            for r in report.instances
        ]
    rounded: dict[str, Any] = _round(data)
    return rounded


def render_json(report: ReadinessReport) -> str:
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"
