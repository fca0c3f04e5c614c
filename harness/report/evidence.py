"""Reading the evidence: the store's pairs (compared here, off the request path), its load
runs and process samples, the config's hash and the versions that produced the report.

Large stores are folded in several processes, each over its own range of row ids; the
parts are merged in id order, so the evidence is the same whatever the worker count.
Rows that cannot be read or compared are counted as uncomparable, not folded
(:meth:`~harness.report.collect.EvidenceCollector.add_row`).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harness.compare import DEFAULT_IGNORE_RULES, Comparator
from harness.redaction import Redactor
from harness.report.checks import thresholds_of
from harness.report.collect import EvidenceCollector
from harness.report.resource_gates import load_summaries
from harness.report.tally import Evidence, RssSeries, RunInfo
from harness.runs.identity import file_sha256, package_version
from harness.runs.scope import ReportScope
from harness.settings import HarnessSettings
from harness.store.capture_store import CaptureStore, LoadRun, ProcessSample, Scope
from memory_proxy.errors import ConfigError

__all__ = [
    "PARALLEL_FROM",
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
        store_path=str(store_path),
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
    collector = EvidenceCollector(comparator, run, redactor)
    with CaptureStore(store_path, spill=False) as store:
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
    scope: ReportScope | None = None,
) -> Evidence:
    """Everything the gates need from the store's rows in ``scope`` (default: all);
    ``workers=None`` picks by store size."""
    path = Path(store_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no capture store (run `harness shadow` or `harness replay`)")
    config = str(config_path) if config_path is not None else None
    where = scope.scope if scope is not None else Scope()
    with CaptureStore(path, spill=False) as store:
        pairs = store.count(where)
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if pairs >= PARALLEL_FROM else 1
        runs = store.load_runs(where)
        rss = read_rss(store, runs)
        bounds = store.id_range(where)
    ranges = id_ranges(*bounds, workers) if bounds and workers > 1 else []
    if len(ranges) > 1:
        # spawn, not fork: the parent may hold threads (the store's writer, pytest's).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
            futures = [
                pool.submit(_fold, str(path), settings, config, run, where, low, high)
                for low, high in ranges
            ]
            parts = [f.result() for f in futures]
        evidence = parts[0]
        for part in parts[1:]:
            evidence.merge(part)
    else:
        evidence = _fold(str(path), settings, config, run, where)
    evidence.load_runs = runs
    evidence.rss = rss
    if scope is not None:
        evidence.scope = scope.text
        evidence.shadow_run = scope.run
    return evidence
