"""What the SDK proxy's OpenAPI schema says about the generation endpoints. Pure data.

The generation routes are served ahead of FastAPI (``fast_routes``), so FastAPI cannot
derive their schemas; these are declared by hand: the fields the proxy itself reads, with
everything else allowed through as clients send it, and every status it can answer with
in the endpoint's own error format. The schema is what property-based tests
(schemathesis) generate requests from, and what they check answers against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["generation_openapi", "models_openapi"]

_CONTENT = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}

_CHAT_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string"},
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {
                        "type": "string",
                        "enum": ["system", "developer", "user", "assistant", "tool"],
                    },
                    "content": _CONTENT,
                },
            },
        },
        "stream": {"type": "boolean"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "temperature": {"type": "number"},
    },
}

_MESSAGES_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string"},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"type": "string", "enum": ["user", "assistant"]},
                    "content": _CONTENT,
                },
            },
        },
        "system": _CONTENT,
        "stream": {"type": "boolean"},
    },
}

_COUNT_TOKENS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string"},
        "messages": _MESSAGES_BODY["properties"]["messages"],
        "system": _CONTENT,
    },
}

_OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {"message": {"type": "string"}, "type": {"type": "string"}},
        }
    },
}

_ANTHROPIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}

# Every status the proxy answers with (see ``errors``); 429 and 5xx come from upstream.
_ERROR_STATUSES = ("400", "401", "404", "408", "413", "429", "500", "502", "503", "504")


def _operation(body: dict[str, Any], error: dict[str, Any], streams: bool) -> dict[str, Any]:
    ok: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
    if streams:
        ok["text/event-stream"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {"200": {"description": "the provider's answer", "content": ok}}
    for status in _ERROR_STATUSES:
        responses[status] = {
            "description": "an error in the endpoint's format",
            "content": {"application/json": {"schema": error}},
        }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": responses,
    }


def generation_openapi(path: str, models: Sequence[str] = ()) -> dict[str, Any]:
    """``openapi_extra`` for one generation route; ``models`` are the configured names."""
    if path.endswith("/messages/count_tokens"):
        body, error, streams = _COUNT_TOKENS_BODY, _ANTHROPIC_ERROR, False
    elif path.endswith("/messages"):
        body, error, streams = _MESSAGES_BODY, _ANTHROPIC_ERROR, True
    else:
        body, error, streams = _CHAT_BODY, _OPENAI_ERROR, True
    if models:
        model = {"type": "string", "examples": list(models)}
        body = {**body, "properties": {**body["properties"], "model": model}}
    return _operation(body, error, streams)


def models_openapi() -> dict[str, Any]:
    """``openapi_extra`` for ``GET /v1/models``: the list (Anthropic's paging parameters),
    or a 400 / 401 in OpenAI's format."""
    error = {"application/json": {"schema": _OPENAI_ERROR}}
    paging = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "after_id", "in": "query", "schema": {"type": "string"}},
        {"name": "before_id", "in": "query", "schema": {"type": "string"}},
    ]
    return {
        "parameters": paging,
        "responses": {
            "400": {"description": "a bad paging parameter", "content": error},
            "401": {"description": "no or a wrong key", "content": error},
        },
    }
