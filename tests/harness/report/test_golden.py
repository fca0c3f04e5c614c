"""The Markdown and JSON renderers against golden files from a fixed synthetic store.

Everything that could vary is pinned: the store's timestamps, the run info (versions,
config hash, time), the bootstrap seed, the settings. After an intended change, rewrite
the goldens with ``REPORT_UPDATE_GOLDEN=1 pytest tests/harness/report/test_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.report.model import ReadinessReport
from harness.report.render_json import render_json
from harness.report.render_md import render_markdown

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("REPORT_UPDATE_GOLDEN") == "1"


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"rewrote {path}")
    assert path.exists(), f"{path} missing: run with REPORT_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (REPORT_UPDATE_GOLDEN=1)"


def test_markdown_golden(nogo_report: ReadinessReport) -> None:
    _check("report.md", render_markdown(nogo_report))


def test_json_golden(nogo_report: ReadinessReport) -> None:
    _check("report.json", render_json(nogo_report))


def test_json_is_the_same_model(nogo_report: ReadinessReport) -> None:
    data = json.loads(render_json(nogo_report))
    assert data["decision"] == nogo_report.decision.value == "NO-GO"
    assert data["exit_code"] == 1
    assert [g["name"] for g in data["gates"]] == [g.name for g in nogo_report.gates]
    assert data["summary"]["failed"] == [g.name for g in nogo_report.failed]


def test_first_screen_comes_first(nogo_report: ReadinessReport) -> None:
    head = render_markdown(nogo_report).split("## Gates", 1)[0]
    assert head.startswith("# Cutover readiness: NO-GO")
    assert "Failed gates:" in head and "Worst differences:" in head
    assert len(head.splitlines()) < 30  # readable in ten seconds
