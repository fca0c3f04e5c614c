"""An observation as a comparable dict, per endpoint and API format (pure).

::

    {"status": 200, "error_type": None,
     "headers": {"content-type": "application/json"},      # COMPARED_HEADERS only
     "body": {...},        # the JSON body, or the stream assembled into the same shape
     "stream": {"complete": True, "sequence": [...]}}      # streams only

Per endpoint: chat tool-call ``arguments`` are parsed JSON (so key order and spacing do
not count); the model list is ordered by id; a stream's ``saw_done`` /
``saw_message_stop`` becomes ``stream.complete``. ``error_type`` is the API error's
``type`` (body or stream error event), else ``transport:<error>`` when no answer came.
Then the ignore rules (:mod:`harness.compare.rules`) take out what never counts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.compare.rules import IgnoreRules, Normalized
from harness.observation import Observation
from harness.sse import assemble, event_sequence
from memory_proxy.api_formats import FormatName

__all__ = [
    "COMPARED_HEADERS",
    "DEFAULT_IGNORE_RULES",
    "ENDPOINTS",
    "EndpointShape",
    "comparable",
    "default_rules",
    "normalize",
]

# Benign differences between the SDK proxy and the LiteLLM server, per the observed facts.
DEFAULT_IGNORE_RULES: tuple[str, ...] = (
    "root['id']",  # chatcmpl-..., msg_...: minted per call
    "choices[*].message.tool_calls[*].id",  # call_...
    "content[*].id",  # toolu_... (tool_use blocks)
    "created",  # unix seconds of the answer
    "system_fingerprint",
    "request_id",  # Anthropic error envelopes
    "data[*].created",  # /v1/models entries
    "data[*].owned_by",
    # The LiteLLM server answers with the config alias (claude-sonnet-4.5), the SDK with
    # the upstream id (claude-sonnet-4-5-20250929): equal as model ids.
    "root['model'] as model-id",
)

# Response headers worth comparing; ids, dates and server-specific ones are left out.
COMPARED_HEADERS: tuple[str, ...] = ("content-type",)


@dataclass(frozen=True)
class EndpointShape:
    """How one endpoint's answers are made comparable."""

    name: str
    stream_format: FormatName | None
    prepare_body: Callable[[Any], Any]


def _same(body: Any) -> Any:
    return body


def _chat_body(body: Any) -> Any:
    """Tool-call arguments as parsed JSON (copying only what changes)."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        return body
    choices = []
    for choice in body["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(calls, list):
            choices.append(choice)
            continue
        parsed = [_parsed_call(call) for call in calls]
        choices.append({**choice, "message": {**message, "tool_calls": parsed}})
    return {**body, "choices": choices}


def _parsed_call(call: Any) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    try:
        arguments = json.loads(function["arguments"]) if function["arguments"] else {}
    except ValueError:
        return call  # not JSON: compared as the string it is
    return {**call, "function": {**function, "arguments": arguments}}


def _models_body(body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    # Both servers list the same models, not necessarily in the same order.
    data = sorted(body["data"], key=lambda m: str(m.get("id")) if isinstance(m, dict) else "")
    return {**body, "data": data}


def _health_body(body: Any) -> Any:
    """Without the fields that name the proxy answering (its service name, and the
    litellm version the SDK proxy reports): identity, not behaviour."""
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if k not in ("service", "litellm_version")}


ENDPOINTS: Mapping[str, EndpointShape] = {
    "chat": EndpointShape("chat", "openai", _chat_body),
    "messages": EndpointShape("messages", "anthropic", _same),
    "count_tokens": EndpointShape("count_tokens", None, _same),
    "models": EndpointShape("models", None, _models_body),
    "health": EndpointShape("health", None, _health_body),
}
_OTHER = EndpointShape("other", None, _same)
_STREAM_FLAGS = ("saw_done", "saw_message_stop")


def comparable(
    observation: Observation,
    endpoint: str,
    compared_headers: tuple[str, ...] = COMPARED_HEADERS,
) -> dict[str, Any]:
    """The observation as a plain dict, before ignore rules."""
    shape = ENDPOINTS.get(endpoint, _OTHER)
    value: dict[str, Any] = {"status": observation.status}
    if observation.events is not None:
        fmt = shape.stream_format or "openai"
        assembled = assemble(observation.events, fmt)
        complete = any([assembled.pop(flag, False) for flag in _STREAM_FLAGS])
        stream: dict[str, Any] = {
            "complete": complete,
            "sequence": event_sequence(observation.events, fmt),
        }
        if "malformed_events" in assembled:
            stream["malformed_events"] = assembled.pop("malformed_events")
        body = shape.prepare_body(assembled)
    else:
        stream = {}
        body = shape.prepare_body(observation.body)
    body = _without_nulls(body)
    value["error_type"] = _error_type(observation, body)
    value["headers"] = _headers(observation.headers, compared_headers)
    value["body"] = body
    if stream:
        value["stream"] = stream
    return value


def _without_nulls(value: Any) -> Any:
    """Drop keys whose value is null: to an API client a null field and a missing one are
    the same, and the LiteLLM server omits nulls the litellm SDK's objects carry."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def normalize(
    observation: Observation,
    endpoint: str,
    rules: IgnoreRules | None = None,
    compared_headers: tuple[str, ...] = COMPARED_HEADERS,
) -> Normalized:
    """Comparable dict with the ignore rules applied (the defaults when none are given)."""
    rules = rules if rules is not None else default_rules()
    return rules.apply(comparable(observation, endpoint, compared_headers))


@functools.cache
def default_rules() -> IgnoreRules:
    """The compiled :data:`DEFAULT_IGNORE_RULES` (compiled once)."""
    return IgnoreRules(DEFAULT_IGNORE_RULES)


def _error_type(observation: Observation, body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("type") is not None:
            return str(error["type"])
        if isinstance(error, str):
            return error
    if observation.error:
        return f"transport:{observation.error}"
    return None


def _headers(headers: Mapping[str, str], compared: tuple[str, ...]) -> dict[str, str]:
    lowered = {k.lower(): v for k, v in headers.items()}
    out = {}
    for name in compared:
        if name in lowered:
            value = lowered[name]
            # application/json; charset=utf-8 and application/json are the same answer.
            out[name] = value.split(";", 1)[0].strip().lower() if name == "content-type" else value
    return out
