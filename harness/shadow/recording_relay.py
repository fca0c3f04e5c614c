"""The recording relay: the tap on the legacy stack's provider calls (``--primary legacy``).

Under replay the mirror side is answered with the provider calls the primary made. The
SDK proxy reports its own (:mod:`harness.shadow.upstream_tap`); the legacy stack's run in
the LiteLLM server, another process, so shadow mode puts this relay in front of the
provider instead::

    client -> shadow mode (Forwarder) -> legacy proxy -> LiteLLM server
                                                           | api_base: the relay
                                                           v
                            RecordingRelay /_relay/<i>/... -> the deployment's own base URL

The LiteLLM server runs on a derived copy of ``config.yaml`` whose deployment ``i`` has
``api_base: http://RELAY/_relay/<i>`` (:func:`~harness.shadow.mirror_stack.derive_relay_config`;
the user's file is never edited). The relay forwards each call to that deployment's own
base URL unchanged (a memory router in the path stays in it), streams the answer back as
it arrives, and records the exchange as the tap records the SDK proxy's
(:data:`~harness.shadow.upstream_tap.CallRecord`: bytes and timing).

Which client request a call belongs to: the :class:`~harness.shadow.forwarder.Forwarder`
opens each mirrored request's record list under its content key (the last user turn and
the stream flag, hashed: :func:`~harness.shadow.replay_upstream.replay_key`, which holds
across both API formats and whatever the hops do to headers) while the request is in
flight; a call is added to the oldest open list with its key. A call that matches none
(the request was not mirrored, or has no user turn) is forwarded all the same and only
counted (``unclaimed``). The relay never changes what the legacy stack sends or gets.

It runs on its own server thread (:class:`~harness.loopback.LoopbackServer`), so the open
lists are guarded by a lock.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from harness.shadow import upstream_tap
from harness.shadow.forwarder import forwarding_client, read_body
from harness.shadow.replay_upstream import replay_key
from harness.shadow.upstream_tap import Call
from memory_proxy.http_headers import HOP_BY_HOP_HEADERS

__all__ = ["RELAY_PREFIX", "RecordingRelay"]

RELAY_PREFIX = "/_relay/"
_NOT_FORWARDED = frozenset({*HOP_BY_HOP_HEADERS, "host", "content-length"})
# The answer is relayed (and recorded) decoded: its length and encoding are the server's.
_NOT_RETURNED = frozenset({*HOP_BY_HOP_HEADERS, "content-length", "content-encoding"})


class RecordingRelay:
    """An ASGI app; see the module docstring. ``bases``: deployment index -> the provider
    base URL its calls go on to."""

    def __init__(
        self, bases: Sequence[str], *, max_body_bytes: int, timeout: float = 600.0
    ) -> None:
        self.bases = [b.rstrip("/") for b in bases]
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self._lock = threading.Lock()
        self._open: dict[str, list[list[Call]]] = {}
        self._http: httpx.AsyncClient | None = None
        self.forwarded = 0
        self.unclaimed = 0

    # -- the primary's side -----------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self, client_body: bytes) -> Iterator[None]:
        """While the client request with ``client_body`` is forwarded: its provider calls
        go into the record the tap opened for it (none when it is not mirrored)."""
        calls = upstream_tap.current()
        key = replay_key(client_body) if calls is not None else None
        if calls is None or key is None:
            yield
            return
        with self._lock:
            self._open.setdefault(key, []).append(calls)
        try:
            yield
        finally:
            with self._lock:
                waiting = self._open.get(key, [])
                if any(c is calls for c in waiting):
                    waiting[:] = [c for c in waiting if c is not calls]
                if not waiting:
                    self._open.pop(key, None)

    def _claim(self, body: bytes) -> list[Call] | None:
        key = replay_key(body)
        with self._lock:
            waiting = self._open.get(key or "")
            if not waiting:
                self.unclaimed += 1
                return None
            # The oldest request in flight first; a retried call finds the same one.
            return waiting[0]

    # -- ASGI -------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = forwarding_client(self.timeout)
        return self._http

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            if self._http is not None:
                await self._http.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        base, rest = self._route(scope["path"])
        body = await read_body(receive)
        if base is None:
            await _send_error(send, 404, "no such deployment behind the recording relay")
            return
        query = scope.get("query_string", b"").decode("latin-1")
        url = base + rest + (f"?{query}" if query else "")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _NOT_FORWARDED
        ]
        record = Call(scope["method"], url, headers, body, self.max_body_bytes)
        claimed = self._claim(body)
        if claimed is not None:
            claimed.append(record)
        self.forwarded += 1
        await self._forward(record, send)

    def _route(self, path: str) -> tuple[str | None, str]:
        """``/_relay/<i>/rest`` -> (deployment i's base URL, ``/rest``)."""
        if not path.startswith(RELAY_PREFIX):
            return None, path
        index, _, rest = path.removeprefix(RELAY_PREFIX).partition("/")
        if not index.isdigit() or int(index) >= len(self.bases):
            return None, path
        return self.bases[int(index)], "/" + rest if rest else ""

    async def _forward(self, record: Call, send: Send) -> None:
        client = self._client()
        request = client.build_request(
            record.method, record.url, headers=record.headers, content=record.body
        )
        try:
            reply = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            record.end(type(exc).__name__)
            await _send_error(send, 502, f"the provider is unreachable: {type(exc).__name__}")
            return
        try:
            record.response(reply.status_code, reply.headers.items())
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in reply.headers.items()
                        if k.lower() not in _NOT_RETURNED
                    ],
                }
            )
            async for chunk in reply.aiter_bytes():
                if chunk:
                    record.chunk(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            record.end()
            await send({"type": "http.response.body", "body": b""})
        except BaseException as exc:
            record.end(type(exc).__name__)
            raise
        finally:
            await reply.aclose()


async def _send_error(send: Send, status: int, message: str) -> None:
    # Readable by either API's client: Anthropic's envelope, with OpenAI's ``error`` key.
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": "api_error", "message": f"shadow recording relay: {message}"},
    }
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
