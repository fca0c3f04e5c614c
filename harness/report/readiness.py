"""Evidence + settings -> the whole :class:`ReadinessReport` (pure).

The gates decide; this adds what people read beside them: the Diffy tables, the worst
differences, the pairs where only one proxy failed outright, latency, load and memory
summaries, charts, the rows that could not be compared and the run's context.
"""

from __future__ import annotations

import dataclasses

from harness.report.capture_gate import uncomparable_of
from harness.report.charts import build_charts
from harness.report.checks import thresholds_of
from harness.report.diffy import diff_tables, outcome_shifts, worst_differences
from harness.report.gates import evaluate
from harness.report.instances import instance_rows
from harness.report.latency_gates import latency_summaries
from harness.report.model import AcceptedRule, ReadinessReport, RunContext, decide
from harness.report.outcomes import Direction
from harness.report.resource_gates import load_summaries, memory_summaries
from harness.report.tally import Evidence
from harness.runs.coverage import coverage_of
from harness.settings import HarnessSettings
from harness.stats import BOOTSTRAP_SEED

__all__ = ["accepted_rules", "build_report"]


def accepted_rules(evidence: Evidence, settings: HarnessSettings) -> tuple[AcceptedRule, ...]:
    """Every accept rule with what it did: applied, stale (matched nothing) or expired."""
    today = evidence.run.day
    rows = []
    for index, rule in enumerate(settings.compare.accept):
        hits = evidence.accepted.rules.get(index)
        if rule.expired(today):
            state = "expired"
        elif hits is not None and hits.refused and not hits.pairs:
            state = "refused"  # it matched only pairs it may not hide
        elif hits is None or not hits.pairs:
            state = "stale"
        else:
            state = "applied"
        rows.append(
            AcceptedRule(
                name=rule.name,
                state=state,
                matches=rule.describe(),
                reason=rule.reason,
                owner=rule.owner,
                expires=rule.expires.isoformat() if rule.expires else None,
                pairs=hits.pairs if hits else 0,
                differences=hits.differences if hits else 0,
                refused=hits.refused if hits else 0,
                examples=tuple(hits.examples) if hits else (),
                refused_examples=tuple(hits.refused_examples) if hits else (),
            )
        )
    return tuple(rows)


def build_report(
    evidence: Evidence, settings: HarnessSettings, *, seed: int = BOOTSTRAP_SEED
) -> ReadinessReport:
    latency = latency_summaries(evidence, seed)
    gates = evaluate(evidence, settings, latency=latency, seed=seed)
    thresholds = thresholds_of(settings)
    tables = diff_tables(evidence, thresholds, settings.report.min_samples)
    sdk_worse = outcome_shifts(evidence, Direction.SDK_WORSE)
    run = evidence.run
    context = RunContext(
        generated_at=run.generated_at,
        project_version=run.project_version,
        litellm_version=run.litellm_version,
        config_path=run.config_path,
        config_sha256=run.config_sha256,
        store_path=run.store_path,
        first_received=evidence.first_received,
        last_received=evidence.last_received,
        pairs=evidence.pairs,
        mirrored=evidence.mirrored,
        compared=evidence.compared,
        aa_samples=evidence.aa_samples,
        primaries=dict(sorted(evidence.primaries.items())),
        sample_rate=settings.shadow.sample_rate,
        aa_rate=settings.shadow.aa_rate,
        load_runs=len(evidence.load_runs),
        process_samples=sum(len(s.points) for s in evidence.rss),
        upstream_modes=dict(sorted(evidence.upstream_modes.items())),
        replay_unrecorded=evidence.replay_unrecorded,
        not_mirrored=dict(sorted(evidence.not_mirrored.items())),
        live=(
            {"suffix": settings.shadow.live_suffix, **dataclasses.asdict(evidence.live)}
            if evidence.live.pairs
            else {}
        ),
        scope=evidence.scope,
        shadow_run=evidence.shadow_run,
        coverage=(
            coverage_of(evidence.shadow_run.counters) if evidence.shadow_run is not None else None
        ),
        latency_timing=dict(sorted(evidence.latency_timing.items())),
    )
    return ReadinessReport(
        decision=decide(gates),
        gates=gates,
        worst=worst_differences(tables, sdk_worse, thresholds),
        tables=tables,
        latency=latency,
        load=load_summaries(evidence.load_runs),
        memory=memory_summaries(evidence.rss),
        charts=build_charts(evidence),
        context=context,
        sdk_better=outcome_shifts(evidence, Direction.SDK_BETTER),
        sdk_worse=sdk_worse,
        uncomparable=uncomparable_of(evidence),
        accepted=accepted_rules(evidence, settings),
        accepted_pairs=evidence.accepted.pairs,
        instances=instance_rows(evidence),
    )
