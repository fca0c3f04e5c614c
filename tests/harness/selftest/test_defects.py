"""The catalogue's mutations, pure: each changes what it says and nothing else."""

from __future__ import annotations

import json

import pytest

from harness.selftest.defects import (
    CATALOGUE,
    WRONG_USER,
    answer_delay,
    defect_named,
    first_token_delay,
    mutate_answer_body,
    mutate_answer_events,
    mutate_answer_head,
    mutate_request,
)

HEADERS = [("x-sm-user-id", "u"), ("x-sm-conversation-id", "c"), ("cookie", "__cf_bm=t")]
BODY = json.dumps(
    {
        "model": "claude-sonnet-4-5",
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
    }
).encode()


def test_names_are_unique_and_every_defect_names_its_gate() -> None:
    assert len({d.name for d in CATALOGUE}) == len(CATALOGUE)
    assert all(d.gate and d.place in ("request", "answer") for d in CATALOGUE)
    assert defect_named(None) is None
    with pytest.raises(KeyError):
        defect_named("no such defect")


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("drop x-sm-user-id", lambda h, b: "x-sm-user-id" not in dict(h)),
        ("wrong user id", lambda h, b: dict(h)["x-sm-user-id"] == WRONG_USER),
        ("drop conversation id", lambda h, b: "x-sm-conversation-id" not in dict(h)),
        ("drop cookie", lambda h, b: "cookie" not in dict(h)),
        ("wrong model", lambda h, b: json.loads(b)["model"] != "claude-sonnet-4-5"),
        ("strip cache_control", lambda h, b: "cache_control" not in b.decode()),
    ],
)
def test_request_defects(name: str, check: object) -> None:
    ((headers, body),) = mutate_request(defect_named(name), HEADERS, BODY)
    assert check(headers, body)  # type: ignore[operator]
    assert json.loads(body)["messages"] == json.loads(BODY)["messages"]


def test_the_duplicate_and_the_control() -> None:
    assert mutate_request(defect_named("send each call twice"), HEADERS, BODY) == [
        (HEADERS, BODY),
        (HEADERS, BODY),
    ]
    assert mutate_request(None, HEADERS, BODY) == [(HEADERS, BODY)]
    # An answer defect leaves the request alone.
    assert mutate_request(defect_named("drop cookie"), HEADERS, BODY) != [(HEADERS, BODY)]
    assert mutate_request(defect_named("change usage numbers"), HEADERS, BODY) == [(HEADERS, BODY)]


def test_answer_defects_on_a_whole_body() -> None:
    answer = {
        "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "name": "w", "input": {"city": "Paris"}}],
        "usage": {"input_tokens": 3, "output_tokens": 5},
    }
    raw = json.dumps(answer).encode()
    finish = json.loads(mutate_answer_body(defect_named("change finish reason"), 200, raw))
    assert finish["stop_reason"] != "tool_use" and finish["content"] == answer["content"]
    tool = json.loads(mutate_answer_body(defect_named("change a tool argument"), 200, raw))
    assert tool["content"][0]["input"] != {"city": "Paris"}
    usage = json.loads(mutate_answer_body(defect_named("change usage numbers"), 200, raw))
    assert usage["usage"] == {"input_tokens": 10, "output_tokens": 12}
    error = json.dumps({"type": "error", "error": {"type": "not_found_error"}}).encode()
    defect = defect_named("change error type and status")
    assert mutate_answer_head(defect, 404, [], error)[0] == 500
    assert json.loads(mutate_answer_body(defect, 404, error))["error"]["type"] == "api_error"
    assert mutate_answer_head(defect, 200, [], raw)[0] == 200  # only errors change
    dropped = mutate_answer_head(
        defect_named("drop a response header"), 200, [("request-id", "r")], raw
    )
    assert dropped == (200, [])


def test_answer_defects_on_a_stream() -> None:
    events = [
        b'event: message_start\ndata: {"type":"message_start"}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        b'"usage":{"output_tokens":5}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    assert mutate_answer_events(defect_named("drop final stream event"), events) == events[:2]
    assert mutate_answer_events(defect_named("cut a stream mid-way"), events) == events[:1]
    changed = mutate_answer_events(defect_named("change finish reason"), events)
    assert b"end_turn" not in changed[1] and b"max_tokens" in changed[1]
    assert (
        b'"output_tokens": 12'
        in mutate_answer_events(defect_named("change usage numbers"), events)[1]
    )


def test_latency_defects_hold_what_they_say_and_nothing_else() -> None:
    per_call = defect_named("+3 ms latency on every call")
    ttft = defect_named("+20 % TTFT on streams")
    assert answer_delay(per_call) == 0.003
    assert first_token_delay(per_call, 0.5) == 0.0
    assert first_token_delay(ttft, 0.5) == pytest.approx(0.1)
    assert answer_delay(ttft) == 0.0
    for other in (None, defect_named("drop cookie"), defect_named("change usage numbers")):
        assert answer_delay(other) == 0.0 and first_token_delay(other, 0.5) == 0.0
    # Their edits are only of time: headers, bodies and events pass unchanged.
    events = [b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    for defect in (per_call, ttft):
        assert mutate_request(defect, HEADERS, BODY) == [(HEADERS, BODY)]
        assert mutate_answer_events(defect, events) == events
        assert mutate_answer_body(defect, 200, BODY) == BODY


def test_a_latency_defect_is_named_by_its_check_on_any_slice() -> None:
    per_call = defect_named("+3 ms latency on every call")
    ttft = defect_named("+20 % TTFT on streams")
    assert per_call is not None and ttft is not None
    assert per_call.named_by("latency: messages non-stream", ("p50",))
    assert per_call.named_by("latency: chat stream", ("p50", "TTFT p50"))
    assert not per_call.named_by("latency: messages stream", ("p95",))
    assert ttft.named_by("latency: messages stream", ("TTFT p50",))
    assert not ttft.named_by("latency: messages stream", ("p50",))
    assert not ttft.named_by("latency floor", ("TTFT p50",))  # a gate family, not a prefix
    cookie = defect_named("drop cookie")
    assert cookie is not None and cookie.named_by("cookie persistence", ())
    assert not cookie.named_by("memory routing", ())
