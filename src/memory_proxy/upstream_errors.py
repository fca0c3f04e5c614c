"""Translate what litellm, httpx and aiohttp raise into the proxy's exception tree, once."""

from __future__ import annotations

import asyncio
import re

import httpx

from memory_proxy.errors import (
    ProxyError,
    UpstreamBadGateway,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["is_cloudflare_1200", "translate_upstream_error"]

# Cloudflare's "error code: 1200" (cache connection limit: the origin is overloaded).
_CLOUDFLARE_1200 = re.compile(r"error code:?\s*1200", re.IGNORECASE)
# litellm prefixes messages with its own class names; clients need the provider's words.
_OVERLOADED = '"overloaded_error"'
_LITELLM_PREFIX = re.compile(r"^(litellm\.\w+:\s*)+(\w+Exception\s*-\s*)?")


def is_cloudflare_1200(text: str) -> bool:
    return bool(_CLOUDFLARE_1200.search(text))


def translate_upstream_error(exc: BaseException) -> ProxyError:
    """One place where foreign exceptions become ProxyErrors (never re-raise foreign ones)."""
    if isinstance(exc, ProxyError):
        return exc
    message = _clean_message(exc)
    if isinstance(exc, asyncio.TimeoutError | httpx.TimeoutException):
        return UpstreamTimeout(f"upstream timed out: {message}")
    status = _status_of(exc)
    name = type(exc).__name__
    if is_cloudflare_1200(message):
        return UpstreamUnavailable(f"upstream overloaded (Cloudflare error 1200): {message}")
    if name == "Timeout" or status == 408:
        return UpstreamTimeout(f"upstream timed out: {message}")
    if status == 429:
        return UpstreamRateLimited(message, retry_after=_retry_after(exc))
    # litellm reports Anthropic's 503/529 "overloaded_error" as a 500: the body says it.
    if status in (503, 529) or _OVERLOADED in message:
        return UpstreamUnavailable(message)
    if status is not None and 400 <= status < 500:
        return UpstreamRejected(message, status=status)
    if name == "APIConnectionError" or isinstance(exc, httpx.TransportError | OSError):
        return UpstreamUnavailable(f"upstream unreachable: {message}")
    if status is not None and status >= 500:
        return UpstreamBadGateway(f"upstream error {status}: {message}")
    return UpstreamError(f"upstream call failed: {message}")


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _retry_after(exc: BaseException) -> str | None:
    # litellm keeps the provider's headers in litellm_response_headers; the response
    # on its own exception is rebuilt without them.
    for source in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if source:
            try:
                value = source.get("retry-after") or source.get("Retry-After")
            except AttributeError:
                continue
            if value:
                return str(value)
    return None


def _clean_message(exc: BaseException) -> str:
    raw = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = _LITELLM_PREFIX.sub("", str(raw)).strip()
    # Drop litellm's debugging tail ("Received Model Group=..." etc.).
    return text.split("\nReceived Model Group")[0][:2000]
