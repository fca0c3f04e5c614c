"""Memory routing and cookie persistence, read from what the sandbox captured upstream."""

from __future__ import annotations

from typing import Any

from harness.observation import Observation
from harness.report.tally import ProviderCallTally
from harness.report.upstream_facts import (
    call_count_difference,
    cookie_persistence,
    count_unattached,
    routing_difference,
    uncalled_success,
    upstream_calls,
)
from harness.upstream.records import REPLAY_MISS


def _call(seq: int, at: float | None, *, valid: bool, issued: bool, **extra: Any) -> dict:
    return {
        "seq": seq,
        "time": at,
        "duration_ms": 100.0,
        "cookie_valid": valid,
        "cookie_issued": issued,
        "cookies": ["__cf_bm"] if valid else [],
        "headers": {"x-sm-user-id": "u1", "x-sm-conversation-id": "c1"},
        **extra,
    }


def test_calls_racing_the_first_answer_are_not_held_against_the_proxy() -> None:
    calls = [
        _call(1, 10.0, valid=False, issued=True),  # answered at 10.1 with a cookie
        _call(2, 10.05, valid=False, issued=True),  # sent before that answer: excused
        _call(3, 10.2, valid=True, issued=False),  # still within the race window
        _call(4, 11.0, valid=True, issued=False),
    ]
    facts = cookie_persistence("sdk", upstream_calls("r", calls))
    assert (facts.calls, facts.expected, facts.carried, facts.missed) == (4, 1, 1, 0)


def test_calls_built_before_the_cookie_arrived_may_reach_the_provider_after_it() -> None:
    # As in the demo's replay: four requests at once; the first answer sets the cookie,
    # the next call carries it, and three built before that land a few ms later.
    calls = [
        _call(1, 10.000, valid=False, issued=True, duration_ms=40.0),
        _call(2, 10.052, valid=True, issued=False),
        _call(3, 10.053, valid=False, issued=True),
        _call(4, 10.056, valid=False, issued=True),
        _call(5, 10.300, valid=True, issued=False),
        _call(6, 10.600, valid=False, issued=True),  # long after: a real miss
    ]
    facts = cookie_persistence("sdk", upstream_calls("r", calls))
    assert (facts.expected, facts.carried, facts.missed) == (2, 1, 1)


def test_a_call_without_the_cookie_after_one_was_set_is_a_miss() -> None:
    calls = [
        _call(1, 10.0, valid=False, issued=True),
        _call(2, 11.0, valid=True, issued=False),
        _call(3, 12.0, valid=False, issued=True),
    ]
    facts = cookie_persistence("sdk", upstream_calls("req-9", calls))
    assert (facts.expected, facts.carried, facts.misses) == (2, 1, ("req-9",))


def test_a_stale_cookie_still_counts_as_carried() -> None:
    # The sandbox was reset: the cookie is no longer valid, but the proxy did send it.
    call = _call(2, 11.0, valid=False, issued=True, cookies=["__cf_bm", "other"])
    facts = cookie_persistence(
        "sdk", upstream_calls("r", [_call(1, 10.0, valid=False, issued=True), call])
    )
    assert facts.missed == 0 and facts.expected == 1


def test_without_timings_the_order_decides() -> None:
    calls = [_call(i, None, valid=i > 1, issued=i == 1) for i in range(1, 5)]
    facts = cookie_persistence("sdk", upstream_calls("r", calls))
    assert (facts.expected, facts.carried) == (3, 3)


def test_routing_difference() -> None:
    sdk = [{"headers": {"X-SM-User-Id": "alice", "x-sm-conversation-id": "c"}}]
    legacy = [{"headers": {"x-sm-user-id": "default-dev", "x-sm-conversation-id": "c"}}]
    example, missing = routing_difference("req-1", sdk, legacy)
    assert example is not None and not missing
    assert (example.path, example.sdk, example.legacy) == (
        "upstream[0].headers.x-sm-user-id",
        "alice",
        "default-dev",
    )
    assert routing_difference("req-1", sdk, sdk) == (None, False)
    example, missing = routing_difference("req-1", [{"headers": {}}], [{"headers": {}}])
    assert example is None and missing


