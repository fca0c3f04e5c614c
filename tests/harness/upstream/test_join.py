from __future__ import annotations

from typing import Any

from harness.observation import correlation_key, last_user_text
from harness.upstream.join import attach_upstream


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
    assert correlation_key("u", {"messages": []}, False) is None


def capture(seq: int, t: float, text: str, status: int = 200, user: str = "u") -> dict[str, Any]:
    return {
        "seq": seq,
        "time": t,
        "status": status,
        "headers": {"x-sm-user-id": user},
        "body": {"messages": [{"role": "user", "content": text}]},
    }


def test_retries_go_with_their_request_and_duplicates_get_their_own() -> None:
    key = correlation_key("u", {"messages": [{"role": "user", "content": "hi"}]}, False)
    other = correlation_key("u", {"messages": [{"role": "user", "content": "bye"}]}, False)
    captures = {
        "sdk": [
            capture(1, 100.0, "hi", 429),
            capture(2, 100.2, "hi"),
            capture(3, 101.0, "hi"),
            capture(4, 100.1, "bye"),
        ],
        "legacy": [capture(1, 100.05, "hi"), capture(2, 101.05, "hi")],
    }
    pairs = [
        (10, key, 100.0, 0.5),
        (11, key, 101.0, 0.5),
        (12, other, 100.1, 0.2),
        (13, None, 100.0, 0.1),
    ]
    result = attach_upstream(pairs, captures)
    assert [c["seq"] for c in result[10]["sdk"]] == [1, 2]  # the 429 and its retry
    assert [c["seq"] for c in result[11]["sdk"]] == [3]
    assert [c["seq"] for c in result[10]["legacy"]] == [1]
    assert [c["seq"] for c in result[11]["legacy"]] == [2]
    assert [c["seq"] for c in result[12]["sdk"]] == [4] and result[12]["legacy"] == []
    assert 13 not in result


def test_calls_outside_the_window_are_not_claimed() -> None:
    key = correlation_key("u", {"messages": [{"role": "user", "content": "hi"}]}, False)
    result = attach_upstream([(1, key, 100.0, 1.0)], {"sdk": [capture(1, 200.0, "hi")]})
    assert result[1]["sdk"] == []
