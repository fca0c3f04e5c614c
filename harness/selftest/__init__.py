"""``harness selftest``: the seeded-defect catalogue, run through shadow mode.

Each defect (:mod:`.defects`) is seeded by a mutating relay (:mod:`.relay`) on one side
of a stack whose two sides run the same build (:mod:`.run`); the report's gates must
name it, and the control run (no defect) must fail none.
"""

from __future__ import annotations

from harness.selftest.defects import CATALOGUE, Defect
from harness.selftest.run import DefectResult, run_catalogue

__all__ = ["CATALOGUE", "Defect", "DefectResult", "run_catalogue"]
