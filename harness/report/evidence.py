"""Reading the evidence: the store's pairs (compared here, off the request path), its load
runs and process samples, the config's hash and the versions that produced the report.

Large stores are folded in several processes, each over its own range of row ids; the
parts are merged in id order, so the evidence is the same whatever the worker count.
Rows that cannot be read or compared are counted as uncomparable, not folded
(:meth:`~harness.report.collect.EvidenceCollector.add_row`).

The store may be a SQLite file or a team's PostgreSQL database (every proxy's pairs, each
with its instance); a :class:`~harness.store.capture_store.PairFilter` narrows the pairs
read to one instance or a time window. Rows are streamed: memory stays bounded whatever
the store's size.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harness.compare import DEFAULT_IGNORE_RULES, Comparator
from harness.redaction import Redactor
from harness.report.checks import thresholds_of
from harness.report.collect import EvidenceCollector
from harness.report.tally import Evidence, RssSeries, RunInfo
from harness.settings import HarnessSettings
from harness.store.capture_store import CaptureStore, LoadRun, PairFilter
from harness.store.dialect import describe_store, is_postgres_url, resolve_store
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


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_info(
    config_path: str | Path,
    store_path: str | Path,
    now: float | None = None,
    *,
    filters: str = "",
) -> RunInfo:
    """The versions, the config file's sha256 (None when unreadable) and the time."""
    import memory_proxy

    config = Path(config_path)
    try:
        digest: str | None = hashlib.sha256(config.read_bytes()).hexdigest()
    except OSError:
        digest = None
    return RunInfo(
        generated_at=time.time() if now is None else now,
        project_version=memory_proxy.__version__,
        litellm_version=_version("litellm"),
        config_path=str(config_path),
        config_sha256=digest,
        store_path=describe_store(store_path),
        filters=filters,
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
    out = []
    for run in runs:
        by_target: dict[str, list[tuple[float, int]]] = {}
        for sample in store.process_samples(run.id):
            if sample.rss_bytes is not None:
                by_target.setdefault(sample.target, []).append((sample.t, sample.rss_bytes))
        for target, points in sorted(by_target.items()):
            out.append(RssSeries(target, run.id, run.name, tuple(points)))
    return tuple(out)


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
    after_id: int = 0,
    last_id: int | None = None,
    where: PairFilter | None = None,
) -> Evidence:
    """Fold the pairs with ``after_id < id <= last_id`` (a worker's share, or all)."""
    comparator, redactor = comparator_for(settings, config_path)
    collector = EvidenceCollector(comparator, run, redactor)
    with CaptureStore(store_path, spill=False, setting="--store") as store:
        for row in store.iter_rows(after_id=after_id, until_id=last_id, where=where):
            collector.add_row(row)
    return collector.evidence


def collect_evidence(
    store_path: str | Path,
    settings: HarnessSettings,
    run: RunInfo,
    *,
    config_path: str | Path | None = None,
    workers: int | None = None,
    where: PairFilter | None = None,
) -> Evidence:
    """Everything the gates need from the store; ``workers=None`` picks by store size."""
    location = resolve_store(store_path, "--store")
    if not is_postgres_url(location) and not Path(location).is_file():
        raise ConfigError(
            f"{location}: no capture store (run `harness shadow` or `harness replay`)"
        )
    path = str(location)
    config = str(config_path) if config_path is not None else None
    with CaptureStore(path, spill=False, setting="--store") as store:
        pairs = store.count(where)
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if pairs >= PARALLEL_FROM else 1
        runs = store.load_runs()
        rss = read_rss(store, runs)
        bounds = store.id_range(where)
    ranges = id_ranges(*bounds, workers) if bounds and workers > 1 else []
    if len(ranges) > 1:
        # spawn, not fork: the parent may hold threads (the store's writer, pytest's).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
            futures = [
                pool.submit(_fold, path, settings, config, run, low, high, where)
                for low, high in ranges
            ]
            parts = [f.result() for f in futures]
        evidence = parts[0]
        for part in parts[1:]:
            evidence.merge(part)
    else:
        evidence = _fold(path, settings, config, run, where=where)
    evidence.load_runs = runs
    evidence.rss = rss
    return evidence
