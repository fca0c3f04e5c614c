"""The seeded-defect catalogue, end to end: every defect is caught by its gate, and the
same build on both sides fails none.

One stack (sandbox, three SDK proxies: primary, candidate and latency twin, the mirror in
replay mode, four mutating relays) is started once; each run switches the candidate's
relays' defect and sends the reduced corpus once (the latency defects: the latency probes;
the control: both).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.selftest import CATALOGUE, run_catalogue
from harness.selftest.cli import format_table
from harness.selftest.run import LATENCY_PROBES, SELFTEST_CORPUS

pytestmark = pytest.mark.slow


def test_every_seeded_defect_gives_no_go_with_its_gate_and_the_control_is_clean(
    tmp_path: Path,
) -> None:
    results = run_catalogue(workdir=tmp_path)
    table = format_table(results)
    control, *seeded = results
    assert control.defect is None and control.failed == (), table
    assert [r.defect for r in seeded] == list(CATALOGUE)
    missed = [r.defect.name for r in seeded if r.defect is not None and not r.caught]
    assert missed == [], table
    # No run lost a pair.
    probes = sum(LATENCY_PROBES.values())
    assert control.pairs == len(SELFTEST_CORPUS) + probes, table
    for result in seeded:
        assert result.defect is not None
        latency = result.defect.gate == "latency"
        if latency:  # more rounds of probes while the defect's check is undecided
            assert result.pairs in (probes, 2 * probes, 3 * probes), table
        else:
            assert result.pairs == len(SELFTEST_CORPUS), table
    # The control's latency slices were timed alike, and the probes' slices decided.
    assert {s.label: min(s.samples.values()) >= 12 for s in control.latency} == {
        "messages non-stream": True,
        "messages stream": True,
        "chat non-stream": False,
        "chat stream": False,
    }, table
    # The gates name what they found, e.g. the path of the field the SDK side dropped.
    by_name = {r.defect.name: r for r in seeded if r.defect is not None}
    assert (
        "system[*].cache_control"
        in by_name["strip cache_control"].details["upstream request parity"]
    )
    assert (
        "1 more provider call"
        in by_name["send each call twice"].details["provider calls per request"]
    )
    assert "without x-sm-user-id" in by_name["drop x-sm-user-id"].details["memory routing"]
    per_call = by_name["+3 ms latency on every call"]
    assert "p50" in per_call.failed_checks["latency: messages non-stream"], table
    ttft = by_name["+20 % TTFT on streams"]
    assert "TTFT p50" in ttft.failed_checks["latency: messages stream"], table
    assert "latency: messages non-stream" not in ttft.failed, table  # streams only
