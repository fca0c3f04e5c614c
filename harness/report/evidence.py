"""Reading the evidence: the store's pairs (compared here, off the request path), its load
runs and process samples, the config's hash and the versions that produced the report.

Large stores are folded in several processes, each over its own range of row ids; the
parts are merged in id order, so the evidence is the same whatever the worker count.
Rows that cannot be read or compared are counted as uncomparable, not folded
(:meth:`~harness.report.collect.EvidenceCollector.add_row`).

The store may be a SQLite file or a team's PostgreSQL database (every proxy's pairs, each
with its instance); a :class:`~harness.store.runs.Scope` narrows the pairs
read to one run, one instance or a time window. Rows are streamed: memory stays bounded whatever
the store's size.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from harness.compare import DEFAULT_IGNORE_RULES, Comparator, Difference
from harness.compare.accept import AcceptRules
from harness.redaction import Redactor
from harness.report.checks import thresholds_of
from harness.report.collect import EvidenceCollector
from harness.report.model import PairView, ReadinessReport
from harness.report.resource_gates import load_summaries
from harness.report.tally import Evidence, RssSeries, RunInfo
from harness.report.upstream_facts import count_unattached
from harness.runs.identity import file_sha256, package_version
from harness.runs.scope import ReportScope
from harness.settings import HarnessSettings
from harness.store.capture_store import CaptureStore, LoadRun, ProcessSample, Scope, StoredPair
from harness.store.dialect import describe_store, is_postgres_url, resolve_store
from memory_proxy.errors import ConfigError

__all__ = [
    "PARALLEL_FROM",
    "accept_rules_for",
    "load_pair_view",
    "load_pair_views",
    "with_drilldown",
    "collect_evidence",
    "comparator_for",
    "id_ranges",
    "read_rss",
    "run_info",
]

# Below this many pairs a second process costs more (its start, the pickled result) than
# it saves.
PARALLEL_FROM = 20_000


def run_info(config_path: str | Path, store_path: str | Path, now: float | None = None) -> RunInfo:
    """The versions, the config file's sha256 (None when unreadable) and the time."""
    import memory_proxy

    return RunInfo(
        generated_at=time.time() if now is None else now,
        project_version=memory_proxy.__version__,
        litellm_version=package_version("litellm"),
        config_path=str(config_path),
        config_sha256=file_sha256(config_path),
        store_path=describe_store(store_path),
    )


def comparator_for(
    settings: HarnessSettings, config_path: str | Path | None
) -> tuple[Comparator, Redactor]:
    """The comparator the settings describe, with the config's model aliases and secrets.

    A config that cannot be loaded (say, an API key variable unset where the report runs)
    costs only the aliases and the extra redaction: the store holds redacted pairs.
    """
    aliases: dict[str, str] = {}
    secrets: frozenset[str] = frozenset()
    if config_path is not None and Path(config_path).exists():
        from memory_proxy.config import load_config

        try:
            config = load_config(config_path)
        except ConfigError:
            pass
        else:
            aliases = {d.model_name: d.model for d in config.deployments if not d.is_wildcard}
            secrets = config.secrets
    rules = (*DEFAULT_IGNORE_RULES, *settings.compare.ignore)
    comparator = Comparator(rules, thresholds_of(settings), model_aliases=aliases)
    return comparator, Redactor(secrets)


def accept_rules_for(settings: HarnessSettings, run: RunInfo) -> AcceptRules:
    return AcceptRules(settings.compare.accept, run.day)


def _view(
    stored: StoredPair,
    settings: HarnessSettings,
    comparator: Comparator,
    redactor: Redactor,
    run: RunInfo,
) -> PairView:
    import dataclasses

    from harness.report.collect import pair_facts
    from harness.report.outcomes import Direction, direction
    from harness.report.pair_view import pair_view

    pair = stored.pair
    shift = direction(pair)
    if shift is Direction.SDK_BETTER:
        note = f"set apart, not compared: {Direction.SDK_BETTER.label}"
        return pair_view(pair, None, redactor, note=note)
    verdict = comparator.compare(pair)
    rules = accept_rules_for(settings, run)
    accepted: list[tuple[str, Difference]] = []
    if rules and verdict.skipped is None:
        acceptance = rules.apply(verdict.differences, pair_facts(pair, shift))
        verdict = dataclasses.replace(verdict, differences=acceptance.kept)
        names = [r.name for r in rules.rules]
        accepted = [(names[i], d) for i, d in acceptance.accepted]
    note = Direction.SDK_WORSE.label if shift is Direction.SDK_WORSE else ""
    return pair_view(pair, verdict, redactor, accepted, note)


def load_pair_views(
    store_path: str | Path,
    pair_ids: Iterable[str],
    settings: HarnessSettings,
    run: RunInfo,
    *,
    config_path: str | Path | None = None,
) -> tuple[PairView, ...]:
    """The drill-down view of each pair id found (in the order given, each once)."""
    comparator, redactor = comparator_for(settings, config_path)
    views = []
    with CaptureStore(store_path, spill=False) as store:
        for pair_id in dict.fromkeys(pair_ids):
            row = store.find_row(pair_id)
            if isinstance(row, StoredPair):
                views.append(_view(row, settings, comparator, redactor, run))
    return tuple(views)


def load_pair_view(
    store_path: str | Path,
    pair_id: str,
    settings: HarnessSettings,
    run: RunInfo,
    *,
    config_path: str | Path | None = None,
) -> PairView | None:
    found = load_pair_views(store_path, [pair_id], settings, run, config_path=config_path)
    return found[0] if found else None


