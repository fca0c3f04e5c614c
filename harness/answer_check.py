"""Is a successful answer a success in substance? Pure checks shared by replay and Locust.

A 200 is not enough: a chat completion needs a choice with content or tool calls, a
Message needs non-empty content blocks and a stop reason, a stream must end with its
format's terminator (``data: [DONE]``, ``message_stop``) and carry no error event. Each
check returns an :class:`AnswerCheck`: the first problem found (None when fine), the
output tokens the answer reports (for Locust's response length) and, for streams, the
time to the first generated token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.observation import SseEvent
from harness.sse import assemble, decode_sse, first_token_offset
from memory_proxy.api_formats import FormatName

__all__ = ["AnswerCheck", "check_body", "check_json", "check_stream"]


@dataclass(frozen=True)
class AnswerCheck:
    problem: str | None = None
    output_tokens: int = 0
    ttft_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_body(
    endpoint: str, fmt: FormatName, stream: bool, content_type: str, body: bytes
) -> AnswerCheck:
    """Check a whole 2xx answer as received (JSON or SSE bytes)."""
    is_sse = "text/event-stream" in content_type.lower()
    if stream and not is_sse:
        return AnswerCheck(f"expected an SSE stream, got content-type {content_type!r}")
    if is_sse:
        return check_stream(fmt, decode_sse([body]))
    try:
        payload = json.loads(body)
    except ValueError:
        return AnswerCheck(f"reply is not JSON: {body[:120]!r}")
    return check_json(endpoint, payload)


def check_json(endpoint: str, payload: Any) -> AnswerCheck:
    """Check a parsed non-stream reply of ``endpoint`` (chat, messages, count_tokens, models)."""
    if not isinstance(payload, dict):
        return AnswerCheck(f"reply is not a JSON object: {type(payload).__name__}")
    if endpoint == "models":
        ok = isinstance(payload.get("data"), list) and payload["data"]
        return AnswerCheck(None if ok else "model list has no data")
    if endpoint == "count_tokens":
        tokens = payload.get("input_tokens")
        ok = isinstance(tokens, int) and tokens > 0
        return AnswerCheck(None if ok else f"input_tokens is {tokens!r}")
    if endpoint == "chat":
        if payload.get("object") != "chat.completion":
            return AnswerCheck(f"object is {payload.get('object')!r}, not chat.completion")
        return _check_completion(payload)
    if endpoint == "messages":
        if payload.get("type") != "message":
            return AnswerCheck(f"type is {payload.get('type')!r}, not message")
        return _check_message(payload)
    return AnswerCheck()


def check_stream(fmt: FormatName, events: Sequence[SseEvent]) -> AnswerCheck:
    """Check a stream's decoded events (``offset_ms`` stamped as they arrived)."""
    if not events:
        return AnswerCheck("stream carried no events")
    assembled = assemble(events, fmt)
    ttft = first_token_offset(events, fmt)
    if assembled.get("error") is not None:
        return AnswerCheck(f"stream error event: {_short(assembled['error'])}", ttft_ms=ttft)
    if assembled.get("malformed_events"):
        return AnswerCheck(
            f"{assembled['malformed_events']} stream event(s) are not JSON", ttft_ms=ttft
        )
    if fmt == "openai":
        if not assembled.get("saw_done"):
            return AnswerCheck("stream ended without data: [DONE]", ttft_ms=ttft)
        if events[-1].data.strip() != "[DONE]":
            return AnswerCheck("events after data: [DONE]", ttft_ms=ttft)
        check = _check_completion(assembled, streamed_events=len(events))
    else:
        if not assembled.get("saw_message_stop"):
            return AnswerCheck("stream ended without message_stop", ttft_ms=ttft)
        first = _type_of(events[0])
        if first != "message_start":
            return AnswerCheck(f"stream starts with {first!r}, not message_start", ttft_ms=ttft)
        if _type_of(events[-1]) != "message_stop":
            return AnswerCheck("events after message_stop", ttft_ms=ttft)
        check = _check_message(assembled)
    if check.problem is None and ttft is None:
        return AnswerCheck("stream has no content delta", check.output_tokens)
    return AnswerCheck(check.problem, check.output_tokens, ttft)


def _check_completion(payload: dict[str, Any], streamed_events: int = 0) -> AnswerCheck:
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        return AnswerCheck("no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if not (isinstance(content, str) and content.strip()) and not calls:
        return AnswerCheck("the first choice has neither content nor tool calls")
    for call in calls:
        function = call.get("function") or {}
        if not function.get("name"):
            return AnswerCheck("a tool call has no function name")
    if not choice.get("finish_reason"):
        return AnswerCheck("the first choice has no finish_reason")
    usage = payload.get("usage") or {}
    tokens = usage.get("completion_tokens")
    if not isinstance(tokens, int):
        # A stream without include_usage: one content chunk is about one token.
        tokens = max(streamed_events - 2, 1) if streamed_events else 0
    return AnswerCheck(None, tokens)


def _check_message(payload: dict[str, Any]) -> AnswerCheck:
    blocks = payload.get("content")
    if not isinstance(blocks, list) or not blocks:
        return AnswerCheck("message has no content blocks")
    useful = False
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and str(block.get("text", "")).strip():
            useful = True
        elif kind == "tool_use":
            if not block.get("name") or not isinstance(block.get("input"), dict):
                return AnswerCheck("a tool_use block lacks a name or an object input")
            useful = True
        elif kind in ("thinking", "redacted_thinking"):
            continue
    if not useful:
        return AnswerCheck("message content is empty")
    if not payload.get("stop_reason"):
        return AnswerCheck("message has no stop_reason")
    tokens = (payload.get("usage") or {}).get("output_tokens")
    return AnswerCheck(None, tokens if isinstance(tokens, int) else 0)


def _type_of(event: SseEvent) -> str | None:
    try:
        payload = json.loads(event.data)
    except ValueError:
        return event.event
    return payload.get("type") if isinstance(payload, dict) else event.event


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:200] + "..."
