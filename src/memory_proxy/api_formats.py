"""The two client API formats as data: error shapes and SSE framing, no branching by name.

Also the one table of the API's endpoints: which method and path is which endpoint
(``chat``, ``messages``, ``count_tokens``, ``models``), for the apps that serve them and
the harness that mirrors and names them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from memory_proxy.errors import ErrorKind, ProxyError

__all__ = [
    "ANTHROPIC",
    "ENDPOINT_NAMES",
    "OPENAI",
    "ApiFormat",
    "FormatName",
    "endpoint_paths",
    "error_format_for",
]

# (method, path) -> endpoint name. The unversioned OpenAI paths are the ones some clients
# use; every endpoint here is stateless, so a mirror may send it twice.
ENDPOINT_NAMES: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("POST", "/v1/chat/completions"): "chat",
        ("POST", "/chat/completions"): "chat",
        ("POST", "/v1/messages"): "messages",
        ("POST", "/v1/messages/count_tokens"): "count_tokens",
        ("GET", "/v1/models"): "models",
        ("GET", "/models"): "models",
    }
)


# The one name for the two API families, wherever a format is named by a string.
FormatName = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class ApiFormat:
    name: FormatName
    # ErrorKind -> (error type, error code). Anthropic bodies have no code.
    error_types: Mapping[ErrorKind, tuple[str, str | None]]
    anthropic_envelope: bool
    # How a stream's last event starts: the format's normal end, or the provider's error.
    final_event_marks: tuple[bytes, ...]
    # What the proxy sends into a stream the upstream has left silent: the format's own
    # keep-alive, which its clients skip (Anthropic's ping event; an SSE comment, which
    # OpenAI's SDKs ignore).
    keepalive: bytes

    def error_body(self, error: ProxyError) -> dict[str, Any]:
        err_type, code = self.error_types[error.kind]
        if self.anthropic_envelope:
            return {"type": "error", "error": {"type": err_type, "message": error.message}}
        return {"error": {"message": error.message, "type": err_type, "param": None, "code": code}}

    def sse_error(self, error: ProxyError) -> bytes:
        """The one SSE event that ends a stream that failed after its first byte."""
        data = json.dumps(self.error_body(error), separators=(",", ":"))
        if self.anthropic_envelope:
            return f"event: error\ndata: {data}\n\n".encode()
        return f"data: {data}\n\n".encode()


OPENAI = ApiFormat(
    name="openai",
    error_types={
        ErrorKind.INVALID_REQUEST: ("invalid_request_error", "invalid_request"),
        ErrorKind.AUTHENTICATION: ("authentication_error", "invalid_api_key"),
        ErrorKind.PERMISSION: ("permission_error", "permission_denied"),
        ErrorKind.NOT_FOUND: ("invalid_request_error", "model_not_found"),
        ErrorKind.TOO_LARGE: ("invalid_request_error", "request_too_large"),
        ErrorKind.RATE_LIMITED: ("rate_limit_error", "rate_limit_exceeded"),
        ErrorKind.OVERLOADED: ("service_unavailable_error", "service_unavailable"),
        ErrorKind.UPSTREAM: ("api_error", "upstream_error"),
        ErrorKind.TIMEOUT: ("timeout_error", "timeout"),
        ErrorKind.REQUEST_TIMEOUT: ("request_timeout", "request_timeout"),
    },
    anthropic_envelope=False,
    final_event_marks=(b"data: [DONE]", b'data: {"error"'),
    keepalive=b": keep-alive\n\n",
)

ANTHROPIC = ApiFormat(
    name="anthropic",
    error_types={
        ErrorKind.INVALID_REQUEST: ("invalid_request_error", None),
        ErrorKind.AUTHENTICATION: ("authentication_error", None),
        ErrorKind.PERMISSION: ("permission_error", None),
        ErrorKind.NOT_FOUND: ("not_found_error", None),
        ErrorKind.TOO_LARGE: ("request_too_large", None),
        ErrorKind.RATE_LIMITED: ("rate_limit_error", None),
        ErrorKind.OVERLOADED: ("overloaded_error", None),
        ErrorKind.UPSTREAM: ("api_error", None),
        ErrorKind.TIMEOUT: ("api_error", None),
        # Anthropic has no type for a client too slow to send; the 408 status says it.
        ErrorKind.REQUEST_TIMEOUT: ("invalid_request_error", None),
    },
    anthropic_envelope=True,
    final_event_marks=(b"event: message_stop", b"event: error"),
    keepalive=b'event: ping\ndata: {"type": "ping"}\n\n',
)


def error_format_for(path: str) -> ApiFormat:
    """The format an error on ``path`` is written in: Anthropic's under /v1/messages."""
    return ANTHROPIC if path.startswith("/v1/messages") else OPENAI


def endpoint_paths(*names: str) -> tuple[str, ...]:
    """The paths of the endpoints called ``names``, in table order."""
    return tuple(path for (_, path), name in ENDPOINT_NAMES.items() if name in names)
