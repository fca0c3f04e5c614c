"""AIMD on the mirror's concurrency: pure, no I/O."""

from __future__ import annotations

import pytest

from harness.shadow.backpressure import AdaptiveLimit, Signal, classify


@pytest.mark.parametrize(
    ("status", "error", "added", "expected"),
    [
        (200, None, 0.1, Signal.OK),
        (400, None, 0.0, Signal.OK),  # the request's fault, not the target's load
        (401, None, 0.0, Signal.OK),
        (200, None, 9.0, Signal.SLOW),
        (429, None, 0.0, Signal.THROTTLED),
        (500, None, 0.0, Signal.FAILED),
        (504, None, 0.0, Signal.FAILED),
        (None, "timeout", 0.0, Signal.FAILED),
        (None, "connect", 0.0, Signal.FAILED),
        (200, "ReadError", 0.0, Signal.FAILED),  # cut mid-stream
    ],
)
def test_classify(status: int | None, error: str | None, added: float, expected: Signal) -> None:
    assert classify(status, error, added, latency_bound=5.0) is expected


def test_trouble_halves_the_limit_and_good_answers_bring_it_back() -> None:
    limit = AdaptiveLimit(32)
    assert limit.limit == 32 and not limit.reduced
    assert limit.observe(Signal.THROTTLED, limit.round) == 16
    assert limit.observe(Signal.FAILED, limit.round) == 8
    assert limit.observe(Signal.SLOW, limit.round) == 4
    assert limit.reduced and limit.decreases == 3
    # Additive increase: about one more per limit's worth of good answers.
    for _ in range(5):
        limit.observe(Signal.OK, limit.round)
    assert limit.limit == 5
    for _ in range(2000):
        limit.observe(Signal.OK, limit.round)
    assert limit.limit == 32 and not limit.reduced  # never above the ceiling


def test_one_burst_of_failures_cuts_once() -> None:
    """Mirrors already on their way when the limit was cut report the same overload."""
    limit = AdaptiveLimit(32)
    started = limit.round
    for _ in range(20):  # twenty mirrors sent together all time out
        limit.observe(Signal.FAILED, started)
    assert limit.limit == 16 and limit.decreases == 1
    # A mirror sent after the cut that fails again cuts again.
    assert limit.observe(Signal.FAILED, limit.round) == 8


def test_the_floor_keeps_one_mirror_probing() -> None:
    limit = AdaptiveLimit(4)
    for _ in range(10):
        limit.observe(Signal.FAILED, limit.round)
    assert limit.limit == 1
    limit.observe(Signal.OK, limit.round)
    assert limit.limit == 2  # recovers when the target does
    assert AdaptiveLimit(8, floor=3).observe(Signal.FAILED, 0) == 4
    assert AdaptiveLimit(0).limit == 1
