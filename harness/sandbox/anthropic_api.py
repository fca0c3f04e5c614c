"""Anthropic Messages API: request validation, prompt reading and reply rendering.

Pure functions over parsed JSON. Validation follows the real API's wording
(``messages.0.role: Field required``) but accepts what Claude Code sends and the API
tolerates: unknown top-level fields, ``role: "system"`` messages, system as a list of
blocks with ``cache_control``, tools with ``defer_loading``, ``metadata.user_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.sandbox.chunking import piece_chunks, word_chunks
from harness.sandbox.errors import InvalidRequest
from harness.sandbox.formats import ANTHROPIC, GenerationApi
from harness.sandbox.prompt import (
    Prompt,
    ToolChoice,
    ToolResult,
    ToolSpec,
    canonical_json,
    content_pieces,
    content_text,
    count_input_tokens,
    request_digest,
)
from harness.sandbox.replies import Reply
from harness.sandbox.sse import SseEvent, json_event

__all__ = [
    "MESSAGES",
    "count_tokens_body",
    "message_body",
    "message_events",
    "read_count_tokens_request",
    "read_messages_request",
]

_ROLES = ("user", "assistant", "system")
_TOOL_CHOICES = ("auto", "any", "tool", "none")


def read_messages_request(body: Any) -> Prompt:
    """Validate a ``POST /v1/messages`` body and read its prompt."""
    _validate(body, needs_max_tokens=True)
    return _read_prompt(body)


def read_count_tokens_request(body: Any) -> Prompt:
    """Validate a ``POST /v1/messages/count_tokens`` body (no ``max_tokens``)."""
    _validate(body, needs_max_tokens=False)
    return _read_prompt(body)


def count_tokens_body(prompt: Prompt) -> dict[str, Any]:
    return {"input_tokens": prompt.input_tokens}


def message_body(reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streamed ``Message`` object."""
    message = _message_shell(reply, body)
    message["content"] = _content_blocks(reply)
    message["stop_reason"] = reply.stop_reason
    message["usage"] = _usage(reply, reply.output_tokens)
    return message


def message_events(reply: Reply, body: Mapping[str, Any]) -> list[SseEvent]:
    """The streamed sequence, as the real API sends it.

    ``message_start`` (empty content) → per block ``content_block_start`` (the first one
    followed by a ``ping``), deltas, ``content_block_stop`` → ``message_delta`` (stop
    reason, output tokens) → ``message_stop``.
    """
    start = _message_shell(reply, body)
    start["usage"] = _usage(reply, 1)
    events = [json_event({"type": "message_start", "message": start}, "message_start")]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if reply.text:
        deltas = [{"type": "text_delta", "text": piece} for piece in word_chunks(reply.text)]
        blocks.append(({"type": "text", "text": ""}, deltas))
    if reply.tool_call is not None:
        call = reply.tool_call
        opening = {"type": "tool_use", "id": f"toolu_{call.token}", "name": call.name, "input": {}}
        # The real API opens every tool input with an empty partial_json.
        pieces = ["", *piece_chunks(call.arguments_json)]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        blocks.append((opening, deltas))
    opened = False
    for index, (opening, deltas) in enumerate(blocks):
        events.append(
            json_event(
                {"type": "content_block_start", "index": index, "content_block": opening},
                "content_block_start",
            )
        )
        if index == 0:
            events.append(json_event({"type": "ping"}, "ping"))
        for delta in deltas:
            payload = {"type": "content_block_delta", "index": index, "delta": delta}
            events.append(json_event(payload, "content_block_delta", opens_content=not opened))
            opened = True
        events.append(
            json_event({"type": "content_block_stop", "index": index}, "content_block_stop")
        )
    delta_payload = {
        "type": "message_delta",
        "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": reply.output_tokens},
    }
    events.append(json_event(delta_payload, "message_delta"))
    events.append(json_event({"type": "message_stop"}, "message_stop"))
    return events


