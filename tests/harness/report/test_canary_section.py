"""The report's canary section: present when a canary ran on the store, in every format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from harness.report.canary import read_canary
from harness.report.model import ReadinessReport
from harness.report.render_html import render_html
from harness.report.render_json import render_json
from harness.report.render_md import render_markdown
from harness.store.canary_store import CanaryState, CanaryStore


def _rolled_back_run(path: Path) -> None:
    store = CanaryStore(path)
    state = CanaryState((5, 25, 100), 60, 60, 0, 5, "running", 1000.0, 1000.0)
    store.save(state, "step")
    window = {
        "status": "PASS",
        "pairs": 40,
        "served": {"sdk": 40},
        "reason": "every gate with enough samples passed",
        "gates": [],
    }
    store.save(dataclasses.replace(state, updated_at=1060.0), "window_passed", window)
    state = dataclasses.replace(
        state, step_index=1, percent=25, step_started_at=1060.0, updated_at=1060.0
    )
    store.save(state, "step")
    failing = {
        "status": "FAIL",
        "pairs": 30,
        "served": {"sdk": 30},
        "reason": "canary: error rate: SDK error rate 50.0 %",
        "unrecorded": 3,
        "gates": [
            {
                "name": "canary: error rate",
                "status": "FAIL",
                "samples": 30,
                "detail": "SDK error rate 50.0 % (15 pairs; legacy 0.0 %)",
                "measured": {"sdk_errors": 15, "legacy_errors": 0},
            }
        ],
    }
    store.save(
        dataclasses.replace(state, percent=0, status="rolled_back", updated_at=1075.0),
        "rolled_back",
        {"why": "window failed", "from_percent": 25, "window": failing},
    )


def test_a_canary_run_is_reported_with_its_steps_windows_and_rollback_evidence(
    tmp_path: Path, nogo_report: ReadinessReport
) -> None:
    assert read_canary(tmp_path / "none.db") is None
    _rolled_back_run(tmp_path / "shadow.db")
    canary = read_canary(tmp_path / "shadow.db")
    assert canary is not None
    report = dataclasses.replace(nogo_report, canary=canary)

    markdown = render_markdown(report)
    assert "## Canary: rolled_back, 0 % on the SDK proxy (steps 5,25,100)" in markdown
    section = markdown.split("## Canary:", 1)[1].split("\n## ", 1)[0]
    assert "window_passed" in section and "window PASS: 40 pairs (40 by sdk)" in section
    assert "window failed; window FAIL: 30 pairs" in section
    assert "SDK error rate 50.0 % (15 pairs; legacy 0.0 %)" in section
    # Legacy pairs the judge left out are counted beside the failing gate.
    assert "3 legacy-answered pairs left out (no provider call recorded)" in section
    assert "Canary: rolled_back" in render_html(report)

    data = json.loads(render_json(report))
    assert data["canary"]["status"] == "rolled_back"
    assert [h["event"] for h in data["canary"]["history"]] == [
        "step",
        "window_passed",
        "step",
        "rolled_back",
    ]
    # A store without a canary: no section, and the report is as before.
    assert "Canary" not in render_markdown(nogo_report)
    assert "canary" not in json.loads(render_json(nogo_report))
