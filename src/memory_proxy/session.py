"""The upstream HTTP session: pooled connections and one persistent cookie jar per loop.

litellm builds every pooled client with a jar that blocks cookies, and
``litellm.aclient_session`` does not reach the Anthropic path, so a Cloudflare cookie
(``__cf_bm``) set on one reply would never come back. Here one aiohttp ``ClientSession``
with an ordinary jar carries every provider call:

- the pass-through paths (``relay``) use it directly: no httpx layer, whose cookie
  handling (``http.cookiejar``) alone cost ~10 % of a pass-through request's CPU;
- litellm's calls go through an ``httpx.AsyncClient`` on litellm's own aiohttp transport
  (40-50 % less CPU than httpx's) bound to that same session, so a cookie set on either
  path is sent on both. The httpx layer's jar is litellm's blocking one: the aiohttp jar
  is the only one. The client is handed to litellm on every call, wrapped in an
  ``AsyncHTTPHandler`` for the Anthropic paths and in an ``AsyncOpenAI`` per (base URL,
  key) for the OpenAI path.

aiohttp sessions belong to the event loop they were made on, and one app may be served
by several servers at once (shadow mode wraps the app that also serves directly; tests
do the same), each on its own loop. So the clients are kept per running loop: each
server's lifespan opens its loop's set and closes it on shutdown, never per request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
from litellm.llms.custom_httpx.http_handler import (
    AsyncHTTPHandler,
    blocked_cookie_jar,
    get_default_headers,
)
from openai import AsyncOpenAI

from memory_proxy.header_tap import record_response_headers
from memory_proxy.relay import UpstreamRelay
from memory_proxy.upstream_observer import (
    ObservedTransport,
    UpstreamObserver,
    WithSessionCookies,
)

__all__ = ["UpstreamSession"]

# Connections kept per loop, as litellm's own transport allows by default.
CONNECTION_LIMIT = 1000
KEEPALIVE_SECONDS = 120.0


class _LoopClients:
    """Everything one event loop's requests call providers with."""

    def __init__(self, timeout: float, observer: UpstreamObserver | None) -> None:
        self.timeout = timeout
        # unsafe=True: keep cookies of IP-addressed hosts too (a provider on loopback).
        self.cookies = aiohttp.CookieJar(unsafe=True)
        self.aiohttp = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=CONNECTION_LIMIT, keepalive_timeout=KEEPALIVE_SECONDS
            ),
            cookie_jar=self.cookies,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=min(timeout, 30.0), sock_read=timeout
            ),
            headers=get_default_headers(),
            trust_env=False,
        )
        if observer is not None:
            observer = WithSessionCookies(observer, self.cookies)
        self.relay = UpstreamRelay(self.aiohttp, observer)
        transport: httpx.AsyncBaseTransport = AsyncHTTPHandler.create_aiohttp_transport(
            shared_session=self.aiohttp
        )
        if observer is not None:
            transport = ObservedTransport(transport, observer)
        self.http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            headers=get_default_headers(),
            cookies=blocked_cookie_jar(),
            follow_redirects=False,
            trust_env=False,
            # The provider's response headers, for the client (litellm drops some).
            event_hooks={"response": [record_response_headers]},
        )
        self.handler = AsyncHTTPHandler(timeout=timeout)
        # The handler built a client of its own (with the blocking jar); swap ours in.
        self._discarded = self.handler.client
        self.handler.client = self.http
        self.openai: dict[tuple[str | None, str | None], AsyncOpenAI] = {}

    async def aclose(self) -> None:
        await self.http.aclose()
        await self._discarded.aclose()
        await self.aiohttp.close()


class UpstreamSession:
    def __init__(self, *, timeout: float, observer: UpstreamObserver | None = None) -> None:
        """``observer`` watches every provider call (:mod:`memory_proxy.upstream_observer`)."""
        self.timeout = timeout
        self.observer = observer
        self._loops: dict[asyncio.AbstractEventLoop, _LoopClients] = {}

    def _clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        clients = self._loops.get(loop)
        if clients is None:
            clients = self._loops[loop] = _LoopClients(self.timeout, self.observer)
        return clients

    def open(self) -> None:
        """Build the running loop's clients now (a lifespan's start), not on first use."""
        self._clients()

    @property
    def loops(self) -> int:
        """How many event loops have clients open."""
        return len(self._loops)

    @property
    def relay(self) -> UpstreamRelay:
        return self._clients().relay

    @property
    def http(self) -> httpx.AsyncClient:
        return self._clients().http

    @property
    def cookies(self) -> aiohttp.CookieJar:
        return self._clients().cookies

    def openai_client(self, api_base: str | None, api_key: str | None) -> AsyncOpenAI:
        """An ``AsyncOpenAI`` over the shared session, one per base URL and key."""
        clients = self._clients()
        key = (api_base, api_key)
        client = clients.openai.get(key)
        if client is None:
            client = AsyncOpenAI(
                api_key=api_key or "unset",
                base_url=api_base,
                http_client=clients.http,
                # Retries are the proxy's own (before the first byte only), not the SDK's.
                max_retries=0,
                timeout=self.timeout,
            )
            clients.openai[key] = client
        return client

    def client_for(self, provider: str, api_base: str | None, api_key: str | None) -> Any:
        """The ``client=`` argument litellm takes for ``provider``."""
        if provider == "openai":
            return self.openai_client(api_base, api_key)
        return self._clients().handler

    async def aclose(self) -> None:
        """Close the running loop's clients (a lifespan's end)."""
        clients = self._loops.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.aclose()
