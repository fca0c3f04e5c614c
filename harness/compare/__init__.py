"""Comparing the SDK's and legacy's answers: normalize, diff, judge against noise.

::

    Observation --normalize--> comparable dict --IgnoreRules--> Normalized
    Normalized x 2 --diff--> [Difference] --Comparator--> Verdict
    A/A Verdicts --harness.report.collect--> noise tallies
    rates vs noise --classify(thresholds)--> regressions

All pure: nothing here touches the network, the store or the request path.
"""

from __future__ import annotations

from harness.compare.comparator import Comparator, Verdict
from harness.compare.diff import CATEGORIES, MISSING, Difference, diff
from harness.compare.normalize import (
    COMPARED_HEADERS,
    DEFAULT_IGNORE_RULES,
    comparable,
    normalize,
)
from harness.compare.regression import CategoryAssessment, Thresholds, classify
from harness.compare.rules import IgnoreRules, Normalized, canonical_model
from harness.compare.upstream import upstream_parity

__all__ = [
    "CATEGORIES",
    "COMPARED_HEADERS",
    "DEFAULT_IGNORE_RULES",
    "MISSING",
    "CategoryAssessment",
    "Comparator",
    "Difference",
    "IgnoreRules",
    "Normalized",
    "Thresholds",
    "Verdict",
    "canonical_model",
    "classify",
    "comparable",
    "diff",
    "normalize",
    "upstream_parity",
]
