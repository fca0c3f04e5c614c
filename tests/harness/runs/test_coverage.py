"""A run's mirror coverage, from the counters the serving process and the engine record."""

from __future__ import annotations

from harness.runs.coverage import coverage_of


def test_the_coverage_line_names_each_skip_reason_most_first() -> None:
    counters = {
        "tap": {"seen": 2000, "skipped": {"queue_full": 4}},
        "mirror": {
            "queued": 1846,
            "skipped": {"breaker_open": 150, "queue_full": 6},
            "not_mirrored": {"shutdown": 6},
        },
    }
    coverage = coverage_of(counters)
    assert coverage is not None and coverage.complete
    assert (coverage.seen, coverage.mirrored, coverage.skipped_total) == (2000, 1840, 166)
    assert coverage.line() == (
        "1,840 of 2,000 requests mirrored; 166 skipped: breaker open 150, queue full 10, shutdown 6"
    )


def test_sampled_out_and_rate_capped_are_skips_and_a_missing_part_is_said() -> None:
    coverage = coverage_of({"tap": {"seen": 10, "skipped": {"sample": 7, "rate_limited": 1}}})
    assert coverage is not None and not coverage.complete
    assert coverage.mirrored == 0
    assert dict(coverage.skipped) == {"sampled out": 7, "rate capped": 1}
    assert "counters incomplete" in coverage.line()
    # Two requests neither mirrored nor skipped: said, not hidden.
    assert "2 neither" in coverage.line()


def test_no_counters_is_no_coverage() -> None:
    assert coverage_of({}) is None
    assert coverage_of({"tap": "garbage"}) is None
