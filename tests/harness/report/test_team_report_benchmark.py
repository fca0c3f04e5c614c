"""The team report at team scale: 1,000,000 pairs from eight proxies in PostgreSQL,
reported streamed (a server-side cursor per worker), time and peak RSS measured.

A benchmark, not a test: it runs only with ``--benchmark-enable`` (``make test`` passes
``--benchmark-disable``) and asserts no wall-clock limit. Measure with::

    pytest -n 0 -s tests/harness/report/test_team_report_benchmark.py --benchmark-enable

``TEAM_BENCH_PAIRS`` sets the size (default 1,000,000). The pairs are the report tests'
synthetic ``nogo`` pairs: 7,000 written through the store, then copied on the server
with new request ids, times and instances until the size is reached.
"""

from __future__ import annotations

import os
import re
import resource
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.report.evidence import collect_evidence
from harness.report.output import write_report
from harness.report.readiness import build_report
from harness.settings import HarnessSettings
from tests.harness.report.factories import RUN
from tests.harness.report.synthetic import build_store
from tests.postgres import PostgresServer

SEED_PAIRS = 7_000  # a multiple of the synthetic slots (7) and client families (5)
INSTANCES = 8
# Every pairs column but the id and the two the copy changes.
_KEPT = (
    "endpoint, model, stream, user_id, client_family, mirror_outcome, primary_status, "
    "shadow_status, primary_json, shadow_json, shadow_repeat_json, upstream_json, upstream_mode"
)


def _benchmarks_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


def _load(url: str, pairs: int) -> None:
    build_store(url, SEED_PAIRS, "nogo", instance="dev-0")
    copies = -(-pairs // SEED_PAIRS) - 1
    with psycopg.connect(url, autocommit=True) as conn:
        for copy in range(1, copies + 1):
            # One statement per copy: a transaction of 7,000 rows, not of a million.
            conn.execute(
                f"INSERT INTO pairs (request_id, received_at, request_json, instance, {_KEPT}) "
                f"SELECT 'c{copy}-' || request_id, received_at + {copy} * 3600, "
                f'replace(request_json, \'"request_id":"req-\', \'"request_id":"c{copy}-req-\'), '
                f"'dev-' || ({copy} % {INSTANCES}), {_KEPT} FROM pairs WHERE instance = 'dev-0' "
                f"AND request_id LIKE 'req-%' ORDER BY id"
            )
        conn.execute("VACUUM ANALYZE pairs")


def _cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (the report's workers): on a
    shared machine the wall time says more about the neighbours than about the report."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _reset_peak_rss() -> bool:
    """Forget this process's peak RSS so far (Linux >= 4.0: writing 5 to clear_refs), so
    the peak read after the report is the report's, not the loading's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss_mb() -> tuple[float, float]:
    """(this process, the largest child) peak RSS in MB: this process's from VmHWM (reset
    before the report), else getrusage's, which spans the loading too."""
    status = Path("/proc/self/status")
    found = re.search(r"VmHWM:\s+(\d+) kB", status.read_text()) if status.exists() else None
    me = int(found.group(1)) / 1024 if found else 0.0
    me = me or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, children


@pytest.mark.timeout(3600)
@pytest.mark.benchmark(group="report")
def test_team_report_over_a_million_pairs(
    request: pytest.FixtureRequest, postgres: PostgresServer, benchmark: Any, tmp_path: Path
) -> None:
    if not _benchmarks_enabled(request.config):
        pytest.skip("a benchmark: run with --benchmark-enable")
    pairs = int(os.environ.get("TEAM_BENCH_PAIRS", "1000000"))
    url = postgres.create_database("bench")
    started = time.perf_counter()
    _load(url, pairs)
    print(f"\nloaded {pairs:,} pairs in {time.perf_counter() - started:.0f} s")
    settings = HarnessSettings()
    timings: list[float] = []

    instances: list[int] = []

    cpu: list[float] = []

    def report() -> int:
        begun = time.perf_counter()
        cpu_before = _cpu_seconds()
        evidence = collect_evidence(url, settings, RUN)
        write_report(build_report(evidence, settings), tmp_path / "reports")
        timings.append(time.perf_counter() - begun)
        cpu.append(_cpu_seconds() - cpu_before)
        instances.append(len(evidence.instances))
        return evidence.pairs

    _reset_peak_rss()
    reported = benchmark.pedantic(report, rounds=1, iterations=1)
    me, child = _peak_rss_mb()
    lifetime = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"team report over {reported:,} pairs ({instances[-1]} instances): {timings[-1]:.0f} s, "
        f"{cpu[-1]:.0f} s of CPU; peak RSS {me:.0f} MB (report process; {lifetime:.0f} MB "
        f"over the whole test, loading included), {child:.0f} MB (largest worker); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