def with_drilldown(
    report: ReadinessReport,
    evidence: Evidence,
    store_path: str | Path,
    settings: HarnessSettings,
    run: RunInfo,
    *,
    config_path: str | Path | None = None,
) -> ReadinessReport:
    """The report with its drill-down: the example pairs of the worst differences and
    failed gates, read back from the store (only those: a report stays small)."""
    import dataclasses

    from harness.report.drilldown import drilldown

    items = drilldown(report, evidence)
    wanted = [pair_id for _, ids in items for pair_id in ids]
    views = load_pair_views(store_path, wanted, settings, run, config_path=config_path)
    found = {view.pair_id for view in views}
    kept = tuple(
        (what, tuple(i for i in ids if i in found)) for what, ids in items if found & set(ids)
    )
    return dataclasses.replace(report, drilldown=kept, pairs=views)


def read_rss(store: CaptureStore, runs: tuple[LoadRun, ...]) -> tuple[RssSeries, ...]:
    """Each load run's RSS per target, with the requests served at each sample: as stored,
    or else spread over the samples at a steady rate from the run's request count."""
    out = []
    for run in runs:
        by_target: dict[str, list[ProcessSample]] = {}
        for sample in store.process_samples(run.id):
            if sample.rss_bytes is not None:
                by_target.setdefault(sample.target, []).append(sample)
        totals = {s.target: s.requests for s in load_summaries((run,))}
        for target, samples in sorted(by_target.items()):
            points = tuple((s.t, int(s.rss_bytes or 0)) for s in samples)
            requests, estimated = _served(samples, totals.get(target))
            out.append(RssSeries(target, run.id, run.name, points, requests, estimated))
    return tuple(out)


def _served(samples: list[ProcessSample], total: int | None) -> tuple[tuple[int, ...], bool]:
    if all(s.requests is not None for s in samples):
        return tuple(int(s.requests or 0) for s in samples), False
    start, end = samples[0].t, samples[-1].t
    if not total or end <= start:
        return (), False
    return tuple(round(total * (s.t - start) / (end - start)) for s in samples), True


def id_ranges(low: int, high: int, workers: int) -> list[tuple[int, int]]:
    """Row ids ``low..high`` cut into at most ``workers`` ranges ``(after_id, until_id]``."""
    span = high - low + 1
    bounds = [low - 1 + span * i // workers for i in range(workers + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(workers) if bounds[i + 1] > bounds[i]]


def _fold(
    store_path: str,
    settings: HarnessSettings,
    config_path: str | None,
    run: RunInfo,
    scope: Scope,
    after_id: int = 0,
    last_id: int | None = None,
) -> Evidence:
    """Fold the pairs in ``scope`` with ``after_id < id <= last_id`` (a worker's share,
    or all)."""
    comparator, redactor = comparator_for(settings, config_path)
    collector = EvidenceCollector(
        comparator,
        run,
        redactor,
        accept_rules_for(settings, run),
        live_suffix=settings.shadow.live_suffix,
    )
    with CaptureStore(store_path, spill=False, setting="--store") as store:
        for row in store.iter_rows(after_id=after_id, until_id=last_id, scope=scope):
            collector.add_row(row)
    return collector.evidence


def collect_evidence(
    store_path: str | Path,
    settings: HarnessSettings,
    run: RunInfo,
    *,
    config_path: str | Path | None = None,
    workers: int | None = None,
    scope: ReportScope | Scope | None = None,
) -> Evidence:
    """Everything the gates need from the store's rows in ``scope`` (default: all);
    ``workers=None`` picks by store size. A bare :class:`Scope` narrows the rows read
    without naming a run (the report's scope words stay "all pairs")."""
    location = resolve_store(store_path, "--store")
    if not is_postgres_url(location) and not Path(location).is_file():
        raise ConfigError(
            f"{location}: no capture store (run `harness shadow` or `harness replay`)"
        )
    path = str(location)
    config = str(config_path) if config_path is not None else None
    if isinstance(scope, Scope):
        scope = ReportScope(scope, None, "all pairs")
    where = scope.scope if scope is not None else Scope()
    with CaptureStore(path, spill=False, setting="--store") as store:
        pairs = store.count(where)
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if pairs >= PARALLEL_FROM else 1
        runs = store.load_runs(where)
        rss = read_rss(store, runs)
        unattached = store.unattached()
        bounds = store.id_range(where)
    ranges = id_ranges(*bounds, workers) if bounds and workers > 1 else []
    if len(ranges) > 1:
        # spawn, not fork: the parent may hold threads (the store's writer, pytest's).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
            futures = [
                pool.submit(_fold, path, settings, config, run, where, low, high)
                for low, high in ranges
            ]
            parts = [f.result() for f in futures]
        evidence = parts[0]
        for part in parts[1:]:
            evidence.merge(part)
    else:
        evidence = _fold(path, settings, config, run, where)
    evidence.load_runs = runs
    evidence.rss = rss
    calls = evidence.provider_calls
    for target, call in _in_scope(unattached, scope):
        count_unattached(calls, target, call)
    if scope is not None:
        evidence.scope = scope.text
        evidence.shadow_run = scope.run
    return evidence


def _in_scope(
    unattached: list[tuple[str, dict[str, Any]]], scope: ReportScope | None
) -> list[tuple[str, dict[str, Any]]]:
    """The unattached calls made within the report's scope. They belong to no pair, so no
    run id: the run's time span (or ``--since``) places them. Pure."""
    if scope is None:
        return unattached
    start = scope.scope.since if scope.scope.since is not None else float("-inf")
    end = float("inf")
    if scope.run is not None:
        start = max(start, scope.run.started_at)
        end = scope.run.ended_at if scope.run.ended_at is not None else end
    kept = []
    for target, call in unattached:
        at = call.get("time")
        if not isinstance(at, int | float) or start <= at <= end:
            kept.append((target, call))
    return kept
