"""The defect -> gate table and the A/A latency lines, from results built by hand (pure)."""

from __future__ import annotations

from harness.report.model import LatencySummary
from harness.selftest.cli import format_aa_latency, format_table
from harness.selftest.defects import defect_named
from harness.selftest.run import DefectResult

SLICE = "latency: messages non-stream"


def _result(name: str | None, failed: dict[str, tuple[str, ...]]) -> DefectResult:
    return DefectResult(defect_named(name), tuple(failed), 50, {}, failed)


def test_a_latency_defect_is_caught_only_by_its_own_check() -> None:
    control = _result(None, {})
    caught = _result("+3 ms latency on every call", {SLICE: ("p50",)})
    # p95 failing is not the p50 gate the defect must trip.
    missed = _result("+3 ms latency on every call", {SLICE: ("p95",)})
    assert control.caught and caught.caught and not missed.caught
    table = format_table([control, caught, missed])
    assert "| +3 ms latency on every call | answer | latency (p50) | NO-GO, caught | " in table
    assert f"{SLICE} (p50) |" in table and f"MISSED | {SLICE} (p95) |" in table
    assert table.endswith("1 of 2 defects caught by their gate; control clean: yes")


def test_a_control_that_fails_a_latency_gate_is_not_clean() -> None:
    control = _result(None, {SLICE: ("p50",)})
    assert not control.caught
    assert "| none (same build on both sides) | - | no gate fails | NOT CLEAN |" in format_table(
        [control]
    )


def test_the_aa_lines_show_both_ratios_and_the_paired_interval() -> None:
    summary = LatencySummary(
        endpoint="messages",
        stream=False,
        samples={"sdk": 24, "legacy": 24},
        total={
            "sdk": {"p50": 10.5, "p95": 20.0, "p99": 30.0},
            "legacy": {"p50": 10.0, "p95": 25.0, "p99": 30.0},
        },
        ttft={},
        intervals={"p50": (-0.7, 0.6)},
    )
    control = DefectResult(None, (), 50, {}, {}, (summary,))
    lines = format_aa_latency(control).splitlines()
    assert lines[-1] == (
        "| messages non-stream | 24 | 10.5 ms / 10.0 ms | 1.05 | 0.80 | [-0.7, +0.6] ms |"
    )
