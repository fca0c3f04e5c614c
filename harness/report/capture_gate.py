"""The captures-readable gate: the store rows the report could not compare (pure).

A row is uncomparable when the store cannot read it back as a pair (not JSON, a field
missing or of the wrong type) or when comparing it raised. Such a row is evidence
missing, not evidence against either proxy: it is in no other gate's samples, and it
could hide a difference as well as a match. So:

* up to :data:`MAX_UNCOMPARABLE_RATE` of the rows (1 %) the gate passes. Each hidden row
  could move a difference rate by one pair at most: together at most 1 percentage point,
  a third of Diffy's default absolute threshold. The rows are still counted and listed.
* above it the gate is INCONCLUSIVE, never FAIL: the decision is at best INCONCLUSIVE
  until the captures are fixed or removed (a failing gate still makes it NO-GO). A
  malformed capture is the harness's fault, not the candidate's.
"""

from __future__ import annotations

from harness.report.formatting import pct
from harness.report.model import GateResult, Status, Uncomparable
from harness.report.tally import Evidence

__all__ = ["MAX_UNCOMPARABLE_RATE", "READABLE_GATE", "readable_gate", "uncomparable_of"]

MAX_UNCOMPARABLE_RATE = 0.01
READABLE_GATE = "captures readable"
_REASONS_SHOWN = 3  # in the gate's one-line detail; the report lists them all


def uncomparable_of(evidence: Evidence) -> Uncomparable:
    found = evidence.uncomparable
    return Uncomparable(
        rows=found.rows,
        of_rows=evidence.rows,
        reasons=tuple(sorted(found.reasons.items(), key=lambda item: (-item[1], item[0]))),
        listed=tuple(found.listed),
    )


def readable_gate(evidence: Evidence) -> GateResult:
    found = uncomparable_of(evidence)
    threshold = (
        f"at most {pct(MAX_UNCOMPARABLE_RATE)} of rows unreadable or uncomparable "
        "(above: INCONCLUSIVE)"
    )
    measured: dict[str, object] = {
        "rows": found.of_rows,
        "uncomparable": found.rows,
        "rate": round(found.rate, 6),
        "reasons": dict(found.reasons),
    }
    if not found.rows:
        return GateResult(
            READABLE_GATE, Status.PASS, found.of_rows, measured, threshold, "every row compared"
        )
    reasons = "; ".join(f"{reason} x{n}" for reason, n in found.reasons[:_REASONS_SHOWN])
    if len(found.reasons) > _REASONS_SHOWN:
        reasons += f"; {len(found.reasons) - _REASONS_SHOWN} more reasons"
    detail = (
        f"{found.rows:,} of {found.of_rows:,} rows ({pct(found.rate)}) could not be compared "
        f"and are in no gate's samples ({reasons})"
    )
    # Exactly at the threshold still passes: "at most 1 %".
    status = Status.PASS if found.rate <= MAX_UNCOMPARABLE_RATE + 1e-12 else Status.INCONCLUSIVE
    return GateResult(READABLE_GATE, status, found.of_rows, measured, threshold, detail)
