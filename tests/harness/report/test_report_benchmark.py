"""A report over 100,000 pairs in under 60 s (2 cores): read, compare, gate, render.

In the normal suite (``--benchmark-disable``) the store has 2,000 pairs and the test is a
smoke run. Measure with::

    pytest tests/harness/report/test_report_benchmark.py --benchmark-enable

(``REPORT_BENCH_PAIRS`` overrides the size). Building the 100,000-pair store takes about
a minute of setup; only the report is timed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness.report.evidence import collect_evidence
from harness.report.output import write_report
from harness.report.readiness import build_report
from harness.settings import HarnessSettings
from tests.harness.report.factories import RUN
from tests.harness.report.synthetic import build_store

FULL_SIZE = 100_000
SMOKE_SIZE = 2_000
BUDGET_S = 60.0


def _benchmarks_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_enable")) or not config.getoption("benchmark_disable")


@pytest.fixture(scope="module")
def bench_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    size = FULL_SIZE if _benchmarks_enabled(request.config) else SMOKE_SIZE
    size = int(os.environ.get("REPORT_BENCH_PAIRS", size))
    return build_store(tmp_path_factory.mktemp("bench") / "shadow.db", size, "nogo")


@pytest.mark.timeout(900)
@pytest.mark.benchmark(group="report")
def test_report_over_a_large_store(benchmark: Any, bench_store: Path, tmp_path: Path) -> None:
    settings = HarnessSettings()
    timings: list[float] = []

    def report() -> int:
        started = time.perf_counter()
        evidence = collect_evidence(bench_store, settings, RUN)
        write_report(build_report(evidence, settings), tmp_path / "reports")
        timings.append(time.perf_counter() - started)
        return evidence.pairs

    pairs = benchmark.pedantic(report, rounds=1, iterations=1)
    print(f"\nreport over {pairs:,} pairs: {timings[-1]:.1f} s")
    assert timings[-1] < BUDGET_S
