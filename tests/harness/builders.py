"""Building observations and pairs for the SSE, store and comparator tests.

Bodies and streams come from the sandbox's own renderers, so the tests compare what a
provider really sends, not hand-written approximations.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.observation import CapturedPair, CapturedRequest, Observation, SseEvent
from harness.sandbox.anthropic_api import message_body, message_events
from harness.sandbox.openai_api import completion_body, completion_events
from harness.sandbox.replies import Reply, ToolCall
from harness.sse import decode_sse

__all__ = [
    "UPSTREAM_ID",
    "chat_observation",
    "make_pair",
    "messages_observation",
    "reply",
    "stream_bytes",
]

UPSTREAM_ID = "claude-sonnet-4-5-20250929"
TEXT = "the sandbox answers every request with a short reply built from plain words"


def reply(
    text: str = TEXT,
    *,
    tool: tuple[str, dict[str, Any]] | None = None,
    token: str = "A1b2C3",
    stop: str | None = None,
    output_tokens: int = 14,
) -> Reply:
    call = ToolCall(f"t{token}", tool[0], tool[1]) if tool else None
    stop_reason = stop or ("tool_use" if tool else "end_turn")
    return Reply(token, 1_700_000_000, "" if tool else text, call, stop_reason, 21, output_tokens)


def stream_bytes(rendered: list[Any]) -> bytes:
    """The sandbox's events as the wire bytes it sends."""
    return b"".join(event.encode() for event in rendered)


def _events(rendered: list[Any]) -> tuple[SseEvent, ...]:
    # Each event arrives 10 ms after the previous one; the decoder stamps the chunk time.
    decoded = decode_sse([stream_bytes(rendered)])
    return tuple(replace(e, offset_ms=10.0 * i) for i, e in enumerate(decoded))


def chat_observation(
    planned: Reply | None = None,
    *,
    target: str = "sdk",
    model: str = UPSTREAM_ID,
    stream: bool = False,
    include_usage: bool = True,
) -> Observation:
    planned = planned or reply()
    body: dict[str, Any] = {"model": model}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if stream:
        events = _events(completion_events(planned, body))
        headers = {"content-type": "text/event-stream; charset=utf-8"}
        return Observation(target, 200, headers, events=events)
    return Observation(
        target, 200, {"content-type": "application/json"}, body=completion_body(planned, body)
    )


def messages_observation(
    planned: Reply | None = None,
    *,
    target: str = "sdk",
    model: str = UPSTREAM_ID,
    stream: bool = False,
) -> Observation:
    planned = planned or reply()
    body = {"model": model}
    if stream:
        events = _events(message_events(planned, body))
        return Observation(target, 200, {"content-type": "text/event-stream"}, events=events)
    return Observation(
        target, 200, {"content-type": "application/json"}, body=message_body(planned, body)
    )


def make_pair(
    primary: Observation,
    shadow: Observation | None,
    *,
    endpoint: str = "chat",
    stream: bool = False,
    request_id: str = "req-1",
    repeat: Observation | None = None,
    upstream: dict[str, list[dict[str, Any]]] | None = None,
    request_body: Any = None,
    headers: dict[str, str] | None = None,
) -> CapturedPair:
    request = CapturedRequest(
        request_id=request_id,
        received_at=1_700_000_000.5,
        method="POST",
        path="/v1/chat/completions" if endpoint == "chat" else "/v1/messages",
        endpoint=endpoint,
        model="claude-sonnet-4.5",
        stream=stream,
        user_id="claude-code",
        conversation_id="conv-1",
        client_family="claude-code",
        headers=headers or {"user-agent": "claude-cli/2.1.332 (external, cli)"},
        body=request_body,
    )
    return CapturedPair(request, primary, shadow, repeat, upstream=upstream or {})
