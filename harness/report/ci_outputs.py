"""The report for CI: JUnit XML (one testcase per gate) and a short Markdown summary (pure).

JUnit: a FAIL gate is a ``<failure>``, an INCONCLUSIVE one is ``<skipped>`` with what it
lacks, a PASS one a bare testcase; CI systems (GitHub, GitLab, Jenkins) show each gate as
a test. The summary is a few lines for a job summary (``$GITHUB_STEP_SUMMARY``): the
decision, the failed and inconclusive gates, the worst differences, what changed. Neither
changes the exit code: 0 GO, 1 NO-GO, 2 INCONCLUSIVE, as always.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.report.first_screen import first_screen, gate_line
from harness.report.model import ReadinessReport, Status
from harness.report.render_json import utc
from harness.report.sections import changes_rows

__all__ = ["render_junit", "render_summary"]

_SUITE = "cutover-readiness"


def render_junit(report: ReadinessReport) -> str:
    suite = ET.Element(
        "testsuite",
        {
            "name": _SUITE,
            "tests": str(len(report.gates)),
            "failures": str(len(report.failed)),
            "errors": "0",
            "skipped": str(len(report.inconclusive)),
            "timestamp": utc(report.context.generated_at) or "",
        },
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "decision", "value": report.decision.value})
    for gate in report.gates:
        case = ET.SubElement(
            suite, "testcase", {"classname": _SUITE, "name": gate.name, "time": "0"}
        )
        line = gate_line(gate)
        if gate.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", {"message": line, "type": "FAIL"})
            failure.text = (
                "\n".join(
                    f"{c.name}: {c.status.value}: {c.measured} (threshold: {c.threshold})"
                    for c in gate.checks
                )
                or f"threshold: {gate.threshold}"
            )
        elif gate.status is Status.INCONCLUSIVE:
            ET.SubElement(case, "skipped", {"message": f"INCONCLUSIVE: {line}"})
        ET.SubElement(case, "system-out").text = f"samples: {gate.samples}; {gate.threshold}"
    root = ET.Element("testsuites", {"name": _SUITE})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def render_summary(report: ReadinessReport) -> str:
    screen = first_screen(report)
    lines = [f"### Cutover readiness: {report.decision.value}", "", f"**{_md(screen.headline)}**"]
    lines += ["", _md(screen.evidence), ""]
    for title, items in (
        ("Failed gates", screen.failed),
        ("Inconclusive gates", screen.inconclusive),
    ):
        if items:
            lines += [f"{title}:", ""] + [f"- {_md(item)}" for item in items] + [""]
    lines += ["Worst differences:", ""]
    lines += [f"{i}. {_md(line)}" for i, line in enumerate(screen.worst, 1)] + [""]
    accepted = [r for r in report.accepted if r.state == "applied"]
    if report.accepted:
        lines.append(
            f"Accepted differences: {report.accepted_pairs:,} pairs by {len(accepted)} of "
            f"{len(report.accepted)} rules."
        )
        lines.append("")
    rows = changes_rows(report)
    if report.changes is not None:
        changes = report.changes
        lines += [f"Changed since {changes.against} ({changes.previous_decision}):", ""]
        lines += [f"- {what}: {_md(name)}: {before} → {now}" for what, name, before, now in rows]
        lines += ["- nothing"] if not rows else []
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
