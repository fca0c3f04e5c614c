"""Anthropic's Messages API called directly over the shared session: a true pass-through.

For anthropic-provider models the proxy sends the client's body on as written (only
``model`` becomes the deployment's id) and relays the reply's bytes unchanged.
``litellm.anthropic_messages`` was the plan, but litellm 1.106.12 rewrites Messages
requests by its own model table: ``thinking: {type: enabled}`` becomes ``adaptive`` for
the Opus 5 family, ``budget_tokens`` is clamped and ``display`` dropped for Sonnet 4.5,
``output_config`` is removed for models it believes lack it, and ``anthropic-beta``
values are reordered. Claude Code sends what its model accepts; a memory proxy must not
second-guess it. The same cookie jar and aiohttp transport carry these calls.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from memory_proxy.errors import ProxyError, UpstreamRejected
from memory_proxy.model_table import Route
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = ["AnthropicUpstream", "UpstreamReplyError"]


class UpstreamReplyError(Exception):
    """A non-2xx reply, shaped like litellm's errors so one translator handles both."""

    def __init__(self, status_code: int, text: str, headers: httpx.Headers) -> None:
        super().__init__(_error_message(text) or f"upstream answered {status_code}")
        self.message = str(self)
        self.status_code = status_code
        self.litellm_response_headers = headers
        self.body_text = text


class AnthropicUpstream:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    def url(self, route: Route, suffix: str = "/v1/messages") -> str:
        base = route.deployment.api_base or "https://api.anthropic.com"
        return base.rstrip("/") + suffix

    def request(
        self,
        route: Route,
        body: dict[str, Any],
        headers: dict[str, str],
        suffix: str,
        query: str = "",
    ) -> httpx.Request:
        sent = {**headers, "content-type": "application/json"}
        if route.deployment.api_key:
            sent["x-api-key"] = route.deployment.api_key
        content = json.dumps({**body, "model": route.upstream_model_id}, ensure_ascii=False)
        url = self.url(route, suffix) + (f"?{query}" if query else "")
        return self.http.build_request("POST", url, content=content.encode(), headers=sent)

    async def send_json(self, request: httpx.Request) -> Any:
        """Send and return the parsed JSON reply; any failure as a ProxyError."""
        reply = await self._send(request, stream=False)
        try:
            return reply.json()
        except ValueError as exc:
            raise translate_upstream_error(
                UpstreamReplyError(502, "upstream reply is not valid JSON", reply.headers)
            ) from exc

    async def open_stream(self, request: httpx.Request) -> _ByteStream:
        reply = await self._send(request, stream=True)
        return _ByteStream(reply)

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            reply = await self.http.send(request, stream=stream)
        except Exception as exc:  # noqa: BLE001 - translated at this boundary
            raise translate_upstream_error(exc) from exc
        if reply.status_code >= 400:
            text = (await reply.aread()).decode("utf-8", errors="replace")
            await reply.aclose()
            raise _reply_error(reply.status_code, text, reply.headers)
        return reply


class _ByteStream:
    """The upstream's SSE bytes as they arrive; closing it releases the connection."""

    def __init__(self, reply: httpx.Response) -> None:
        self.reply = reply

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.reply.aiter_bytes():
                if chunk:
                    yield chunk
        finally:
            await self.reply.aclose()

    async def aclose(self) -> None:
        await self.reply.aclose()


def _reply_error(status: int, text: str, headers: httpx.Headers) -> ProxyError:
    error = translate_upstream_error(UpstreamReplyError(status, text, headers))
    if isinstance(error, UpstreamRejected):
        # The provider's own words for a request it refused; it is already this format.
        error.message = _error_message(text) or error.message
    return error


def _error_message(text: str) -> str:
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return text.strip()[:500]
