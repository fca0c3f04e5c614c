"""The seeded-defect catalogue, end to end: every defect is caught by its gate, and the
same build on both sides fails none.

One stack (sandbox, two SDK proxies, the mirror in replay mode, two mutating relays) is
started once; each run switches the relays' defect and sends the reduced corpus once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.selftest import CATALOGUE, run_catalogue
from harness.selftest.cli import format_table

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
    for result in seeded:
        assert result.pairs == control.pairs, table  # no run lost a pair
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
