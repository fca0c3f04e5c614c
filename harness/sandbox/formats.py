"""The two API formats as data: error envelopes, error types per status, headers.

A ``GenerationApi`` bundles what one generation endpoint needs (read the request into a
``Prompt``, render a ``Reply`` as a body or as stream events); the HTTP layer holds no
``if provider == ...`` branches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.sandbox.errors import ApiError
from harness.sandbox.prompt import Prompt
from harness.sandbox.replies import Reply
from harness.sandbox.sse import SseEvent, json_event

__all__ = ["ANTHROPIC", "OPENAI", "ProviderFormat", "ErrorKind", "GenerationApi"]

Body = Mapping[str, Any]


@dataclass(frozen=True)
class ErrorKind:
    """How a format names an error status: its ``type``, ``code`` and default wording."""

    type: str
    message: str
    code: str | None = None


@dataclass(frozen=True)
class ProviderFormat:
    """One provider's conventions for errors and response headers (the proxy's own
    client-facing formats are ``memory_proxy.api_formats.ApiFormat``)."""

    name: str
    request_id_header: str
    invalid_json_message: str
    errors: Mapping[int, ErrorKind]
    client_error: ErrorKind
    server_error: ErrorKind
    envelope: Callable[[ErrorKind, ApiError, str, str], dict[str, Any]]
    stream_error: Callable[[ErrorKind], SseEvent]
    # The provider's rate-limit headers, sent on every answer (a 429 says "exhausted").
    rate_limit_headers: Callable[[int], dict[str, str]]

    def error_kind(self, status: int) -> ErrorKind:
        if status in self.errors:
            return self.errors[status]
        return self.server_error if status >= 500 else self.client_error

    def error_body(self, error: ApiError, request_id: str) -> dict[str, Any]:
        kind = self.error_kind(error.status)
        return self.envelope(kind, error, error.message or kind.message, request_id)

    def stream_error_event(self, status: int = 503) -> SseEvent:
        """The event a provider sends when a stream fails after its headers went out."""
        return self.stream_error(self.error_kind(status))

    def error_headers(self, error: ApiError) -> dict[str, str]:
        # Both providers tell a rate-limited client when to come back, and every error
        # whether a retry can help (their SDKs obey ``x-should-retry`` over the status).
        headers = {"x-should-retry": "true" if _worth_retrying(error.status) else "false"}
        if error.status == 429:
            headers["retry-after"] = "1"
        return headers


@dataclass(frozen=True)
class GenerationApi:
    """A generation endpoint's pure codec.

    ``read_prompt`` validates the parsed JSON body (raising ``InvalidRequest`` like the
    real API would) and returns the neutral prompt; the renderers turn a reply into the
    non-streamed body or the streamed events.
    """

    format: ProviderFormat
    read_prompt: Callable[[Any], Prompt]
    render_body: Callable[[Reply, Body], dict[str, Any]]
    render_stream: Callable[[Reply, Body], list[SseEvent]]


def _anthropic_envelope(
    kind: ErrorKind, error: ApiError, message: str, request_id: str
) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind.type, "message": message},
        "request_id": request_id,
    }


def _openai_envelope(
    kind: ErrorKind, error: ApiError, message: str, request_id: str
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": kind.type,
            "param": error.param,
            "code": error.code if error.code is not None else kind.code,
        }
    }


def _anthropic_stream_error(kind: ErrorKind) -> SseEvent:
    return json_event(
        {"type": "error", "error": {"type": kind.type, "message": kind.message}}, "error"
    )


def _openai_stream_error(kind: ErrorKind) -> SseEvent:
    error = {"message": kind.message, "type": kind.type, "param": None, "code": kind.code}
    return json_event({"error": error})


def _worth_retrying(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


# Fixed, plausible values: a run's answers stay reproducible. The reset instants are far
# enough ahead that no client waits on them.
_RESET_AT = "2030-01-01T00:00:00Z"
_RESET_EPOCH = "1893456000"


def _anthropic_rate_limits(status: int) -> dict[str, str]:
    exhausted = status == 429
    return {
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "0" if exhausted else "3999",
        "anthropic-ratelimit-requests-reset": _RESET_AT,
        "anthropic-ratelimit-tokens-limit": "400000",
        "anthropic-ratelimit-tokens-remaining": "0" if exhausted else "399000",
        "anthropic-ratelimit-tokens-reset": _RESET_AT,
        # What a subscription (claude.ai login) account gets: Claude Code's usage display
        # reads these, and on a 429 they tell a plan limit from throttling.
        "anthropic-ratelimit-unified-status": "rejected" if exhausted else "allowed",
        "anthropic-ratelimit-unified-reset": _RESET_EPOCH,
        "anthropic-ratelimit-unified-5h-utilization": "1.0" if exhausted else "0.12",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
    }


def _openai_rate_limits(status: int) -> dict[str, str]:
    exhausted = status == 429
    return {
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "0" if exhausted else "9999",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "0" if exhausted else "1999000",
        "x-ratelimit-reset-tokens": "30ms",
        "openai-processing-ms": "42",
        "openai-version": "2020-10-01",
    }


_OVERLOADED = ErrorKind("overloaded_error", "Overloaded")

ANTHROPIC = ProviderFormat(
    name="anthropic",
    request_id_header="request-id",
    invalid_json_message="There was an error parsing the body of your request: invalid JSON.",
    errors={
        400: ErrorKind("invalid_request_error", "Invalid request"),
        401: ErrorKind("authentication_error", "x-api-key header is required"),
        402: ErrorKind("billing_error", "Your credit balance is too low (sandbox)."),
        403: ErrorKind("permission_error", "Your API key does not have permission (sandbox)."),
        404: ErrorKind("not_found_error", "Not found"),
        405: ErrorKind("invalid_request_error", "Method not allowed"),
        413: ErrorKind("request_too_large", "Request exceeds the maximum allowed size."),
        429: ErrorKind(
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (sandbox). "
            "Please try again later.",
        ),
        500: ErrorKind("api_error", "Internal server error"),
        503: _OVERLOADED,
        504: ErrorKind("timeout_error", "Request timed out"),
        529: _OVERLOADED,
    },
    client_error=ErrorKind("invalid_request_error", "Invalid request"),
    server_error=ErrorKind("api_error", "Internal server error"),
    envelope=_anthropic_envelope,
    stream_error=_anthropic_stream_error,
    rate_limit_headers=_anthropic_rate_limits,
)

OPENAI = ProviderFormat(
    name="openai",
    request_id_header="x-request-id",
    invalid_json_message=(
        "We could not parse the JSON body of your request. (HINT: This likely means you "
        "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
        "but what was sent was not valid JSON.)"
    ),
    errors={
        400: ErrorKind("invalid_request_error", "Invalid request"),
        401: ErrorKind(
            "invalid_request_error",
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        ),
        404: ErrorKind("invalid_request_error", "Invalid URL"),
        405: ErrorKind("invalid_request_error", "Method not allowed"),
        429: ErrorKind(
            "requests",
            "Rate limit reached for requests (sandbox). Please try again in 1s.",
            "rate_limit_exceeded",
        ),
        500: ErrorKind(
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        ),
        503: ErrorKind("server_error", "The server is overloaded or not ready yet."),
    },
    client_error=ErrorKind("invalid_request_error", "Invalid request"),
    server_error=ErrorKind("server_error", "The server had an error processing your request."),
    envelope=_openai_envelope,
    stream_error=_openai_stream_error,
    rate_limit_headers=_openai_rate_limits,
)
