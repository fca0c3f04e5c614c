"""A minimal streaming reverse proxy: how shadow mode serves clients from the legacy URL.

Used with ``--primary legacy``: the client's request goes to the legacy proxy as it came,
and the reply streams back as it arrives, so the mirror can tap it like any ASGI app.
Under replay, the legacy stack's provider calls for the request are recorded meanwhile by
the recording relay (:mod:`harness.shadow.recording_relay`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
from starlette.types import Message, Receive, Scope, Send

from memory_proxy.http_headers import HOP_BY_HOP_HEADERS as _HOP_BY_HOP

if TYPE_CHECKING:
    from harness.shadow.recording_relay import RecordingRelay

__all__ = ["Forwarder", "forwarding_client", "read_body"]

_RESPONSE_DROPPED = {
    "content-length",
    "connection",
    "transfer-encoding",
    "content-encoding",
    "keep-alive",
    "date",
    "server",
}


class Forwarder:
    def __init__(
        self, url: str, *, timeout: float = 600.0, relay: RecordingRelay | None = None
    ) -> None:
        """``relay``: records the provider calls the legacy stack makes for each request."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.relay = relay
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = forwarding_client(self.timeout)
        return self._http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _HOP_BY_HOP
        ]
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.url + scope["path"] + (f"?{query}" if query else "")
        recording = self.relay.recording(body) if self.relay else contextlib.nullcontext()
        with recording:
            await self._forward(scope["method"], url, headers, body, send)

    async def _forward(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, send: Send
    ) -> None:
        client = self._client()
        request = client.build_request(method, url, headers=headers, content=body)
        try:
            reply = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            await _send_error(send, exc)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in reply.headers.items()
                        if k.lower() not in _RESPONSE_DROPPED
                    ],
                }
            )
            async for chunk in _chunks(reply):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await reply.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def forwarding_client(timeout: float) -> httpx.AsyncClient:
    """The HTTP client of a loopback relay: many connections, no proxy from the env."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
        trust_env=False,
    )


async def read_body(receive: Receive) -> bytes:
    """A request's whole body, however many ``http.request`` messages it came in."""
    parts = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _chunks(reply: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in reply.aiter_bytes():
        if chunk:
            yield chunk


async def _send_error(send: Send, exc: Exception) -> None:
    body = (
        '{"error":{"message":"the proxy behind shadow mode is unreachable: '
        + type(exc).__name__
        + '","type":"api_error","param":null,"code":"upstream_error"}}'
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
