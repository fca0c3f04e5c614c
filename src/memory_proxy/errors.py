"""The proxy's one exception tree. Foreign errors are translated into it at the boundary.

::

    ConfigError                      bad config file: startup fails with one message
    ProxyError                       a request failed; rendered in the endpoint's format
    ├── InvalidRequest          400
    ├── AuthenticationFailed    401
    ├── ModelNotFound           404
    ├── RequestTimeout          408  the request head or body did not arrive in time
    ├── PayloadTooLarge         413
    ├── HeadersTooLarge         431
    └── UpstreamError                the provider (or the way to it) failed
        ├── UpstreamRejected    4xx  the provider refused the request (passed on)
        ├── UpstreamRateLimited 429  retried before the first byte
        ├── UpstreamUnavailable 503  overloaded / Cloudflare 1200 / unreachable (refused, DNS,
        │                            TLS); retried before the first byte
        ├── UpstreamBadGateway  502  5xx, a cut stream, or a reply that is not what the API says
        └── UpstreamTimeout     504

Each error carries an :class:`ErrorKind`; ``api_formats`` turns a kind into the OpenAI or
Anthropic error body, so handlers never build error JSON themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "AuthenticationFailed",
    "ConfigError",
    "ErrorKind",
    "HeadersTooLarge",
    "InvalidRequest",
    "ModelNotFound",
    "PayloadTooLarge",
    "ProxyError",
    "RequestTimeout",
    "UpstreamBadGateway",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamRejected",
    "UpstreamReply",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "stream_cut",
]


class ErrorKind(enum.Enum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    UPSTREAM = "upstream"
    TIMEOUT = "timeout"
    REQUEST_TIMEOUT = "request_timeout"


class ConfigError(Exception):
    """The config file cannot be used; the message names file, key path and expectation."""


@dataclass(frozen=True)
class UpstreamReply:
    """A provider's error answer as it came: on a pass-through path the client gets it
    byte for byte (Claude Code recovers from capability rejections by matching the
    provider's wording; a re-wrapped body, or 529 turned into 503, breaks that)."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def content_type(self) -> str:
        found = (v for k, v in self.headers if k.lower() == "content-type")
        return next(found, "application/json")


class ProxyError(Exception):
    status: int = 500
    kind: ErrorKind = ErrorKind.UPSTREAM
    retryable: bool = False
    # The provider's own answer, when there was one and the path passes it on verbatim.
    upstream_reply: UpstreamReply | None = None
    # The provider's Retry-After (seconds or an HTTP-date), for the retry loop.
    retry_after: str | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(ProxyError):
    status = 400
    kind = ErrorKind.INVALID_REQUEST


class AuthenticationFailed(ProxyError):
    status = 401
    kind = ErrorKind.AUTHENTICATION


class ModelNotFound(ProxyError):
    status = 404
    kind = ErrorKind.NOT_FOUND

    def __init__(self, model: object, available: list[str]) -> None:
        super().__init__(
            f"model {model!r} is not served here; available models: {', '.join(available)}"
        )
        self.available = available


class RequestTimeout(ProxyError):
    """The client was too slow sending its request (see ``connection_limits``)."""

    status = 408
    kind = ErrorKind.REQUEST_TIMEOUT


class PayloadTooLarge(ProxyError):
    status = 413
    kind = ErrorKind.TOO_LARGE


class HeadersTooLarge(ProxyError):
    status = 431
    kind = ErrorKind.TOO_LARGE


class UpstreamError(ProxyError):
    status = 502
    kind = ErrorKind.UPSTREAM


class UpstreamRejected(UpstreamError):
    """A 4xx from the provider, passed on with the provider's status and message."""

    kind = ErrorKind.INVALID_REQUEST

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, status=status)
        self.kind = {
            401: ErrorKind.AUTHENTICATION,
            403: ErrorKind.PERMISSION,
            404: ErrorKind.NOT_FOUND,
            413: ErrorKind.TOO_LARGE,
        }.get(status, ErrorKind.INVALID_REQUEST)


class UpstreamRateLimited(UpstreamError):
    status = 429
    kind = ErrorKind.RATE_LIMITED
    retryable = True

    def __init__(self, message: str, *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"retry-after": self.retry_after} if self.retry_after else {}


class UpstreamUnavailable(UpstreamError):
    status = 503
    kind = ErrorKind.OVERLOADED
    retryable = True


class UpstreamBadGateway(UpstreamError):
    status = 502
    kind = ErrorKind.UPSTREAM


def stream_cut() -> UpstreamBadGateway:
    """A provider stream that ended, at an event boundary, before its final event: the
    client must not take what it got for a whole reply."""
    return UpstreamBadGateway("upstream stream ended without its final event")


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = ErrorKind.TIMEOUT
