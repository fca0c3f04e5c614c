"""Drafting an accept rule from what the report shows: a gate and a path, or a pair (pure).

The draft is a YAML mapping as ``compare.accept`` holds it; :func:`harness.compare.accept.
parse_rules` checks it (and refuses one that would hide an SDK outage) before anything
is written.
"""

from __future__ import annotations

import re
from typing import Any

from harness.compare import Verdict
from harness.compare.accept import parse_rules
from harness.errors import HarnessError
from harness.observation import CapturedPair

__all__ = ["RuleDraftError", "rule_from_gate", "rule_from_pair"]

_INDEX = re.compile(r"\[\d+\]")
# Gates whose rows are one endpoint's: "parity: chat" -> chat.
_PARITY = re.compile(r"^parity: (?P<endpoint>\S+)$")


class RuleDraftError(HarnessError):
    """The rule cannot be drafted (or would be refused): the message says why."""


def _extras(reason: str, owner: str | None, expires: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"reason": reason}
    if owner:
        out["owner"] = owner
    if expires:
        out["expires"] = expires
    return out


def _checked(rule: dict[str, Any]) -> dict[str, Any]:
    try:
        parse_rules([rule], "the new rule")
    except ValueError as exc:
        raise RuleDraftError(str(exc)) from None
    return rule


def rule_from_gate(
    name: str,
    gate: str,
    path: str,
    reason: str,
    *,
    category: str | None = None,
    owner: str | None = None,
    expires: str | None = None,
) -> dict[str, Any]:
    """A rule for the differences at ``path`` that ``gate`` counts (a parity gate names
    its endpoint; other gates span endpoints)."""
    rule: dict[str, Any] = {"name": name}
    match = _PARITY.match(gate.strip())
    if match:
        rule["endpoint"] = match["endpoint"]
    rule["path"] = path
    if category:
        rule["category"] = category
    return _checked(rule | _extras(reason, owner, expires))


def rule_from_pair(
    name: str,
    pair: CapturedPair,
    verdict: Verdict,
    reason: str,
    *,
    sdk_failed: bool,
    owner: str | None = None,
    expires: str | None = None,
) -> dict[str, Any]:
    """A rule for what differs in this pair: its endpoint, its status pair when the
    statuses differ, and its differences' paths (list indices generalized)."""
    if sdk_failed:
        raise RuleDraftError(
            f"refused: in pair {pair.request.request_id} the SDK failed where legacy "
            "succeeded (5xx, 408, 429, no answer or a cut stream); no rule may hide that"
        )
    if not verdict.differences:
        raise RuleDraftError(
            f"pair {pair.request.request_id} has no difference left to accept"
            + (f" ({verdict.skipped})" if verdict.skipped else "")
        )
    rule: dict[str, Any] = {"name": name, "endpoint": pair.request.endpoint}
    sdk, legacy = pair.sdk, pair.legacy
    if sdk is not None and legacy is not None and sdk.status != legacy.status:
        if sdk.status is None or legacy.status is None:
            raise RuleDraftError("a side without an HTTP status cannot be matched by status")
        rule["status"] = {"sdk": sdk.status, "legacy": legacy.status}
    paths = sorted({_INDEX.sub("[*]", d.path) for d in verdict.differences})
    rule["path"] = paths[0] if len(paths) == 1 else paths
    return _checked(rule | _extras(reason, owner, expires))
