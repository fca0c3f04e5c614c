"""``harness report``: the cutover readiness report (GO / NO-GO / INCONCLUSIVE).

::

    store --evidence (I/O, comparisons)--> Evidence --gates (pure)--> [GateResult]
    Evidence + gates --readiness.build_report--> ReadinessReport
    ReadinessReport --render_md / render_html / render_json--> report.{md,html,json}

As in coveragepy's ``results.py``: one data model, a pure gate function, thin renderers.
"""

from __future__ import annotations

from harness.report.model import Decision, GateResult, ReadinessReport, Status
from harness.report.readiness import build_report

__all__ = ["Decision", "GateResult", "ReadinessReport", "Status", "build_report"]
