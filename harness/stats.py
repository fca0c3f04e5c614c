"""Percentiles, bootstrap intervals and a least-squares slope, in plain Python (pure).

Percentiles are nearest-rank: always an observed value. The report, the replay summary and
the bench all take theirs from :func:`percentile`, so a p95 means the same everywhere.

The bootstrap of a quantile difference resamples each side independently. Drawing a
resample of ``n`` values and taking its ``k``-th smallest is the same as taking the
sorted sample at the ``k``-th smallest of ``n`` uniform indices, and that order statistic
is ``floor(n * U)`` with ``U ~ Beta(k, n - k + 1)``. So each replicate costs one beta
variate instead of ``n`` draws and a sort: 2,000 replicates over 50,000 samples take
milliseconds, with the same distribution as the textbook resampling. Independent
resampling ignores the pairing of SDK and legacy answers, which only widens the interval
(their latencies correlate positively): the interval errs on the cautious side.
Where the pairs are known (both sides timed at the same moment), the tail's interval
resamples whole pairs (:func:`paired_bootstrap_quantile_difference`): a stall that hit
both sides of a pair moves both quantiles together and cancels in their difference,
where the independent resampling counts it against one side or the other.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BOOTSTRAP_SEED",
    "bootstrap_quantile_difference",
    "median_interval",
    "paired_bootstrap_quantile_difference",
    "cdf_points",
    "histogram",
    "least_squares_slope",
    "slope_interval",
    "SlopeFit",
    "percentile",
]

BOOTSTRAP_SEED = 20_250_101
_RANK_SLACK = 1e-9  # q * n computed in floats: 0.95 * 100 must be rank 95, not 96


def _rank(q: float, n: int) -> int:
    """The 1-based nearest rank of quantile ``q`` (0 < q <= 1) among ``n`` values."""
    return min(n, max(1, math.ceil(q * n - _RANK_SLACK)))


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile ``q`` (0..1) of already sorted values; None when empty."""
    if not sorted_values:
        return None
    return sorted_values[_rank(q, len(sorted_values)) - 1]


def _replicates(
    sorted_values: Sequence[float], q: float, rounds: int, rng: random.Random
) -> list[float]:
    n = len(sorted_values)
    k = _rank(q, n)
    out: list[float] = []
    for _ in range(rounds):
        index = min(n - 1, int(n * rng.betavariate(k, n - k + 1)))
        out.append(sorted_values[index])
    return out


def bootstrap_quantile_difference(
    a_sorted: Sequence[float],
    b_sorted: Sequence[float],
    q: float,
    *,
    rounds: int = 2000,
    confidence: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """A percentile-bootstrap interval for ``quantile(a) - quantile(b)``; None if empty."""
    if not a_sorted or not b_sorted:
        return None
    rng = random.Random(seed)
    a = _replicates(a_sorted, q, rounds, rng)
    b = _replicates(b_sorted, q, rounds, rng)
    differences = sorted(x - y for x, y in zip(a, b, strict=True))
    tail = (1 - confidence) / 2
    low = differences[_rank(tail, rounds) - 1]
    high = differences[_rank(1 - tail, rounds) - 1]
    return low, high


def paired_bootstrap_quantile_difference(
    pairs: Sequence[tuple[float, float]],
    q: float,
    *,
    rounds: int = 2000,
    confidence: float = 0.95,
    seed: int = BOOTSTRAP_SEED,
    limit: int = 2000,
) -> tuple[float, float] | None:
    """A percentile-bootstrap interval for ``quantile(a) - quantile(b)`` over ``(a, b)``
    pairs, each resample drawn pair by pair; None if empty. Above ``limit`` pairs, a
    seeded uniform subsample of ``limit`` is resampled: this bootstrap draws every value
    (no order-statistic shortcut holds for two sides at once), and 2,000 pairs keep it
    near a second in plain Python."""
    if not pairs:
        return None
    rng = random.Random(seed)
    chosen = list(pairs) if len(pairs) <= limit else rng.sample(list(pairs), limit)
    n = len(chosen)
    k = _rank(q, n)
    a = [pair[0] for pair in chosen]
    b = [pair[1] for pair in chosen]
    indices = range(n)
    differences = []
    for _ in range(rounds):
        drawn = rng.choices(indices, k=n)
        differences.append(
            sorted([a[i] for i in drawn])[k - 1] - sorted([b[i] for i in drawn])[k - 1]
        )
    differences.sort()
    tail = (1 - confidence) / 2
    return differences[_rank(tail, rounds) - 1], differences[_rank(1 - tail, rounds) - 1]


def median_interval(
    sorted_values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """A distribution-free interval for the median (of paired differences, say): the
    order statistics the sign test puts at ``confidence``; None below 6 values, where no
    pair of order statistics reaches 95 %.

    The ``k``-th smallest is below the median with the probability that Binomial(n, 1/2)
    is at least ``k``; ``k`` is the largest rank whose tail stays within
    ``(1 - confidence) / 2``. Exact up to 1,000 values, normal approximation above."""
    n = len(sorted_values)
    tail = (1 - confidence) / 2
    if n <= 1000:
        cumulative, k = 0.0, 0
        while True:
            cumulative += math.comb(n, k) / 2**n  # P(Binomial(n, 1/2) == k)
            if cumulative > tail:
                break
            k += 1
    else:
        z = _NORMAL_QUANTILES.get(confidence, 1.959964)
        k = int(math.floor((n - z * math.sqrt(n)) / 2))
    if k < 1:
        return None
    return sorted_values[k - 1], sorted_values[n - k]


_NORMAL_QUANTILES = {0.9: 1.644854, 0.95: 1.959964, 0.99: 2.575829}


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The slope of y over x fitted by ordinary least squares; None for fewer than two x."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


# Two-sided 95 % quantiles of Student's t by degrees of freedom (1..30); beyond 30 the
# normal's 1.96 is within 2 %. A table rather than scipy for one number.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class SlopeFit:
    """An ordinary least-squares slope with its 95 % confidence interval."""

    slope: float
    low: float
    high: float
    points: int


def slope_interval(points: Sequence[tuple[float, float]]) -> SlopeFit | None:
    """The OLS slope of y over x and its 95 % interval (slope +- t * standard error);
    None for fewer than three points or a single x."""
    n = len(points)
    slope = least_squares_slope(points)
    if slope is None or n < 3:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    residual = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in points)
    error = math.sqrt(residual / (n - 2) / sxx)
    t = _T95[n - 3] if n - 2 <= len(_T95) else 1.96
    return SlopeFit(slope, slope - t * error, slope + t * error, n)


def cdf_points(sorted_values: Sequence[float], steps: int = 100) -> tuple[tuple[float, float], ...]:
    """(value, fraction at or below it) at ``steps`` evenly spaced quantiles."""
    if not sorted_values:
        return ()
    points = []
    for i in range(1, steps + 1):
        q = i / steps
        value = percentile(sorted_values, q)
        assert value is not None
        points.append((value, q))
    return tuple(points)


def histogram(
    values: Sequence[float], low: float, high: float, bins: int = 20
) -> tuple[tuple[float, float], ...]:
    """(bin start, fraction of values in the bin); values beyond ``high`` go in the last."""
    if not values or bins <= 0:
        return ()
    width = (high - low) / bins if high > low else 1.0
    counts = [0] * bins
    for value in values:
        index = int((value - low) / width)
        counts[min(bins - 1, max(0, index))] += 1
    total = len(values)
    return tuple((low + i * width, counts[i] / total) for i in range(bins))
