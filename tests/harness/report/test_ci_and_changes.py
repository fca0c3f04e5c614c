"""CI outputs (JUnit, summary) and what changed between reports (--compare-to, timeline)."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.changes import compare_reports
from harness.report.ci_outputs import render_junit, render_summary
from harness.report.model import ReadinessReport, Status
from harness.report.render_json import report_dict
from tests.harness.report.synthetic import build_store


def test_junit_parses_with_one_testcase_per_gate(nogo_report: ReadinessReport) -> None:
    root = ET.fromstring(render_junit(nogo_report))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g.name for g in nogo_report.gates]
    for case, gate in zip(cases, nogo_report.gates, strict=True):
        failure, skipped = case.find("failure"), case.find("skipped")
        if gate.status is Status.FAIL:
            assert failure is not None and skipped is None
            assert (failure.get("message") or "").startswith(gate.name)
        elif gate.status is Status.INCONCLUSIVE:
            assert skipped is not None and failure is None
            assert (skipped.get("message") or "").startswith("INCONCLUSIVE: " + gate.name)
        else:
            assert failure is None and skipped is None
    assert suite.get("tests") == str(len(nogo_report.gates))
    assert suite.get("failures") == str(len(nogo_report.failed)) != "0"
    assert suite.get("skipped") == str(len(nogo_report.inconclusive))
    decision = suite.find("properties/property[@name='decision']")
    assert decision is not None and decision.get("value") == "NO-GO"


def test_summary_is_short_markdown(nogo_report: ReadinessReport) -> None:
    text = render_summary(nogo_report)
    assert text.startswith("### Cutover readiness: NO-GO")
    for gate in nogo_report.failed:
        assert gate.name in text
    assert len(text.splitlines()) < 40


def test_compare_to_names_a_flipped_gate_a_new_difference_and_rule_churn(
    nogo_report: ReadinessReport,
) -> None:
    current = report_dict(nogo_report)
    previous = copy.deepcopy(current)
    failed = next(g for g in previous["gates"] if g["status"] == "FAIL")
    failed["status"] = "PASS"  # it passed before: now it flipped to FAIL
    table = next(
        t for t in previous["differences"] if any(r["verdict"] == "regression" for r in t["fields"])
    )
    gone = next(r for r in table["fields"] if r["verdict"] == "regression")
    table["fields"].remove(gone)  # a regression new in this report
    previous["differences"][0]["fields"].append(
        {"key": "body.old", "category": "schema", "verdict": "regression", "count": 3}
    )
    previous["accepted"] = {
        "pairs": 3,
        "rules": [{"name": "old-rule", "state": "applied", "pairs": 3}],
    }
    changes = compare_reports(previous, current, "earlier/report.json")
    assert (failed["name"], "PASS", "FAIL") in changes.flipped
    assert f"{table['endpoint']} {gone['key']} ({gone['category']})" in changes.appeared
    assert f"{previous['differences'][0]['endpoint']} body.old (schema)" in changes.disappeared
    assert changes.rules == (("old-rule", "applied, 3 pairs", "removed"),)
    assert compare_reports(current, current, "same").any is False


def test_report_cli_compares_to_the_previous_report_and_writes_ci_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_store(tmp_path / "shadow.db", 140, "nogo")
    out = tmp_path / "reports"
    base = ["report", "--store", str(store), "--out", str(out)]
    base += ["--config", str(tmp_path / "none.yaml")]
    code = main(base)
    first = (out / "latest").resolve()
    assert json.loads((first / "report.json").read_text())["changes"] is None
    # The second report compares itself to the first by default.
    junit, summary = tmp_path / "ci" / "junit.xml", tmp_path / "ci" / "summary.md"
    assert main([*base, "--junit", str(junit), "--summary", str(summary)]) == code
    second = json.loads(((out / "latest") / "report.json").read_text())
    assert second["changes"]["against"] == str(first)
    assert second["changes"]["flipped"] == [] and second["changes"]["appeared"] == []
    assert [e["current"] for e in second["timeline"]] == [False, True]
    assert len(ET.parse(junit).getroot().findall("testsuite/testcase")) == len(second["gates"])
    assert summary.read_text().startswith(f"### Cutover readiness: {second['decision']}")
    # An earlier report where a gate passed and a difference did not exist.
    earlier = json.loads((first / "report.json").read_text())
    failing = next(g for g in earlier["gates"] if g["status"] == "FAIL")
    failing["status"] = "PASS"
    for table in earlier["differences"]:
        table["fields"] = [r for r in table["fields"] if r["verdict"] != "regression"]
    doctored = tmp_path / "earlier.json"
    doctored.write_text(json.dumps(earlier))
    capsys.readouterr()
    assert main([*base, "--compare-to", str(doctored)]) == code
    printed = capsys.readouterr().out
    assert f"gate flipped: {failing['name']}: PASS -> FAIL" in printed
    assert "difference appeared:" in printed
    third = (out / "latest").resolve()
    html = (third / "report.html").read_text()
    assert "Timeline: each report" in html and html.count('class="badge FAIL">NO-GO') >= 2
    assert main([*base, "--compare-to", str(tmp_path / "missing.json")]) == 2
    # A `latest` that is not a report is no history: the default comparison is skipped.
    (out / "latest" / "report.json").write_text("{}")
    assert main(base) == code
    assert json.loads(((out / "latest") / "report.json").read_text())["changes"] is None
