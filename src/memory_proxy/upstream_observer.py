"""A seam for watching provider calls: what was sent, what came back, and when.

An app built with ``create_app(config, upstream_observer=...)`` reports every provider
call, on every path (the pass-through relay and litellm's calls alike, which share one
upstream session), to its observer: the request as sent, then the reply's status and
headers, each body chunk as it arrives, and the end. Who observes (a shadow-mode tap, a
tracer) is not the proxy's business. With no observer the cost is one ``is None`` check
per call; an observer's own failure never reaches the request (it is the observer's to
keep cheap and safe, and :class:`ObservedTransport` calls it outside any ``try`` that
could turn its error into a provider error).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Protocol

import aiohttp
import httpx
from yarl import URL

__all__ = [
    "CallObserver",
    "ObservedTransport",
    "UpstreamObserver",
    "WithSessionCookies",
    "observe_all",
]


class CallObserver(Protocol):
    """One provider call being watched."""

    def response(self, status: int, headers: Iterable[tuple[str, str]]) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def end(self, error: str | None = None) -> None:
        """The call is over: its body was read to the end, or ``error`` ended it. May be
        called more than once; only the first counts."""


class UpstreamObserver(Protocol):
    def call(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> CallObserver | None:
        """A provider call is about to be sent; None: this one is not watched."""


def observe_all(*observers: UpstreamObserver | None) -> UpstreamObserver | None:
    """One observer reporting to each of ``observers`` (a shadow tap and the tracer,
    say); None when none is given, so an unwatched proxy pays nothing."""
    present = [o for o in observers if o is not None]
    if len(present) <= 1:
        return present[0] if present else None
    return _AllObservers(tuple(present))


class _AllObservers:
    def __init__(self, observers: tuple[UpstreamObserver, ...]) -> None:
        self.observers = observers

    def call(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> CallObserver | None:
        headers = tuple(headers)  # read by each observer
        watches = [o.call(method, url, headers, body) for o in self.observers]
        present = tuple(w for w in watches if w is not None)
        if len(present) <= 1:
            return present[0] if present else None
        return _AllCalls(present)


class _AllCalls:
    def __init__(self, watches: tuple[CallObserver, ...]) -> None:
        self.watches = watches

    def response(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        headers = tuple(headers)
        for watch in self.watches:
            watch.response(status, headers)

    def chunk(self, data: bytes) -> None:
        for watch in self.watches:
            watch.chunk(data)

    def end(self, error: str | None = None) -> None:
        for watch in self.watches:
            watch.end(error)


class ObservedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that reports each call through it to an observer (litellm's
    calls: they go through an ``httpx.AsyncClient`` on the shared session)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, observer: UpstreamObserver) -> None:
        self._inner = inner
        self._observer = observer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        watch = self._observer.call(
            request.method, str(request.url), request.headers.multi_items(), body
        )
        if watch is None:
            return await self._inner.handle_async_request(request)
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            watch.end(type(exc).__name__)
            raise
        watch.response(response.status_code, response.headers.multi_items())
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ObservedStream(response.stream, watch),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ObservedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, watch: CallObserver) -> None:
        self._inner = inner
        self._watch = watch

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                self._watch.chunk(chunk)
                yield chunk
        except Exception as exc:
            self._watch.end(type(exc).__name__)
            raise
        self._watch.end()

    async def aclose(self) -> None:
        await self._inner.aclose()
        self._watch.end("closed")


class WithSessionCookies:
    """Reports each call with the ``cookie`` header the session's jar adds when it sends it.

    The paths hand the session their own headers; aiohttp adds the jar's cookies on the
    way out. An observer must see the call as the provider does, cookie included (the
    harness checks that a Cloudflare cookie, once set, comes back on later calls).
    """

    def __init__(self, inner: UpstreamObserver, jar: aiohttp.abc.AbstractCookieJar) -> None:
        self._inner = inner
        self._jar = jar

    def call(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> CallObserver | None:
        cookies = self._jar.filter_cookies(URL(url))
        sent = list(headers)
        if cookies and not any(name.lower() == "cookie" for name, _ in sent):
            sent.append(("cookie", "; ".join(f"{k}={m.value}" for k, m in cookies.items())))
        return self._inner.call(method, url, sent, body)
