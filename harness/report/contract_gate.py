"""The client-contract gate: what Claude Code and the SDKs need of a gateway, pair by pair.

One check per contract point (:mod:`.client_contract`): the SDK missing what legacy gave
the client is a regression (FAIL); the SDK giving what legacy did not is listed as
SDK-better and never fails the gate. A run where no point applied to any pair (most
points need the sandbox's captures of the upstream calls, which a run against the real
provider has not) passes with that said: the gate has nothing to hold against the SDK,
and it must not hold a production cutover at INCONCLUSIVE for ever.
"""

from __future__ import annotations

from harness.report.checks import combine
from harness.report.model import Check, GateResult, Status
from harness.report.tally import Evidence

__all__ = ["contract_gate"]

NAME = "client contract"


def contract_gate(evidence: Evidence) -> GateResult:
    checks = []
    for point in sorted(evidence.contract):
        tally = evidence.contract[point]
        status = Status.FAIL if tally.regressions else Status.PASS
        detail = ""
        if tally.examples:
            detail = "e.g. " + ", ".join(tally.examples[:3])
        elif tally.sdk_better:
            detail = f"SDK-better: {tally.sdk_better} pairs where legacy missed it"
        checks.append(
            Check(
                point,
                status,
                tally.compared,
                f"{tally.regressions} SDK regressions, {tally.sdk_better} SDK-better",
                "the SDK keeps every point legacy kept",
                detail,
            )
        )
    samples = max((c.samples for c in checks), default=0)
    status = combine(checks)
    failing = [c.name for c in checks if c.status is Status.FAIL]
    better = [c.name for c in checks if evidence.contract[c.name].sdk_better]
    if failing:
        detail = "SDK drops what legacy returned: " + ", ".join(failing)
    elif not checks:
        detail = "informational: no pair to which a contract point applied"
    else:
        detail = ("SDK-better: " + ", ".join(better)) if better else ""
    return GateResult(
        NAME,
        status,
        samples,
        {
            point: {
                "compared": t.compared,
                "regressions": t.regressions,
                "sdk_better": t.sdk_better,
            }
            for point, t in sorted(evidence.contract.items())
        },
        "response headers, provider errors, keep-alive and /v1/models: "
        "no SDK regression against legacy",
        detail,
        checks=tuple(checks),
    )
