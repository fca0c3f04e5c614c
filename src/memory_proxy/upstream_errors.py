"""Translate what litellm, httpx and aiohttp raise into the proxy's exception tree, once.

litellm wraps transport failures in its own classes with a made-up status: a refused
connection, a DNS or TLS failure is an ``InternalServerError`` (500), a read timeout
inside a stream a ``MidStreamFallbackError`` (500), a reply cut short of valid JSON an
``APIConnectionError``. The transport's (or the JSON decoder's) own exception is still
in the chain (``__cause__``, ``__context__``, ``original_exception``), so the chain
decides, and the same fault maps to the same status on every path (litellm or relay):

===========================================  ======  =======  ==========================
fault                                        status  retried  error
===========================================  ======  =======  ==========================
connection refused or reset, DNS, TLS        503     yes      UpstreamUnavailable
429 (its Retry-After passed on)              429     yes      UpstreamRateLimited
503 / 529 overloaded, Cloudflare 1200        503     yes      UpstreamUnavailable
timeout (connect, headers, between chunks)   504     no       UpstreamTimeout
reply not valid JSON, a cut stream, 5xx      502     no       UpstreamBadGateway (or base)
other 4xx                                    4xx     no       UpstreamRejected
litellm failed building the request          400     no       InvalidRequest
litellm failed reading the provider's answer  502     no       UpstreamBadGateway
===========================================  ======  =======  ==========================

Retries happen before the first byte only; after it, the error is one SSE error event.
A provider's ``x-should-retry: false`` makes any of them final, and its ``Retry-After``
(on a 429, 503 or 529) is kept on the error for the retry loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
from collections.abc import Iterator

import aiohttp
import httpx

from memory_proxy.errors import (
    InvalidRequest,
    ProxyError,
    UpstreamBadGateway,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["is_cloudflare_1200", "translate_reply_error", "translate_upstream_error"]

# Cloudflare's "error code: 1200" (cache connection limit: the origin is overloaded).
_CLOUDFLARE_1200 = re.compile(r"error code:?\s*1200", re.IGNORECASE)
# litellm prefixes messages with its own class names; clients need the provider's words.
_OVERLOADED = '"overloaded_error"'
_LITELLM_PREFIX = re.compile(r"^(litellm\.\w+:\s*)+(\w+Exception\s*-\s*)?")
_LITELLM_HINT = re.compile(r"\s*Handle with `litellm\.\w+`\.?")
_OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
_TIMEOUTS = (asyncio.TimeoutError, httpx.TimeoutException)
# The connection failed: refused or reset, DNS, TLS handshake. Not every OSError: a
# file error litellm hit on the way must not turn a provider's 500 into "unreachable".
_CONNECT_FAILURES = (
    ConnectionError,
    socket.gaierror,
    ssl.SSLError,
    aiohttp.ClientConnectorError,
    httpx.ConnectError,
)


# Raised inside litellm while it builds the provider's request from the client's.
_TRANSLATION_FAILURES = (ValueError, AttributeError, TypeError, KeyError, IndexError)


def is_cloudflare_1200(text: str) -> bool:
    return bool(_CLOUDFLARE_1200.search(text))


def translate_upstream_error(exc: BaseException) -> ProxyError:
    """One place where foreign exceptions become ProxyErrors (never re-raise foreign ones)."""
    if isinstance(exc, ProxyError):
        return exc
    error = _translate(exc)
    if error.retry_after is None:
        error.retry_after = _header(exc, "retry-after")
    if (_header(exc, "x-should-retry") or "").strip().lower() == "false":
        # The provider knows a retry cannot help (its SDKs obey this over the status).
        error.retryable = False
    return error


def translate_reply_error(exc: BaseException) -> ProxyError:
    """:func:`translate_upstream_error` for what reading a provider's answer raised.

    litellm crashing on the answer (a field of another shape: a ``TypeError``, a
    ``KeyError``) is the answer's fault, a 502; the same crash while building the request
    is the client's, the 400 the table gives it.
    """
    error = translate_upstream_error(exc)
    if not isinstance(error, InvalidRequest):
        return error
    crash = _in_chain(exc, _TRANSLATION_FAILURES) or exc
    return UpstreamBadGateway(
        f"upstream reply could not be translated ({type(crash).__name__} in litellm)"
    )


def _translate(exc: BaseException) -> ProxyError:
    message = _clean_message(exc)
    if isinstance(exc, _TIMEOUTS):
        return UpstreamTimeout(f"upstream timed out: {message}")
    status = _status_of(exc)
    name = type(exc).__name__
    if is_cloudflare_1200(message):
        return UpstreamUnavailable(f"upstream overloaded (Cloudflare error 1200): {message}")
    if name == "Timeout" or status == 408:
        return UpstreamTimeout(f"upstream timed out: {message}")
    if status == 429:
        return UpstreamRateLimited(message, retry_after=_header(exc, "retry-after"))
    # litellm reports Anthropic's 503/529 "overloaded_error" as a 500: the body says it.
    if status in (503, 529) or _OVERLOADED in message:
        return UpstreamUnavailable(message)
    if status is not None and 400 <= status < 500:
        return UpstreamRejected(message, status=status)
    # No provider status (or litellm's stand-in 500): the transport failure underneath.
    timeout = _in_chain(exc, _TIMEOUTS)
    if timeout is not None:
        return UpstreamTimeout(f"upstream timed out: {_clean_message(timeout)}")
    unreachable = _in_chain(exc, _CONNECT_FAILURES)
    not_json = _in_chain(exc, (json.JSONDecodeError,))
    if unreachable is None and not_json is not None:
        # litellm calls a reply it cannot parse an APIConnectionError; it is a bad reply
        # (and its message would carry the reply's text).
        return UpstreamBadGateway(f"upstream reply is not valid JSON: {not_json}")
    untranslatable = _in_chain(exc, _TRANSLATION_FAILURES)
    if (
        unreachable is None
        and untranslatable is not None
        and not isinstance(untranslatable, aiohttp.ClientError | httpx.HTTPError)
    ):
        # litellm failed on the request itself, before any call (e.g. a content block
        # that is a list of nulls, or no messages): the client's request, not the
        # provider. Its validation messages are kept; a crash's text is not.
        if isinstance(untranslatable, ValueError):
            return InvalidRequest(_clean_message(untranslatable))
        return InvalidRequest(
            f"the request could not be translated for the provider "
            f"({type(untranslatable).__name__} in litellm); check its message shapes"
        )
    if unreachable is None and (
        name == "APIConnectionError" or isinstance(exc, httpx.TransportError | OSError)
    ):
        unreachable = exc
    if unreachable is not None:
        return UpstreamUnavailable(f"upstream unreachable: {_clean_message(unreachable)}")
    if status is not None and status >= 500:
        return UpstreamBadGateway(f"upstream error {status}: {message}")
    return UpstreamError(f"upstream call failed: {message}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling, depth first."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (
            getattr(current, "original_exception", None),
            current.__context__,
            current.__cause__,
        ):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _in_chain(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    return next((link for link in _chain(exc) if isinstance(link, kinds)), None)


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _header(exc: BaseException, name: str) -> str | None:
    # litellm keeps the provider's headers in litellm_response_headers; the response
    # on its own exception is rebuilt without them.
    for source in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if source:
            try:
                value = source.get(name) or source.get(name.title())
            except AttributeError:
                continue
            if value:
                return str(value)
    return None


def _clean_message(exc: BaseException) -> str:
    raw = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    # litellm appends the traceback to some messages, after a newline or a space ("Invalid
    # response object Traceback ..."): file paths, and the reply it quotes, are nobody's.
    raw = str(raw).split("Traceback (most recent call last)")[0]
    text = _LITELLM_PREFIX.sub("", raw).strip()
    # Drop litellm's debugging tail ("Received Model Group=..." etc.) and hints, and
    # object reprs (``ssl:<ssl.SSLContext object at 0x...>``) that only carry addresses.
    text = _LITELLM_HINT.sub("", text.split("\nReceived Model Group")[0])
    return _OBJECT_REPR.sub(r"\1", text)[:2000]
