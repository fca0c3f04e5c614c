"""The client-contract gate: SDK regressions against legacy fail it, SDK gains do not."""

from __future__ import annotations

from typing import Any

from harness.observation import Observation, SseEvent
from harness.report.client_contract import (
    ERROR_VERBATIM,
    KEEPALIVE,
    MODELS_NO_WILDCARDS,
    contract_facts,
)
from harness.report.contract_gate import contract_gate
from harness.report.model import Status
from harness.report.tally import ContractPoint, Evidence
from tests.harness.builders import make_pair
from tests.harness.report.factories import RUN

ANTHROPIC_CALL = {"endpoint": "anthropic.messages", "status": 200, "request_id": "req_up"}


def _obs(
    target: str, status: int = 200, headers: dict[str, str] | None = None, **kw: Any
) -> Observation:
    return Observation(target, status, headers or {}, **kw)


def _evidence(*pairs: Any) -> Evidence:
    evidence = Evidence(RUN)
    for pair in pairs:
        for point, (sdk, legacy) in contract_facts(pair).items():
            evidence.contract.setdefault(point, ContractPoint()).add(
                sdk, legacy, pair.request.request_id
            )
    return evidence


def test_a_header_legacy_returned_and_the_sdk_dropped_fails_the_gate() -> None:
    legacy = _obs("legacy", headers={"request-id": "req_up"})
    sdk = _obs("sdk")
    upstream = {"sdk": [ANTHROPIC_CALL], "legacy": [ANTHROPIC_CALL]}
    pair = make_pair(sdk, legacy, endpoint="messages", upstream=upstream, request_id="p1")
    facts = contract_facts(pair)
    assert facts["header request-id"] == (False, True)
    gate = contract_gate(_evidence(pair))
    assert gate.status is Status.FAIL
    assert "header request-id" in gate.detail and "p1" in str(gate.checks)


def test_what_the_sdk_adds_is_sdk_better_not_a_failure() -> None:
    headers = {"anthropic-ratelimit-unified-status": "allowed", "request-id": "req_up"}
    upstream = {"sdk": [ANTHROPIC_CALL], "legacy": [ANTHROPIC_CALL]}
    pair = make_pair(_obs("sdk", headers=headers), _obs("legacy"), upstream=upstream)
    gate = contract_gate(_evidence(pair))
    assert gate.status is Status.PASS
    assert "SDK-better" in gate.detail
    assert gate.measured["header request-id"]["sdk_better"] == 1


def test_provider_errors_verbatim_and_re_wrapped() -> None:
    call = {"endpoint": "anthropic.messages", "status": 529, "request_id": "req_529"}
    verbatim = _obs("sdk", 529, body={"type": "error", "request_id": "req_529"})
    rewrapped = _obs("legacy", 503, body={"error": {"message": "overloaded"}})
    pair = make_pair(verbatim, rewrapped, upstream={"sdk": [call], "legacy": [call]})
    assert contract_facts(pair)[ERROR_VERBATIM] == (True, False)


def test_a_silent_gap_without_keep_alive_and_models_wildcards() -> None:
    quiet = (SseEvent("{}", "message_start", 0.0), SseEvent("{}", "message_stop", 20_000.0))
    pinged = (
        SseEvent("{}", "message_start", 0.0),
        *(SseEvent('{"type": "ping"}', "ping", t * 1000.0) for t in (10, 20)),
        SseEvent("{}", "message_stop", 21_000.0),
    )
    stream = make_pair(
        _obs("sdk", events=pinged), _obs("legacy", events=quiet), endpoint="messages"
    )
    assert contract_facts(stream)[KEEPALIVE] == (True, False)
    models = make_pair(
        _obs("sdk", body={"data": [{"id": "claude-sonnet-4.5"}]}),
        _obs("legacy", body={"data": [{"id": "claude-sonnet-4.5"}, {"id": "claude-*"}]}),
        endpoint="models",
    )
    assert contract_facts(models)[MODELS_NO_WILDCARDS] == (True, False)


def test_no_applicable_pair_passes_and_says_so() -> None:
    gate = contract_gate(_evidence())
    assert gate.status is Status.PASS
    assert "informational" in gate.detail
