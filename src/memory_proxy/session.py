"""The process's one upstream HTTP session: pooled connections and a persistent cookie jar.

litellm builds every pooled client with a jar that blocks cookies, and
``litellm.aclient_session`` does not reach the Anthropic path, so a Cloudflare cookie
(``__cf_bm``) set on one reply would never come back. Here one ``httpx.AsyncClient`` with
an ordinary jar, on litellm's own aiohttp-backed transport (40-50 % less CPU than httpx's),
is handed to litellm on every call: wrapped in an ``AsyncHTTPHandler`` for the Anthropic
paths, and in an ``AsyncOpenAI`` per (base URL, key) for the OpenAI path. Built in the
app's lifespan and closed on shutdown, never per request.
"""

from __future__ import annotations

from typing import Any

import httpx
from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, get_default_headers
from openai import AsyncOpenAI

__all__ = ["UpstreamSession"]


class UpstreamSession:
    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            transport=AsyncHTTPHandler.create_async_transport(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            headers=get_default_headers(),
            follow_redirects=False,
            trust_env=False,
        )
        self.handler = AsyncHTTPHandler(timeout=timeout)
        # The handler built a client of its own (with the blocking jar); swap ours in.
        self._discarded = self.handler.client
        self.handler.client = self.http
        self._openai_clients: dict[tuple[str | None, str | None], AsyncOpenAI] = {}

    @property
    def cookies(self) -> httpx.Cookies:
        return self.http.cookies

    def openai_client(self, api_base: str | None, api_key: str | None) -> AsyncOpenAI:
        """An ``AsyncOpenAI`` over the shared session, one per base URL and key."""
        key = (api_base, api_key)
        client = self._openai_clients.get(key)
        if client is None:
            client = AsyncOpenAI(
                api_key=api_key or "unset",
                base_url=api_base,
                http_client=self.http,
                # Retries are the proxy's own (before the first byte only), not the SDK's.
                max_retries=0,
                timeout=self.timeout,
            )
            self._openai_clients[key] = client
        return client

    def client_for(self, provider: str, api_base: str | None, api_key: str | None) -> Any:
        """The ``client=`` argument litellm takes for ``provider``."""
        if provider == "openai":
            return self.openai_client(api_base, api_key)
        return self.handler

    async def aclose(self) -> None:
        await self.http.aclose()
        await self._discarded.aclose()
