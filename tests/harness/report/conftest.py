"""A report from a fixed synthetic store, built once for the golden and browser tests."""

from __future__ import annotations

import pytest

from harness.report.evidence import collect_evidence, with_drilldown
from harness.report.model import ReadinessReport
from harness.report.readiness import build_report
from harness.settings import HarnessSettings
from tests.harness.report.factories import RUN
from tests.harness.report.synthetic import build_store

GOLDEN_PAIRS = 420  # 60 per endpoint x stream slot: every gate decides


@pytest.fixture(scope="session")
def nogo_report(tmp_path_factory: pytest.TempPathFactory) -> ReadinessReport:
    store = build_store(tmp_path_factory.mktemp("golden") / "shadow.db", GOLDEN_PAIRS, "nogo")
    settings = HarnessSettings()  # the defaults, not config/harness.yaml: edits there
    evidence = collect_evidence(store, settings, RUN, workers=1)  # must not move goldens
    return with_drilldown(build_report(evidence, settings), evidence, store, settings, RUN)
