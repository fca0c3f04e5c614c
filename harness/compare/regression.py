"""A difference rate against its noise rate: regression or not (Diffy's rule, pure).

A rate is the fraction of compared pairs that differ in a category (or a field); the
noise rate is the same fraction between legacy and its own repeat (the A/A baseline).
:func:`classify` calls a rate a regression only when it exceeds the noise by both the
relative and the absolute threshold, so a category that is noisy by nature (sampled
content) needs a clear excess and one that never varies (status) needs only a few
points. The rates come from the report's tallies (:mod:`harness.report.tally`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.compare.diff import DEFAULT_CONTENT_SIMILARITY

__all__ = ["CategoryAssessment", "Thresholds", "classify"]

# Rates are fractions of pairs; a rate exactly at a threshold is not "exceeding" it.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Thresholds:
    """When a difference rate is a regression (Diffy's starting points), and content slack."""

    relative: float = 0.20  # excess over the noise rate, as a fraction of the noise rate
    absolute: float = 0.03  # excess over the noise rate, as a fraction of all pairs
    content_similarity: float = DEFAULT_CONTENT_SIMILARITY


@dataclass(frozen=True)
class CategoryAssessment:
    """One category's difference rate against its noise rate."""

    category: str
    rate: float
    noise_rate: float
    regression: bool


def classify(
    thresholds: Thresholds,
    category_rates: Mapping[str, float],
    noise_rates: Mapping[str, float],
) -> dict[str, CategoryAssessment]:
    """Each category's rate against its noise: a regression only above both thresholds.

    Works as well for field rates (any keys). With no noise, the relative test passes
    for any excess and the absolute one decides.
    """
    out = {}
    for key in [*category_rates, *(k for k in noise_rates if k not in category_rates)]:
        rate = category_rates.get(key, 0.0)
        noise = noise_rates.get(key, 0.0)
        excess = rate - noise
        regression = (
            excess > thresholds.absolute + _EPSILON
            and excess > thresholds.relative * noise + _EPSILON
        )
        out[key] = CategoryAssessment(key, rate, noise, regression)
    return out
