"""Percentiles, the order-statistic bootstrap, the least-squares slope, histograms."""

from __future__ import annotations

import random

import pytest

from harness.stats import (
    bootstrap_quantile_difference,
    cdf_points,
    histogram,
    least_squares_slope,
    median_interval,
    paired_bootstrap_quantile_difference,
    percentile,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.99, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),  # nearest rank: an observed value
        ([float(i) for i in range(1, 101)], 0.95, 95.0),  # not 96 from float noise
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
        ([float(i) for i in range(1, 101)], 1.0, 100.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def _naive_interval(
    a: list[float], b: list[float], q: float, rounds: int, rng: random.Random
) -> tuple[float, float]:
    diffs = []
    for _ in range(rounds):
        ra = sorted(rng.choices(a, k=len(a)))
        rb = sorted(rng.choices(b, k=len(b)))
        qa, qb = percentile(ra, q), percentile(rb, q)
        assert qa is not None and qb is not None
        diffs.append(qa - qb)
    diffs.sort()
    return diffs[int(0.025 * rounds)], diffs[int(0.975 * rounds) - 1]


def test_bootstrap_matches_textbook_resampling() -> None:
    rng = random.Random(7)
    a = sorted(rng.lognormvariate(4.7, 0.3) for _ in range(300))
    b = sorted(rng.lognormvariate(4.6, 0.3) for _ in range(300))
    for q in (0.5, 0.95):
        fast = bootstrap_quantile_difference(a, b, q, rounds=4000)
        slow = _naive_interval(a, b, q, 1500, random.Random(11))
        assert fast is not None
        width = slow[1] - slow[0]
        assert abs(fast[0] - slow[0]) < 0.25 * width
        assert abs(fast[1] - slow[1]) < 0.25 * width


def test_bootstrap_is_seeded_and_brackets_the_difference() -> None:
    rng = random.Random(3)
    a = sorted(100 + rng.random() * 20 for _ in range(500))
    b = sorted(90 + rng.random() * 20 for _ in range(500))
    first = bootstrap_quantile_difference(a, b, 0.5)
    assert first == bootstrap_quantile_difference(a, b, 0.5)
    assert first is not None and first[0] < 10 < first[1]
    assert bootstrap_quantile_difference(a, [], 0.5) is None


def test_least_squares_slope() -> None:
    assert least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert least_squares_slope([(0, 1)]) is None
    assert least_squares_slope([(1, 1), (1, 2)]) is None


def test_cdf_and_histogram() -> None:
    values = [float(i) for i in range(1, 11)]
    points = cdf_points(values, steps=10)
    assert points[0] == (1.0, 0.1) and points[-1] == (10.0, 1.0)
    bars = histogram(values, 0.0, 10.0, bins=5)
    assert [round(f, 2) for _, f in bars] == [0.1, 0.2, 0.2, 0.2, 0.3]
    assert histogram([], 0, 1) == ()


def test_the_median_interval_is_the_sign_test_s() -> None:
    # n = 6: the extremes cover the median with 1 - 2/64 = 96.9 %; n = 5 cannot reach 95 %.
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (1.0, 6.0)
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    # n = 20: ranks 6 and 15 (the textbook table's).
    values = [float(i) for i in range(1, 21)]
    assert median_interval(values) == (6.0, 15.0)
    # Large n (normal approximation) still brackets the median, tightly.
    rng = random.Random(3)
    many = sorted(rng.gauss(0.0, 1.0) for _ in range(5001))
    low, high = median_interval(many)  # type: ignore[misc]
    assert low < 0.0 < high and high - low < 0.1


def _stalled_pairs(shift_ms: float, seed: int = 5) -> list[tuple[float, float]]:
    """Both sides of a pair sent at the same moment: each pair shares the machine's stall
    (a heavy tail), and each side adds a little noise of its own."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(110):
        common = 5.0 + (rng.expovariate(1 / 20) if rng.random() < 0.15 else rng.random())
        pairs.append((common + shift_ms + rng.gauss(0, 0.3), common + rng.gauss(0, 0.3)))
    return pairs


def test_the_paired_p95_interval_cancels_what_both_sides_of_a_pair_share() -> None:
    same = _stalled_pairs(0.0)
    paired = paired_bootstrap_quantile_difference(same, 0.95)
    apart = bootstrap_quantile_difference(
        sorted(a for a, _ in same), sorted(b for _, b in same), 0.95
    )
    assert paired is not None and apart is not None
    assert paired[0] <= 0.0 <= paired[1]  # the same build: no difference
    # Resampled apart, the shared stalls widen the interval several times over.
    assert (apart[1] - apart[0]) > 3 * (paired[1] - paired[0])
    # A real slowdown of every call is still found, and bracketed.
    slower = paired_bootstrap_quantile_difference(_stalled_pairs(3.0), 0.95)
    assert slower is not None and 0.0 < slower[0] <= 3.0 <= slower[1]
    assert paired == paired_bootstrap_quantile_difference(same, 0.95)  # seeded
    assert paired_bootstrap_quantile_difference([], 0.95) is None
