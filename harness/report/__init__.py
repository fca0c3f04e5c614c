"""``harness report``: the cutover readiness report (GO / NO-GO / INCONCLUSIVE).

::

    store --evidence (I/O, comparisons)--> Evidence --gates (pure)--> [GateResult]
    Evidence + gates --readiness.build_report--> ReadinessReport
    ReadinessReport --sections (pure)--> [Section] --render_md / render_html--> report.{md,html}
    ReadinessReport --render_json--> report.json

As in coveragepy's ``results.py``: one data model, a pure gate function, thin renderers.
Every section's words and numbers are built once (:mod:`.sections`, :mod:`.first_screen`);
the Markdown and HTML renderers only escape and lay them out.
"""

from __future__ import annotations

from harness.report.model import Decision, GateResult, ReadinessReport, Status
from harness.report.readiness import build_report

__all__ = ["Decision", "GateResult", "ReadinessReport", "Status", "build_report"]
