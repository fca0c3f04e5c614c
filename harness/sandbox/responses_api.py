"""OpenAI Responses (``POST /v1/responses``): validation, prompt reading, reply rendering.

The LiteLLM server answers ``/v1/messages`` for an OpenAI model by calling the provider's
Responses API, not Chat Completions; a provider without it answers 404 and LiteLLM's
router then puts the model in cooldown. So the sandbox serves it, in the real API's
shape: a ``response`` object whose ``output`` holds a ``message`` (``output_text`` parts)
or a ``function_call`` item, usage as ``input_tokens`` / ``output_tokens``, and a stream
of typed events (``event:`` named like the payload's ``type``, a ``sequence_number`` on
each, no ``[DONE]``): ``response.created``, ``response.in_progress``,
``response.output_item.added``, then ``response.content_part.added`` and
``response.output_text.delta`` ... ``.done`` (or ``response.function_call_arguments.delta``
... ``.done``), ``response.output_item.done`` and ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` cut the reply). Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.sandbox.chunking import piece_chunks, word_chunks
from harness.sandbox.errors import InvalidRequest
from harness.sandbox.formats import OPENAI, GenerationApi
from harness.sandbox.openai_api import invalid_type, missing_parameter
from harness.sandbox.prompt import (
    Prompt,
    ToolChoice,
    ToolResult,
    ToolSpec,
    canonical_json,
    count_input_tokens,
    request_digest,
)
from harness.sandbox.replies import Reply
from harness.sandbox.sse import SseEvent, json_event

__all__ = ["RESPONSES", "read_responses_request", "response_body", "response_events"]

# The real API's floor for max_output_tokens.
MIN_OUTPUT_TOKENS = 16
_TEXT_PARTS = ("input_text", "output_text", "text")


def read_responses_request(body: Any) -> Prompt:
    """Validate a ``POST /v1/responses`` body and read its prompt."""
    _validate(body)
    items = _items(body["input"])
    users = [i for i in items if _kind(i) == "message" and i.get("role") == "user"]
    last_user_text = _text(users[-1].get("content")) if users else ""
    tools = tuple(
        ToolSpec(t["name"], t["parameters"] if isinstance(t.get("parameters"), dict) else {})
        for t in body.get("tools") or []
        if t.get("type") == "function"
    )
    pieces = [str(body.get("instructions") or "")]
    for item in items:
        content = item.get("content")
        pieces.append(content if isinstance(content, str) else canonical_json(item))
    pieces.extend(canonical_json(t) for t in body.get("tools") or [])
    max_tokens = body.get("max_output_tokens")
    # The reply's words depend on what was asked, as for the other APIs (not on stream).
    digest = request_digest(
        {
            "model": body["model"],
            "messages": items,
            "system": body.get("instructions"),
            "tools": body.get("tools"),
        }
    )
    return Prompt(
        model=body["model"],
        digest=digest,
        last_user_text=last_user_text,
        tool_result=_tool_result(items),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        input_tokens=count_input_tokens(pieces, len(items)),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
    )


def response_body(reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streamed ``response`` object."""
    return _response(reply, body, done=True)


def response_events(reply: Reply, body: Mapping[str, Any]) -> list[SseEvent]:
    """The streamed event sequence (see the module docstring)."""
    events: list[SseEvent] = []

    def emit(kind: str, opens: bool = False, **fields: Any) -> None:
        payload = {"type": kind, "sequence_number": len(events), **fields}
        events.append(json_event(payload, kind, opens_content=opens))

    started = _response(reply, body, done=False)
    emit("response.created", response=started)
    emit("response.in_progress", response=started)
    item = _output_item(reply)
    item_id = item["id"]
    opened = {**item, "status": "in_progress"}
    if item["type"] == "function_call":
        emit("response.output_item.added", output_index=0, item={**opened, "arguments": ""})
        arguments = item["arguments"]
        for i, piece in enumerate(piece_chunks(arguments)):
            emit(
                "response.function_call_arguments.delta",
                i == 0,
                item_id=item_id,
                output_index=0,
                delta=piece,
            )
        emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=0,
            arguments=arguments,
        )
    else:
        emit("response.output_item.added", output_index=0, item={**opened, "content": []})
        part = item["content"][0]
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        emit("response.content_part.added", **where, part={**part, "text": ""})
        for i, piece in enumerate(word_chunks(reply.text)):
            emit("response.output_text.delta", i == 0, **where, delta=piece, logprobs=[])
        emit("response.output_text.done", **where, text=reply.text, logprobs=[])
        emit("response.content_part.done", **where, part=part)
    emit("response.output_item.done", output_index=0, item=item)
    final = _response(reply, body, done=True)
    emit(
        "response.incomplete" if final["status"] == "incomplete" else "response.completed",
        response=final,
    )
    return events


