"""The mutating relay: forwards everything to one upstream, seeding the current defect.

Test code, placed on ONE side of shadow mode (:mod:`harness.selftest.defects` says where
each defect belongs): in front of a proxy (``answer`` place, it changes what the client
gets) or between a proxy and its provider (``request`` place, it changes the provider
call). The defect is switched at run time, so one stack serves the whole catalogue::

    PUT /_relay/defect   {"defect": "drop cookie"}   (null: no defect, a plain relay)
    GET /_relay/defect   -> {"defect": ...}

With no defect the relay passes bytes through as they come, chunk by chunk. A stream
whose events a defect changes is read whole first (its timing is not what the defect is
about). The latency defects hold what they say: an answer's start by 3 ms, or a stream's
first token (the first event carrying content, as the report's TTFT counts it) by a fifth
of the time since the request came in.

The same relay, never seeded, also sits in front of the latency twin and between it and
its provider (:mod:`harness.selftest.run`): both timed sides go through the same hops.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from harness.selftest.defects import (
    Defect,
    Place,
    answer_delay,
    defect_named,
    first_token_delay,
    mutate_answer_body,
    mutate_answer_events,
    mutate_answer_head,
    mutate_request,
)
from harness.shadow.forwarder import read_body
from harness.shadow.sampling import endpoint_of
from harness.sse import SseDecoder, first_token_offset, format_of
from memory_proxy.api_formats import FormatName

__all__ = ["CONTROL_PATH", "MutatingRelay"]

CONTROL_PATH = "/_relay/defect"
# Not relayed: the connection's own framing, and compression (the relay must read bodies).
_HOP = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "accept-encoding",
        "content-encoding",
    }
)
_STREAM_EDITS = frozenset(
    {
        "drop final stream event",
        "cut a stream mid-way",
        "change finish reason",
        "change usage numbers",
        "change a tool argument",
    }
)


class MutatingRelay:
    """An ASGI app relaying to ``upstream``; see the module docstring."""

    def __init__(self, upstream: str, place: Place) -> None:
        self.upstream = upstream.rstrip("/")
        self.place = place
        self.defect: Defect | None = None
        # A bare transport, not a client: a client's cookie jar would put back on every
        # call the cookie a defect removed (and hold cookies no proxy asked it to).
        self._transport: httpx.AsyncHTTPTransport | None = None

    def _active(self) -> Defect | None:
        return self.defect if self.defect is not None and self.defect.place == self.place else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self._transport is not None:
                await self._transport.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        began = time.perf_counter()
        body = await read_body(receive)
        if scope["path"] == CONTROL_PATH:
            await self._control(scope["method"], body, send)
            return
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport()
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _HOP
        ]
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.upstream + scope["path"] + (f"?{query}" if query else "")
        defect = self._active()
        calls = mutate_request(defect, headers, body) if self.place == "request" else []
        calls = calls or [(headers, body)]
        for extra_headers, extra_body in calls[:-1]:
            # The duplicate: sent and read to the end, its answer thrown away.
            extra = await self._send(scope["method"], url, extra_headers, extra_body)
            await extra.aread()
            await extra.aclose()
        last_headers, last_body = calls[-1]
        reply = await self._send(scope["method"], url, last_headers, last_body)
        try:
            answer_defect = defect if self.place == "answer" else None
            fmt = format_of(endpoint_of(scope["method"], scope["path"]) or "")
            await self._answer(reply, answer_defect, send, began, fmt)
        finally:
            await reply.aclose()

    async def _send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> httpx.Response:
        assert self._transport is not None
        request = httpx.Request(method, url, headers=headers, content=body)
        return await self._transport.handle_async_request(request)

    async def _answer(
        self,
        reply: httpx.Response,
        defect: Defect | None,
        send: Send,
        began: float,
        fmt: FormatName,
    ) -> None:
        headers = [(k, v) for k, v in reply.headers.multi_items() if k.lower() not in _HOP]
        streamed = reply.headers.get("content-type", "").startswith("text/event-stream")
        if delay := answer_delay(defect):
            await asyncio.sleep(delay)
        if streamed and (defect is None or defect.name not in _STREAM_EDITS):
            status, headers = mutate_answer_head(defect, reply.status_code, headers, None)
            await _start(send, status, headers)
            # Decoded only while a defect may hold the first token.
            decoder = SseDecoder() if first_token_delay(defect, 1.0) else None
            async for chunk in reply.aiter_bytes():
                if decoder is not None and first_token_offset(decoder.feed(chunk), fmt) is not None:
                    decoder = None
                    await asyncio.sleep(first_token_delay(defect, time.perf_counter() - began))
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        body = await reply.aread()
        status, headers = mutate_answer_head(defect, reply.status_code, headers, body)
        if streamed:
            events = [e + b"\n\n" for e in body.replace(b"\r\n", b"\n").split(b"\n\n") if e]
            body = b"".join(mutate_answer_events(defect, events))
        else:
            body = mutate_answer_body(defect, reply.status_code, body)
            headers.append(("content-length", str(len(body))))
        await _start(send, status, headers)
        await send({"type": "http.response.body", "body": body})

    async def _control(self, method: str, body: bytes, send: Send) -> None:
        status = 200
        if method == "PUT":
            try:
                name = json.loads(body).get("defect")
                self.defect = defect_named(name)
            except (ValueError, AttributeError, KeyError):
                status = 400
        payload: dict[str, Any] = {
            "defect": self.defect.name if self.defect else None,
            "place": self.place,
        }
        data = json.dumps(payload).encode()
        await _start(send, status, [("content-type", "application/json")])
        await send({"type": "http.response.body", "body": data})


async def _start(send: Send, status: int, headers: list[tuple[str, str]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
