"""Provider calls that pass bytes through: the client's body on, the reply's bytes back.

When the provider speaks the client's own API format (Anthropic Messages to an anthropic
model, Chat Completions to an openai model) there is nothing to translate, so the proxy
does not build litellm's objects per reply and per stream chunk: it sends the body over
the session's aiohttp ``ClientSession`` (the one cookie jar every path shares, see
``session.py``) and relays what comes back, its headers included. A reply that is not
2xx becomes an :class:`UpstreamReplyError`, shaped like litellm's errors so
``translate_upstream_error`` handles both (and decides on retries); the resulting error
keeps the reply itself (:class:`UpstreamReply`) so the client gets the provider's status
and body byte for byte. aiohttp's own failures are translated here, at the boundary.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from memory_proxy.errors import ProxyError, UpstreamReply, UpstreamUnavailable
from memory_proxy.upstream_errors import translate_upstream_error
from memory_proxy.upstream_observer import CallObserver, UpstreamObserver

__all__ = ["ByteStream", "RelayRequest", "RelayedReply", "UpstreamRelay", "UpstreamReplyError"]


class UpstreamReplyError(Exception):
    """A non-2xx reply, shaped like litellm's errors so one translator handles both."""

    def __init__(self, status_code: int, text: str, headers: Mapping[str, str]) -> None:
        super().__init__(error_message(text) or f"upstream answered {status_code}")
        self.message = str(self)
        self.status_code = status_code
        self.litellm_response_headers = headers
        self.body_text = text


@dataclass(frozen=True)
class RelayRequest:
    """One provider call, fully built: the relay adds nothing but the session's cookies."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class RelayedReply:
    """A 2xx answer: its body bytes and its headers, as the provider sent them."""

    body: bytes
    headers: tuple[tuple[str, str], ...]


class UpstreamRelay:
    def __init__(
        self, session: aiohttp.ClientSession, observer: UpstreamObserver | None = None
    ) -> None:
        self.session = session
        self.observer = observer

    def _watch(self, request: RelayRequest) -> CallObserver | None:
        if self.observer is None:
            return None
        return self.observer.call("POST", request.url, request.headers.items(), request.body)

    async def send(self, request: RelayRequest) -> RelayedReply:
        """A 2xx answer, its body checked to be JSON; any failure a ProxyError."""
        watch = self._watch(request)
        try:
            async with self.session.post(
                request.url, data=request.body, headers=request.headers
            ) as reply:
                status, headers = reply.status, reply.headers
                if watch is not None:
                    watch.response(status, headers.items())
                data = await reply.read()
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            if watch is not None:
                watch.end(type(exc).__name__)
            raise _transport_error(exc) from exc
        if watch is not None:
            watch.chunk(data)
            watch.end()
        if status >= 400:
            raise reply_error(status, data, headers)
        try:
            # Validated, not re-encoded: the client gets the provider's bytes.
            json.loads(data)
        except ValueError as exc:
            raise translate_upstream_error(
                UpstreamReplyError(502, "upstream reply is not valid JSON", headers)
            ) from exc
        return RelayedReply(data, tuple(headers.items()))

    async def open_stream(self, request: RelayRequest) -> ByteStream:
        """Send, check the status, and hand over the body's bytes as they arrive."""
        watch = self._watch(request)
        try:
            reply = await self.session.post(request.url, data=request.body, headers=request.headers)
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            if watch is not None:
                watch.end(type(exc).__name__)
            raise _transport_error(exc) from exc
        if watch is not None:
            watch.response(reply.status, reply.headers.items())
        if reply.status >= 400:
            try:
                data = await reply.read()
            except Exception:  # noqa: BLE001 - the status says enough
                data = b""
            finally:
                reply.release()
            if watch is not None:
                watch.chunk(data)
                watch.end()
            raise reply_error(reply.status, data, reply.headers)
        return ByteStream(reply, watch)


class ByteStream:
    """A reply's body chunks as they arrive; closing it early drops the connection."""

    def __init__(self, reply: aiohttp.ClientResponse, watch: CallObserver | None = None) -> None:
        self.reply = reply
        self.watch = watch
        self.headers: tuple[tuple[str, str], ...] = tuple(reply.headers.items())

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks() if self.watch is None else self._watched_chunks(self.watch)

    async def _chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.reply.content.iter_any():
            if chunk:
                yield chunk
        self.reply.release()

    async def _watched_chunks(self, watch: CallObserver) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks():
                watch.chunk(chunk)
                yield chunk
        except Exception as exc:
            watch.end(type(exc).__name__)
            raise
        watch.end()

    async def aclose(self) -> None:
        if self.watch is not None:
            self.watch.end("closed")
        # A body not read to its end leaves the connection unusable: close, not release.
        if not self.reply.content.at_eof():
            self.reply.close()
        else:
            self.reply.release()


def _transport_error(exc: Exception) -> ProxyError:
    foreign = isinstance(exc, OSError | TimeoutError)  # the translator knows these
    if isinstance(exc, aiohttp.ClientConnectionError) and not foreign:
        # The server closed the connection before answering (a stale keep-alive, say):
        # retryable, as httpx's RemoteProtocolError was.
        return UpstreamUnavailable(f"upstream closed the connection: {exc or type(exc).__name__}")
    return translate_upstream_error(exc)


def reply_error(status: int, data: bytes, headers: Mapping[str, Any]) -> ProxyError:
    text = data.decode("utf-8", errors="replace")
    error = translate_upstream_error(UpstreamReplyError(status, text, headers))
    # The provider's own words, for the log line; the client gets the reply itself.
    error.message = error_message(text) or error.message
    error.upstream_reply = UpstreamReply(status, data, tuple(headers.items()))
    return error


def error_message(text: str) -> str:
    """The ``error.message`` of an OpenAI or Anthropic error body, else the text itself."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return text.strip()[:500]
