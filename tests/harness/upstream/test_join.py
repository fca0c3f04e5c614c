from __future__ import annotations

from typing import Any

from harness.observation import correlation_key, last_user_text
from harness.upstream.join import attach_upstream, split_repeat


def test_last_user_text_in_both_formats() -> None:
    openai_body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        ]
    }
    anthropic_body = {
        "system": "be brief",
        "messages": [{"role": "user", "content": "What is 2+2?"}],
    }
    assert last_user_text(openai_body) == last_user_text(anthropic_body) == "What is 2+2?"
    tool_openai = {"messages": [{"role": "tool", "tool_call_id": "c", "content": "4"}]}
    tool_anthropic = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "text", "text": "4"}],
                    }
                ],
            }
        ]
    }
    assert last_user_text(tool_openai) == last_user_text(tool_anthropic) == "4"
    assert last_user_text({"messages": "x"}) == "" and last_user_text(None) == ""
    assert correlation_key({"messages": []}, False) is None


def capture(
    seq: int, t: float, text: str, status: int = 200, user: str | None = "u"
) -> dict[str, Any]:
    return {
        "seq": seq,
        "time": t,
        "status": status,
        "method": "POST",
        "headers": {"x-sm-user-id": user} if user is not None else {},
        "body": {"messages": [{"role": "user", "content": text}]},
    }


def key_of(text: str) -> str | None:
    return correlation_key({"messages": [{"role": "user", "content": text}]}, False)


def test_retries_and_duplicates_go_with_their_request_identical_requests_get_their_own() -> None:
    key, other = key_of("hi"), key_of("bye")
    captures = {
        "sdk": [
            capture(1, 100.0, "hi", 429),
            capture(2, 100.2, "hi"),
            capture(3, 101.0, "hi"),
            capture(4, 100.1, "bye"),
        ],
        "legacy": [capture(1, 100.05, "hi"), capture(2, 101.05, "hi"), capture(3, 101.06, "hi")],
    }
    pairs = [
        (10, key, 100.0, 0.5),
        (11, key, 101.0, 0.5),
        (12, other, 100.1, 0.2),
        (13, None, 100.0, 0.1),
    ]
    attached = attach_upstream(pairs, captures)
    result = attached.calls
    assert [c["seq"] for c in result[10]["sdk"]] == [1, 2]  # the 429 and its retry
    assert [c["seq"] for c in result[11]["sdk"]] == [3]
    assert [c["seq"] for c in result[10]["legacy"]] == [1]
    # legacy sent request 11's call twice: both stay with 11, for the count gate to judge.
    assert [c["seq"] for c in result[11]["legacy"]] == [2, 3]
    assert [c["seq"] for c in result[12]["sdk"]] == [4] and result[12]["legacy"] == []
    assert result[13] == {"sdk": [], "legacy": []}
    assert attached.unattached == {"sdk": [], "legacy": []}


def test_matching_never_reads_the_memory_headers() -> None:
    """A proxy that loses x-sm-user-id, or sends another one, still has its calls found."""
    captures = {"sdk": [capture(1, 100.0, "hi", user=None)], "legacy": [capture(1, 100.0, "hi")]}
    wrong = {"sdk": [capture(1, 100.0, "hi", user="someone-else")]}
    assert [
        c["seq"] for c in attach_upstream([(1, key_of("hi"), 99.9, 1.0)], captures).calls[1]["sdk"]
    ] == [1]
    assert attach_upstream([(1, key_of("hi"), 99.9, 1.0)], wrong).calls[1]["sdk"][0]["seq"] == 1


def test_calls_no_request_claims_are_kept_as_unattached_never_dropped() -> None:
    captures = {
        "sdk": [
            capture(1, 200.0, "hi"),  # outside the request's window
            capture(2, 100.5, "nobody asked"),  # no request has this content
            {**capture(3, 100.5, "hi"), "method": "GET"},  # a server's own model list
        ]
    }
    attached = attach_upstream([(1, key_of("hi"), 100.0, 1.0)], captures)
    assert attached.calls[1]["sdk"] == []
    assert [c["seq"] for c in attached.unattached["sdk"]] == [2, 1]


def test_a_request_that_did_not_reach_the_provider_gets_no_call() -> None:
    """The second, identical request was refused by the proxy (no provider call): the
    first request's duplicate, sent before it arrived, is not handed to it."""
    captures = {"sdk": [capture(1, 100.0, "hi"), capture(2, 100.3, "hi")]}
    attached = attach_upstream(
        [(1, key_of("hi"), 99.9, 0.5), (2, key_of("hi"), 100.4, 0.1)], captures
    )
    assert [c["seq"] for c in attached.calls[1]["sdk"]] == [1, 2]
    assert attached.calls[2]["sdk"] == []


def test_the_a_a_repeat_s_calls_are_set_apart_from_the_mirror_s() -> None:
    mirror_retry, mirror, repeat = (
        capture(1, 1.0, "hi", 429),
        capture(2, 1.1, "hi"),
        capture(3, 2.0, "hi"),
    )
    assert split_repeat([mirror_retry, mirror, repeat]) == ([mirror_retry, mirror], [repeat])
    assert split_repeat([mirror]) == ([mirror], [])
    # The repeat's own retry goes with it.
    repeat_retry = capture(3, 2.0, "hi", 503)
    final = capture(4, 2.1, "hi")
    assert split_repeat([mirror, repeat_retry, final]) == ([mirror], [repeat_retry, final])
