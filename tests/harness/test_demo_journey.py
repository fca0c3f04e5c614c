"""The demo's journey: on GO the cutover, the rollback drill and the way back, in order;
on anything else, the gates in the way named and the switch never touched."""

from __future__ import annotations

from pathlib import Path

from harness.demo.journey import ReportVerdict, cutover_drill, read_verdict


class FakeSwitch:
    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at = fail_at

    def _result(self, name: str) -> int:
        self.calls.append(name)
        return 1 if self.fail_at == len(self.calls) else 0

    def cutover(self, report: Path) -> int:
        assert report == Path("reports/go")
        return self._result("cutover")

    def rollback(self) -> int:
        return self._result("rollback")


def test_go_cuts_over_drills_the_rollback_and_comes_back() -> None:
    said: list[str] = []
    switch = FakeSwitch()
    assert cutover_drill(ReportVerdict("GO"), switch, Path("reports/go"), said.append)
    assert switch.calls == ["cutover", "rollback", "cutover"]
    assert said[0].startswith("cutover:") and said[1].startswith("rollback drill")


def test_a_failed_step_stops_the_drill() -> None:
    switch = FakeSwitch(fail_at=2)
    assert not cutover_drill(ReportVerdict("GO"), switch, Path("reports/go"), print)
    assert switch.calls == ["cutover", "rollback"]


def test_not_go_names_the_gates_in_the_way_and_never_switches() -> None:
    report = {
        "decision": "NO-GO",
        "summary": {"failed": ["parity: chat"], "inconclusive": ["latency: chat stream"]},
    }
    verdict = read_verdict(report)
    said: list[str] = []
    switch = FakeSwitch()
    assert not cutover_drill(verdict, switch, Path("reports/go"), said.append)
    assert switch.calls == []
    assert "  in the way: parity: chat (FAIL)" in said
    assert "  in the way: latency: chat stream (INCONCLUSIVE)" in said
    assert said[-1] == "Stopping before the cutover (the demo never forces it)."
    assert not cutover_drill(read_verdict({"decision": "INCONCLUSIVE"}), switch, Path("x"), print)
    assert switch.calls == []
