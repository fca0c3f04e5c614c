"""The demo's way to a cutover, decided honestly (pure, apart from the switch it is given).

The journey: shadow traffic and load, a first report (the deliberate differences show as
regressions), the shipped accepted differences applied, a second report, and only if that
one says GO: ``harness cutover``, a rollback drill, and the cutover again. A verdict other
than GO stops the journey before the cutover, naming each gate in the way; nothing here
can force it. Later steps (a canary slice before the full cutover) slot in as more
:data:`DRILL` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["DRILL", "ReportVerdict", "Switch", "cutover_drill", "read_verdict"]


@dataclass(frozen=True)
class ReportVerdict:
    """A written report's decision and the gates that stand in the way of GO."""

    decision: str
    failed: tuple[str, ...] = ()
    inconclusive: tuple[str, ...] = ()

    @property
    def go(self) -> bool:
        return self.decision == "GO"

    @property
    def blocking(self) -> tuple[str, ...]:
        return (
            *(f"{name} (FAIL)" for name in self.failed),
            *(f"{name} (INCONCLUSIVE)" for name in self.inconclusive),
        )


def read_verdict(report: Mapping[str, Any]) -> ReportVerdict:
    """From a ``report.json`` dict: its decision, failed and inconclusive gates."""
    summary = report.get("summary") or {}
    return ReportVerdict(
        str(report.get("decision", "?")),
        tuple(map(str, summary.get("failed") or ())),
        tuple(map(str, summary.get("inconclusive") or ())),
    )


class Switch(Protocol):
    """``harness cutover`` / ``harness rollback`` on one stack (exit codes: 0 done)."""

    def cutover(self, report: Path) -> int: ...

    def rollback(self) -> int: ...


# (what is said, the call): cut over on the GO report, drill the rollback, come back.
DRILL: tuple[tuple[str, Callable[[Switch, Path], int]], ...] = (
    ("cutover: the SDK proxy takes the traffic", lambda s, report: s.cutover(report)),
    ("rollback drill: back to the legacy stack", lambda s, report: s.rollback()),
    ("cutover again: the SDK proxy serves", lambda s, report: s.cutover(report)),
)


def cutover_drill(
    verdict: ReportVerdict, switch: Switch, report: Path, say: Callable[[str], None]
) -> bool:
    """The cutover, the rollback drill and the way back, on a GO report only.

    Not GO: says which gates stand in the way and returns False without touching the
    switch. A step that fails stops the drill (the switch has rolled back by itself).
    """
    if not verdict.go:
        say(f"The honest verdict is {verdict.decision}, not GO: no cutover.")
        for gate in verdict.blocking:
            say(f"  in the way: {gate}")
        say("Stopping before the cutover (the demo never forces it).")
        return False
    for title, step in DRILL:
        say(title)
        if step(switch, report) != 0:
            say(f"{title}: failed; the drill stops here")
            return False
    return True