MESSAGES = GenerationApi(
    format=ANTHROPIC,
    read_prompt=read_messages_request,
    render_body=message_body,
    render_stream=message_events,
)


def _message_shell(reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": f"msg_{reply.token}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }


def _content_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    if reply.tool_call is not None:
        call = reply.tool_call
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_{call.token}",
                "name": call.name,
                "input": call.arguments,
            }
        )
    return blocks


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _validate(body: Any, *, needs_max_tokens: bool) -> None:
    if not isinstance(body, dict):
        raise InvalidRequest("Input should be a valid dictionary")
    required = ("model", "messages", "max_tokens") if needs_max_tokens else ("model", "messages")
    for key in required:
        if key not in body:
            raise InvalidRequest(f"{key}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise InvalidRequest("model: Input should be a valid string")
    if needs_max_tokens:
        max_tokens = body["max_tokens"]
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise InvalidRequest("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    _validate_messages(body["messages"])
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise InvalidRequest("system: Input should be a valid list")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    _validate_tools(body.get("tools"), body.get("tool_choice"))


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages.{i}: Input should be a valid dictionary")
        for key in ("role", "content"):
            if key not in message:
                raise InvalidRequest(f"messages.{i}.{key}: Field required")
        if message["role"] not in _ROLES:
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message["content"]
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise InvalidRequest(f"messages.{i}.content: Input should be a valid list")
        for j, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise InvalidRequest(f"messages.{i}.content.{j}.type: Field required")


def _validate_tools(tools: Any, tool_choice: Any) -> None:
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise InvalidRequest(f"tools.{i}.name: Field required")
    if tool_choice is not None:
        if not isinstance(tool_choice, dict) or tool_choice.get("type") not in _TOOL_CHOICES:
            raise InvalidRequest(
                "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
            )
        if tool_choice["type"] == "tool" and not isinstance(tool_choice.get("name"), str):
            raise InvalidRequest("tool_choice.name: Field required")


def _read_prompt(body: dict[str, Any]) -> Prompt:
    messages: list[dict[str, Any]] = body["messages"]
    # Claude Code may append a role "system" message; it is context, not the turn.
    turns = [m for m in messages if m["role"] != "system"]
    users = [m for m in turns if m["role"] == "user"]
    last_user_text = content_text(users[-1]["content"]) if users else ""
    tool_result = None
    if turns and turns[-1]["role"] == "user":
        tool_result = _tool_result(turns[-1]["content"], turns)
    tools = tuple(
        ToolSpec(t["name"], t["input_schema"])
        for t in body.get("tools") or []
        if isinstance(t.get("input_schema"), dict)
    )
    choice = body.get("tool_choice") or {}
    tool_choice = ToolChoice(choice.get("type", "auto"), choice.get("name"))
    pieces = content_pieces(body.get("system"))
    for message in messages:
        pieces.extend(content_pieces(message["content"]))
    pieces.extend(canonical_json(t) for t in body.get("tools") or [])
    return Prompt(
        model=body["model"],
        digest=request_digest(body),
        last_user_text=last_user_text,
        tool_result=tool_result,
        tools=tools,
        tool_choice=tool_choice,
        input_tokens=count_input_tokens(pieces, len(messages)),
        max_tokens=body.get("max_tokens"),
    )


def _tool_result(content: Any, turns: list[dict[str, Any]]) -> ToolResult | None:
    if not isinstance(content, list):
        return None
    results = [b for b in content if b.get("type") == "tool_result"]
    if not results:
        return None
    result = results[-1]
    call_id = result.get("tool_use_id")
    name = None
    for message in turns:
        if message["role"] != "assistant" or not isinstance(message["content"], list):
            continue
        for block in message["content"]:
            if block.get("type") == "tool_use" and block.get("id") == call_id:
                name = block.get("name")
    return ToolResult(name if isinstance(name, str) else None, content_text(result.get("content")))