RESPONSES = GenerationApi(
    format=OPENAI,
    read_prompt=read_responses_request,
    render_body=response_body,
    render_stream=response_events,
)


def _output_item(reply: Reply) -> dict[str, Any]:
    if reply.tool_call is not None:
        call = reply.tool_call
        return {
            "type": "function_call",
            "id": f"fc_{call.token}",
            "call_id": f"call_{call.token}",
            "name": call.name,
            "arguments": call.arguments_json,
            "status": "completed",
        }
    return {
        "type": "message",
        "id": f"msg_{reply.token}",
        "status": "incomplete" if reply.stop_reason == "max_tokens" else "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}],
    }


def _response(reply: Reply, body: Mapping[str, Any], *, done: bool) -> dict[str, Any]:
    incomplete = reply.stop_reason == "max_tokens"
    status = ("incomplete" if incomplete else "completed") if done else "in_progress"
    return {
        "id": f"resp_{reply.token}",
        "object": "response",
        "created_at": reply.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": body["model"],
        "output": [_output_item(reply)] if done else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": (
            {
                "input_tokens": reply.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": reply.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": reply.input_tokens + reply.output_tokens,
            }
            if done
            else None
        ),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _items(value: Any) -> list[dict[str, Any]]:
    """``input`` as a list of items: a string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [item for item in value if isinstance(item, dict)]


def _kind(item: Mapping[str, Any]) -> str:
    # An item without a type is an "easy" input message ({"role", "content"}).
    return str(item.get("type") or "message")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") in _TEXT_PARTS
        and isinstance(part.get("text"), str)
    )


def _tool_result(items: list[dict[str, Any]]) -> ToolResult | None:
    """The function's output when the input ends in one, with the called function's name."""
    if not items or _kind(items[-1]) != "function_call_output":
        return None
    last = items[-1]
    name = next(
        (
            i.get("name")
            for i in items
            if _kind(i) == "function_call" and i.get("call_id") == last.get("call_id")
        ),
        None,
    )
    output = last.get("output")
    return ToolResult(name if isinstance(name, str) else None, _text(output))


def _tool_choice(choice: Any) -> ToolChoice:
    if choice == "none":
        return ToolChoice("none")
    if choice == "required":
        return ToolChoice("any")
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        return ToolChoice("tool", name) if isinstance(name, str) else ToolChoice()
    return ToolChoice()


def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    if "model" not in body:
        raise missing_parameter("model")
    if not isinstance(body["model"], str) or not body["model"]:
        raise invalid_type("model", "a string", body["model"])
    if "input" not in body:
        raise missing_parameter("input")
    value = body["input"]
    if not isinstance(value, str | list):
        raise invalid_type("input", "one of a string or array of input items", value)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise invalid_type(f"input[{i}]", "an object", item)
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise invalid_type("stream", "a boolean", body["stream"])
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise invalid_type("max_output_tokens", "an integer", limit)
        if limit < MIN_OUTPUT_TOKENS:
            raise InvalidRequest(
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value "
                f">= {MIN_OUTPUT_TOKENS}, but got {limit} instead.",
                param="max_output_tokens",
                code="integer_below_min_value",
            )
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_type("tools", "an array of objects", tools)
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise invalid_type(f"tools[{i}]", "an object", tool)
            if tool.get("type") == "function" and not isinstance(tool.get("name"), str):
                raise missing_parameter(f"tools[{i}].name")
