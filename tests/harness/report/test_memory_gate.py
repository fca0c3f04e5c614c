"""The memory gate judges RSS growth per request served, on a confidence interval, over
a minimum of requests: a seeded leak fails, a flat noisy series passes, and a 16 s window
decides nothing."""

from __future__ import annotations

import random

from harness.load.served import with_requests
from harness.report.model import Status
from harness.report.resource_gates import MIB, memory_gate, memory_summaries
from harness.report.tally import RssSeries
from harness.settings import HarnessSettings
from harness.store.capture_store import ProcessSample

SETTINGS = HarnessSettings()


def _series(
    samples: int, per_sample: int, mb_per_request: float, noise_mb: float, seed: int = 7
) -> RssSeries:
    """One sample a second, ``per_sample`` requests served between samples."""
    rng = random.Random(seed)
    points, requests = [], []
    for i in range(samples):
        served = i * per_sample
        mb = 180.0 + mb_per_request * served + rng.gauss(0.0, noise_mb)
        points.append((float(i), int(mb * MIB)))
        requests.append(served)
    return RssSeries("sdk", 1, "load-criterion", tuple(points), tuple(requests))


def _gate(series: RssSeries):  # type: ignore[no-untyped-def]
    return memory_gate(memory_summaries((series,)), SETTINGS)


def test_a_leak_of_1_mb_per_1000_requests_fails() -> None:
    # Two minutes at 200 requests a second, RSS noisy by 2 MB: 10 MB per 10,000 requests.
    gate = _gate(_series(120, 200, 1.0 / 1000, noise_mb=2.0))
    assert gate.status is Status.FAIL
    (summary,) = memory_summaries((_series(120, 200, 1.0 / 1000, noise_mb=2.0),))
    assert summary.growth_low is not None and summary.growth_low > 5.0
    assert "MB per 10,000 requests" in gate.measured["sdk"]
    assert "/hour" not in gate.measured["sdk"]


def test_a_flat_noisy_series_passes() -> None:
    # Two minutes at 200 requests a second, RSS noisy by 2 MB, no growth.
    gate = _gate(_series(120, 200, 0.0, noise_mb=2.0))
    assert gate.status is Status.PASS, gate.detail


def test_a_16_second_window_is_inconclusive_not_fail() -> None:
    # What the demo once judged "+294 MB/hour": 17 samples, 1.3 MB in 16 s, few requests.
    series = _series(17, 40, 1.3 / 640, noise_mb=0.05)
    gate = _gate(series)
    assert gate.status is Status.INCONCLUSIVE
    assert "failing so far" in gate.detail and gate.needs > 0


def test_an_interval_across_the_limit_is_inconclusive() -> None:
    # Growth right at the limit, measured too noisily to tell which side it is on.
    gate = _gate(_series(30, 200, 8.0 / 10_000, noise_mb=6.0))
    assert gate.status is Status.INCONCLUSIVE
    assert "straddles" in gate.detail


def test_without_request_counts_nothing_is_fitted() -> None:
    series = RssSeries("sdk", 1, "old", tuple((float(i), 150 * MIB) for i in range(60)))
    assert _gate(series).status is Status.INCONCLUSIVE


def test_locust_history_is_joined_to_the_samples_and_scaled_to_the_run_total() -> None:
    started = 1000.0
    samples = [ProcessSample("sdk", t, 100, 0.1) for t in (0.0, 1.5, 2.5, 9.0)]
    # Locust's cumulative counts (stream TTFT events included: twice the requests).
    history = [(1001.0, 200), (1002.0, 400), (1003.0, 800)]
    joined = with_requests(samples, started, history, total=400)
    assert [s.requests for s in joined] == [0, 100, 200, 400]
    assert with_requests(samples, started, [], total=400) == samples
