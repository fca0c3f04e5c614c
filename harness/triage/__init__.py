"""Triage: from a difference in the report to a decision about it.

``harness show PAIR_ID`` prints one captured pair the way the report's drill-down shows
it (:mod:`harness.report.pair_view`); ``harness accept`` writes an accepted-difference
rule into ``harness.yaml`` (:mod:`.draft` builds it, the cutover's comment-keeping editor
writes it).
"""

from __future__ import annotations

from harness.triage.draft import RuleDraftError, rule_from_gate, rule_from_pair

__all__ = ["RuleDraftError", "rule_from_gate", "rule_from_pair"]
