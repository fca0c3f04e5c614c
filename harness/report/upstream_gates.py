"""Gates on what each proxy sent the provider (pure).

* **provider calls accounted**: every provider call the harness saw belongs to a client
  request. A call no request claimed (:mod:`harness.upstream.join`, the replay
  upstream's misses) is counted per side; any fails the gate, since the gates below
  cannot judge a call they never see.
* **provider calls per request**: each side made as many calls for a request as the
  other, once the retries each side's recorded statuses explain are set aside
  (:func:`harness.compare.upstream.answered_calls`). A duplicate or a missing call fails.
* **upstream request parity**: what each side sent, call by call (body leaf by leaf,
  memory headers, ``anthropic-*`` headers, the Supermemory key's presence,
  :func:`harness.compare.upstream.upstream_parity`). A field the SDK side drops or
  changes fails, named by its path.

A duplicate, a lost call or a dropped field is a fact, not a rate: one fails the gate
whatever the sample size. Only a gate with nothing wrong and too few samples is
INCONCLUSIVE.
"""

from __future__ import annotations

from harness.report.model import Check, GateResult, Status
from harness.report.tally import Evidence

__all__ = ["accounted_gate", "calls_per_request_gate", "request_parity_gate"]

_SIDES = ("sdk", "legacy")


def accounted_gate(evidence: Evidence) -> GateResult:
    calls = evidence.provider_calls
    sides = [*_SIDES, *sorted(set(calls.unattached) - set(_SIDES))]
    checks = [
        Check(
            side,
            Status.FAIL if calls.unattached[side] else Status.PASS,
            calls.unattached[side],
            f"{calls.unattached[side]} provider calls no client request claimed",
            "0 unattached calls",
            "",
        )
        for side in sides
    ]
    # Replay misses never reached the provider. The SDK side's (legacy the primary) are
    # calls legacy did not make, which the provider gets once the SDK proxy serves: they
    # fail. Legacy's (the SDK the primary) are calls the SDK proxy did not make, which
    # its answer shows (a request refused before any call, another endpoint): the pair
    # is judged on that answer, and an SDK success without any provider call fails
    # "provider calls per request".
    sdk_misses = calls.replay_misses["sdk"]
    for side in sorted(calls.replay_misses):
        missed = calls.replay_misses[side]
        checks.append(
            Check(
                f"{side} replay misses",
                Status.FAIL if side == "sdk" else Status.PASS,
                missed,
                f"{missed} calls the primary did not make (answered 502, never forwarded)",
                "SDK side: 0; legacy side: informational",
                ", ".join(
                    f"{where.split(': ', 1)[1]} x{count}"
                    for where, count in sorted(calls.miss_paths.items())
                    if where.startswith(f"{side}: ")
                ),
            )
        )
    total = sum(calls.unattached.values())
    misses = sum(calls.replay_misses.values())
    seen = total + misses + sum(len(found) for found in evidence.upstream_calls.values())
    status = Status.FAIL if total or sdk_misses else Status.PASS
    parts = []
    if total:
        parts.append(
            ", ".join(
                f"{side}: {calls.unattached[side]}" for side in sides if calls.unattached[side]
            )
            + " unattached; e.g. "
            + "; ".join(calls.unattached_examples)
        )
    parts.extend(
        f"{check.name}: {check.samples} ({check.detail})" for check in checks[len(sides) :]
    )
    measured: dict[str, object] = {"unattached": dict(sorted(calls.unattached.items()))}
    if misses:
        measured["replay_misses"] = dict(sorted(calls.replay_misses.items()))
    return GateResult(
        "provider calls accounted",
        status,
        seen,
        measured,
        "every provider call belongs to a client request",
        "; ".join(parts),
        checks=tuple(checks),
    )


def calls_per_request_gate(evidence: Evidence, min_samples: int) -> GateResult:
    calls = evidence.provider_calls
    status = Status.FAIL if calls.count_mismatched else Status.PASS
    detail = "; ".join(
        f"{e.pair_id}: sdk {e.sdk} vs legacy {e.legacy} ({e.detail})" for e in calls.count_examples
    )
    needs = 0
    if not calls.count_mismatched and calls.counted < min_samples:
        status = Status.INCONCLUSIVE
        needs = min_samples - calls.counted
        detail = "too few pairs with both sides' provider calls known"
    return GateResult(
        "provider calls per request",
        status,
        calls.counted,
        {"compared": calls.counted, "mismatched": calls.count_mismatched},
        "each side makes as many provider calls per request as the other, "
        "after the retries its recorded statuses explain",
        detail,
        needs=needs,
    )


def request_parity_gate(evidence: Evidence, min_samples: int) -> GateResult:
    calls = evidence.provider_calls
    fields = sorted(calls.parity_fields.items(), key=lambda item: (-item[1], item[0]))
    checks = tuple(
        Check(
            field,
            Status.FAIL,
            calls.parity_compared,
            f"{count} pairs differ",
            "0 differences",
            "; ".join(
                f"{e.path}: sdk {e.sdk!r} vs legacy {e.legacy!r} ({e.pair_id})"
                for e in calls.parity_examples.get(field, [])[:2]
            ),
        )
        for field, count in fields
    )
    status = Status.FAIL if fields else Status.PASS
    detail = "; ".join(f"{c.name} ({c.measured})" for c in checks)
    needs = 0
    if not fields and calls.parity_compared < min_samples:
        status = Status.INCONCLUSIVE
        needs = min_samples - calls.parity_compared
        detail = "too few pairs with both sides' provider calls captured"
    return GateResult(
        "upstream request parity",
        status,
        calls.parity_compared,
        {
            "compared": calls.parity_compared,
            "differing": calls.parity_differing,
            "fields": dict(fields),
        },
        "the SDK side sends the provider what legacy sends: body, memory and anthropic-* "
        "headers, the Supermemory key's presence",
        detail,
        needs=needs,
        checks=checks,
    )