def test_routing_judges_the_sdk_side_s_losses_only() -> None:
    with_all = {
        "headers": {"x-sm-user-id": "u", "x-sm-conversation-id": "c"},
        "credentials": {"x-supermemory-api-key": {"present": True}},
    }
    bare: dict[str, Any] = {"headers": {}, "credentials": {}}
    # The LiteLLM server sends no memory headers on count_tokens: the SDK loses nothing.
    assert routing_difference("r", [with_all], [bare]) == (None, False)
    example, missing = routing_difference("r", [bare], [with_all])
    assert missing and example is not None and example.sdk == "<missing>"
    # The Supermemory key: present or absent, never its value.
    no_key = {**with_all, "credentials": {"x-supermemory-api-key": {"present": False}}}
    example, _ = routing_difference("r", [no_key], [with_all])
    assert example is not None
    assert (example.path, example.sdk, example.legacy) == (
        "upstream[0].headers.x-supermemory-api-key",
        "<missing>",
        "<present>",
    )
    # A retry the recorded status explains is not compared: the answered call is.
    limited = {**bare, "status": 429}
    assert routing_difference("r", [limited, {**with_all, "status": 200}], [with_all]) == (
        None,
        False,
    )


def test_calls_per_request_after_explained_retries() -> None:
    ok, limited, overloaded = {"status": 200}, {"status": 429}, {"status": 529}
    assert call_count_difference("r", [limited, overloaded, ok], [ok]) is None
    assert call_count_difference("r", [{"status": None}, ok], [ok]) is None  # no answer at all
    twice = call_count_difference("r", [ok, ok], [ok])
    assert twice is not None and twice.detail == "the SDK side made 1 more provider call"
    assert twice.sdk == "2 answered of 2 calls (200, 200)"
    lost = call_count_difference("r", [], [ok])
    assert lost is not None and lost.detail == "the SDK side made 1 fewer provider call"
    # A 400 is an answer, not a reason to retry: a second call after it is a duplicate.
    assert call_count_difference("r", [{"status": 400}, {"status": 400}], [{"status": 400}])


def test_an_sdk_success_set_apart_without_any_provider_call_fails_calls_per_request() -> None:
    """Under replay, legacy fails (the replay upstream's 502) wherever it calls and the
    SDK did not, and such pairs are set apart, not compared: an SDK proxy that made an
    answer up without the model would hide there, but for this check."""
    from harness.compare import Comparator
    from harness.report.collect import EvidenceCollector
    from tests.harness.builders import chat_observation, make_pair
    from tests.harness.report.factories import RUN

    miss = Observation("legacy", 502, {}, body={"error": {"type": "api_error"}})
    called = {"status": 200, "method": "POST", "path": "/v1/chat/completions"}

    def collect(*pairs: Any) -> Any:
        collector = EvidenceCollector(Comparator(), RUN)
        for pair in pairs:
            collector.add(pair)
        return collector.evidence.provider_calls

    made_up = make_pair(
        chat_observation(), miss, request_id="made-up", upstream={"sdk": [], "legacy": []}
    )
    honest = make_pair(
        chat_observation(), miss, request_id="honest", upstream={"sdk": [called], "legacy": []}
    )
    calls = collect(made_up, honest)
    assert (calls.counted, calls.count_mismatched) == (1, 1)
    (example,) = calls.count_examples
    assert example.pair_id == "made-up"
    assert example.detail == "the SDK side answered 200 without any provider call"
    # A refusal before any call is no made-up answer; a count_tokens estimate is local.
    refused = Observation("sdk", 400, {}, body={"error": {"type": "invalid_request_error"}})
    local = make_pair(chat_observation(), miss, endpoint="count_tokens", upstream={"sdk": []})
    calls = collect(make_pair(refused, miss, upstream={"sdk": []}), local)
    assert calls.counted == calls.count_mismatched == 0
    assert uncalled_success("r", "messages", 200, []) is not None
    assert uncalled_success("r", "messages", 200, [called]) is None


def test_replay_misses_are_counted_apart_from_unattached_calls() -> None:
    calls = ProviderCallTally()
    count_unattached(calls, "legacy", {"method": "POST", "path": "/v1/responses", REPLAY_MISS: 1})
    count_unattached(calls, "legacy", {"method": "POST", "path": "/v1/responses", REPLAY_MISS: 1})
    count_unattached(calls, "sdk", {"method": "POST", "path": "/v1/messages", "status": 200})
    assert calls.replay_misses == {"legacy": 2}
    assert calls.miss_paths == {"legacy: POST /v1/responses": 2}
    assert calls.unattached == {"sdk": 1}
    assert calls.unattached_examples == ["sdk: POST /v1/messages (200)"]
