"""Gates per client and connection: memory routing, cookie persistence, compatibility (pure).

Routing and cookies come from what the sandbox saw each proxy send upstream
(:mod:`harness.report.upstream_facts`); compatibility asks every configured client family
for enough compared pairs without a regression, and is never PASS for a family that sent
no traffic. Pairs where legacy failed outright and the SDK succeeded are not compared;
the gate lists them per family as an informational check.
"""

from __future__ import annotations

from harness.compare import Thresholds
from harness.report.checks import (
    NoiseBaseline,
    category_checks,
    combine,
    exact_categories,
    sdk_better_check,
)
from harness.report.cookie_tally import CookieTally
from harness.report.formatting import pct
from harness.report.model import Check, GateResult, Status
from harness.report.tally import DiffTally, Evidence
from harness.settings import HarnessSettings

__all__ = ["compatibility_gate", "cookie_gate", "routing_gate"]


def routing_gate(evidence: Evidence, settings: HarnessSettings) -> GateResult:
    min_samples = settings.report.min_samples
    listed = settings.report.families
    families = [*listed, *sorted(set(evidence.routing) - set(listed))]
    checks = []
    needs = 0
    for family in families:
        tally = evidence.routing.get(family)
        compared = tally.compared if tally else 0
        wrong = (tally.mismatched + tally.missing_user) if tally else 0
        status = Status.FAIL if wrong else Status.PASS
        detail = ""
        if tally and tally.examples:
            e = tally.examples[0]
            detail = f"{e.path}: sdk {e.sdk!r} vs legacy {e.legacy!r} ({e.pair_id})"
        # A lost or changed memory id is a fact, not a rate: it fails at any sample size.
        if compared < min_samples and not wrong:
            if family in listed:
                needs += min_samples - compared
                status = Status.INCONCLUSIVE
            else:
                detail = "informational (not a configured client family)"
        checks.append(
            Check(
                family,
                status,
                compared,
                f"{tally.mismatched if tally else 0} differ, "
                f"{tally.missing_user if tally else 0} without x-sm-user-id",
                "same x-sm-user-id and x-sm-conversation-id upstream from both proxies, "
                "Supermemory key on both or neither; any difference fails",
                detail,
            )
        )
    status = combine(checks)
    total = sum(c.samples for c in checks)
    failing = [c for c in checks if c.status is Status.FAIL]
    missing = [c.name for c in checks if c.status is Status.INCONCLUSIVE]
    detail = "; ".join(f"{c.name}: {c.measured}" for c in failing)
    if not detail and missing:
        detail = "too few pairs with upstream captures from both proxies: " + ", ".join(missing)
    return GateResult(
        "memory routing",
        status,
        total,
        {
            c.name: {
                "compared": c.samples,
                "mismatched": evidence.routing[c.name].mismatched,
                "missing_user_id": evidence.routing[c.name].missing_user,
            }
            if c.name in evidence.routing
            else {"compared": 0}
            for c in checks
        },
        f"every pair routed alike; >= {min_samples} pairs per client family",
        detail,
        needs=needs,
        checks=tuple(checks),
    )


def cookie_gate(evidence: Evidence, min_samples: int) -> GateResult:
    sdk = evidence.upstream_calls.get("sdk", CookieTally()).facts("sdk")
    legacy = evidence.upstream_calls.get("legacy", CookieTally()).facts("legacy")
    status = Status.FAIL if sdk.missed else Status.PASS
    detail = ""
    if sdk.missed:
        detail = f"{sdk.missed} SDK upstream calls came without the cookie: " + ", ".join(
            sdk.misses
        )
    if sdk.expected < min_samples:
        if sdk.missed:
            detail = "failing so far: " + detail
        elif not sdk.calls:
            detail = "no upstream captures from the SDK proxy (the sandbox records them)"
        status = Status.INCONCLUSIVE
    rate = sdk.carried / sdk.expected if sdk.expected else 0.0
    legacy_rate = legacy.carried / legacy.expected if legacy.expected else 0.0
    checks = (
        Check(
            "SDK proxy",
            status,
            sdk.expected,
            f"{sdk.carried} of {sdk.expected} calls carried it ({pct(rate)})",
            "100 % of calls after a cookie was set",
            detail,
        ),
        Check(
            "legacy proxy",
            Status.PASS,
            legacy.expected,
            f"{legacy.carried} of {legacy.expected} calls carried it ({pct(legacy_rate)})",
            "informational",
            "",
        ),
    )
    return GateResult(
        "cookie persistence",
        status,
        sdk.expected,
        {
            "sdk_calls": sdk.calls,
            "sdk_expected": sdk.expected,
            "sdk_carried": sdk.carried,
            "legacy_calls": legacy.calls,
            "legacy_expected": legacy.expected,
            "legacy_carried": legacy.carried,
        },
        f"the sandbox's cookie comes back on every later SDK upstream call; "
        f">= {min_samples} such calls",
        detail,
        needs=max(0, min_samples - sdk.expected),
        checks=checks,
    )


def compatibility_gate(
    evidence: Evidence, overall: DiffTally, thresholds: Thresholds, settings: HarnessSettings
) -> GateResult:
    min_samples = settings.report.min_samples
    baseline = NoiseBaseline(overall, overall, min_samples)
    checks = []
    needs = 0
    for family in settings.report.families:
        diffs = evidence.families.get(family, DiffTally())
        inner = category_checks(
            diffs, baseline, thresholds, min_samples, exact_categories(evidence)
        )
        status = combine(inner)
        failing = [c.name for c in inner if c.status is Status.FAIL or c.detail == "failing so far"]
        detail = ""
        if diffs.compared < min_samples:
            needs += min_samples - diffs.compared
            if not diffs.compared:
                detail = "no traffic"
            elif failing:
                detail = "failing so far: " + ", ".join(failing)
        elif failing:
            detail = "regressions: " + ", ".join(failing)
        checks.append(
            Check(
                family,
                status,
                diffs.compared,
                f"{diffs.compared} compared pairs",
                f">= {min_samples} compared pairs without a regression",
                detail,
            )
        )
    better = evidence.sdk_better
    if better.pairs:
        by_family = sorted(better.families.items(), key=lambda item: (-item[1], item[0]))
        checks.append(sdk_better_check(better.pairs, by_family, "from"))
    status = combine(checks)
    listed = set(settings.report.families)
    others = {f: n for f, n in sorted(evidence.family_pairs.items()) if f not in listed}
    failed = [f"{c.name} ({c.detail})" for c in checks if c.status is Status.FAIL]
    missing = [c.name for c in checks if c.status is Status.INCONCLUSIVE]
    detail = "; ".join(failed)
    if not detail and missing:
        detail = "not enough passing traffic from: " + ", ".join(missing)
    families = [c for c in checks if c.name in listed]
    return GateResult(
        "compatibility",
        status,
        sum(c.samples for c in families),
        {
            "families": {c.name: c.samples for c in families},
            "other_families": others,
            "sdk_better": dict(sorted(better.families.items())),
        },
        f"every configured client family has >= {min_samples} compared pairs without a regression",
        detail,
        needs=needs,
        checks=tuple(checks),
    )
