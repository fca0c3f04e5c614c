"""OpenAI Chat Completions and Models: validation, prompt reading and reply rendering.

Pure functions over parsed JSON. Error wording, ``param`` and ``code`` follow the real
API (``Missing required parameter: 'messages'.`` / ``missing_required_parameter``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.sandbox.chunking import piece_chunks, word_chunks
from harness.sandbox.errors import InvalidRequest
from harness.sandbox.formats import OPENAI, GenerationApi
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
    "CHAT_COMPLETIONS",
    "SYSTEM_FINGERPRINT",
    "completion_body",
    "completion_events",
    "invalid_type",
    "missing_parameter",
    "models_body",
    "read_chat_request",
]

SYSTEM_FINGERPRINT = "fp_sandbox0001"
_MODELS_CREATED = 1_700_000_000
_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


def read_chat_request(body: Any) -> Prompt:
    """Validate a ``POST /v1/chat/completions`` body and read its prompt."""
    _validate(body)
    return _read_prompt(body)


def completion_body(reply: Reply, body: Mapping[str, Any]) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text or None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_call is not None:
        call = reply.tool_call
        message["tool_calls"] = [
            {
                "id": f"call_{call.token}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
        ]
    completion = _shell(reply, body, "chat.completion")
    completion["choices"] = [
        {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": _FINISH[reply.stop_reason],
        }
    ]
    completion["usage"] = _usage(reply)
    return completion


def completion_events(reply: Reply, body: Mapping[str, Any]) -> list[SseEvent]:
    """The streamed ``chat.completion.chunk`` sequence, ending in ``[DONE]``.

    Role chunk (carrying the tool call's id and name, if any) → content or argument
    pieces → an empty delta with ``finish_reason`` → with
    ``stream_options.include_usage`` a usage chunk with no choices → ``[DONE]``.
    """
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True

    def chunk(delta: dict[str, Any], finish: str | None = None, *, opens: bool = False) -> SseEvent:
        payload = _shell(reply, body, "chat.completion.chunk")
        payload["choices"] = [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        ]
        if include_usage:
            payload["usage"] = None
        return json_event(payload, opens_content=opens)

    events: list[SseEvent] = []
    if reply.tool_call is not None:
        call = reply.tool_call
        opening = {
            "index": 0,
            "id": f"call_{call.token}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append(
            chunk({"role": "assistant", "content": None, "tool_calls": [opening], "refusal": None})
        )
        for i, piece in enumerate(piece_chunks(call.arguments_json)):
            delta = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            events.append(chunk(delta, opens=i == 0))
    else:
        events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for i, piece in enumerate(word_chunks(reply.text)):
            events.append(chunk({"content": piece}, opens=i == 0))
    events.append(chunk({}, _FINISH[reply.stop_reason]))
    if include_usage:
        payload = _shell(reply, body, "chat.completion.chunk")
        payload["choices"] = []
        payload["usage"] = _usage(reply)
        events.append(json_event(payload))
    events.append(SseEvent("[DONE]"))
    return events


def models_body(models: Sequence[str]) -> dict[str, Any]:
    """OpenAI's model list; each entry also carries Anthropic's fields, so both SDKs parse it."""
    return {
        "object": "list",
        "data": [
            {
                "id": model,
                "object": "model",
                "created": _MODELS_CREATED,
                "owned_by": "sandbox",
                "type": "model",
                "display_name": model,
                "created_at": "2023-11-14T22:13:20Z",
            }
            for model in models
        ],
        "has_more": False,
        "first_id": models[0] if models else None,
        "last_id": models[-1] if models else None,
    }


CHAT_COMPLETIONS = GenerationApi(
    format=OPENAI,
    read_prompt=read_chat_request,
    render_body=completion_body,
    render_stream=completion_events,
)


def _shell(reply: Reply, body: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{reply.token}",
        "object": kind,
        "created": reply.created,
        "model": body["model"],
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def missing_parameter(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
    )


def invalid_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise invalid_type("body", "an object", body)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter")
    if "messages" not in body:
        raise missing_parameter("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        _validate_message(f"messages[{i}]", message)
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise invalid_type("stream", "a boolean", body["stream"])
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid_type(key, "an integer", value)
        if value < 1:
            raise InvalidRequest(
                f"Invalid '{key}': integer below minimum value. Expected a value >= 1, "
                f"but got {value} instead.",
                param=key,
                code="integer_below_min_value",
            )
    _validate_tools(body.get("tools"), body.get("tool_choice"))


def _validate_message(param: str, message: Any) -> None:
    if not isinstance(message, dict):
        raise invalid_type(param, "an object", message)
    if "role" not in message:
        raise missing_parameter(f"{param}.role")
    role = message["role"]
    if role not in _ROLES:
        raise InvalidRequest(
            f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
            "'function', 'tool', and 'developer'.",
            param=f"{param}.role",
            code="invalid_value",
        )
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise missing_parameter(f"{param}.tool_call_id")
    if role != "assistant" and "content" not in message:
        raise missing_parameter(f"{param}.content")
    content = message.get("content")
    if content is not None and not isinstance(content, str | list):
        raise invalid_type(f"{param}.content", "one of a string or array of objects", content)


def _validate_tools(tools: Any, tool_choice: Any) -> None:
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_type("tools", "an array of objects", tools)
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise invalid_type(f"tools[{i}]", "an object", tool)
            if tool.get("type", "function") == "function":
                function = tool.get("function")
                if not isinstance(function, dict):
                    raise missing_parameter(f"tools[{i}].function")
                if not isinstance(function.get("name"), str):
                    raise missing_parameter(f"tools[{i}].function.name")
    if tool_choice is None or isinstance(tool_choice, dict):
        return
    if tool_choice not in ("none", "auto", "required"):
        raise InvalidRequest(
            f"Invalid value: '{tool_choice}'. "
            "Supported values are: 'none', 'auto', and 'required'.",
            param="tool_choice",
            code="invalid_value",
        )


def _read_prompt(body: dict[str, Any]) -> Prompt:
    messages: list[dict[str, Any]] = body["messages"]
    turns = [m for m in messages if m["role"] not in ("system", "developer")]
    users = [m for m in turns if m["role"] == "user"]
    last_user_text = content_text(users[-1].get("content")) if users else ""
    tool_result = (
        _tool_result(turns) if turns and turns[-1]["role"] in ("tool", "function") else None
    )
    tools = tuple(
        ToolSpec(t["function"]["name"], _schema(t["function"].get("parameters")))
        for t in body.get("tools") or []
        if t.get("type", "function") == "function"
    )
    pieces: list[str] = []
    for message in messages:
        pieces.extend(content_pieces(message.get("content")))
        if message.get("tool_calls"):
            pieces.append(canonical_json(message["tool_calls"]))
    pieces.extend(canonical_json(t) for t in body.get("tools") or [])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return Prompt(
        model=body["model"],
        digest=request_digest(body),
        last_user_text=last_user_text,
        tool_result=tool_result,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice")),
        input_tokens=count_input_tokens(pieces, len(messages)),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
    )


def _schema(parameters: Any) -> dict[str, Any]:
    return parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}


def _tool_choice(choice: Any) -> ToolChoice:
    if choice == "none":
        return ToolChoice("none")
    if choice == "required":
        return ToolChoice("any")
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        return ToolChoice("tool", name) if isinstance(name, str) else ToolChoice()
    return ToolChoice()


def _tool_result(turns: list[dict[str, Any]]) -> ToolResult:
    last = turns[-1]
    name = last.get("name") if last["role"] == "function" else None
    call_id = last.get("tool_call_id")
    for message in turns:
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and call.get("id") == call_id:
                function = call.get("function")
                name = function.get("name") if isinstance(function, dict) else name
    return ToolResult(name if isinstance(name, str) else None, content_text(last.get("content")))
