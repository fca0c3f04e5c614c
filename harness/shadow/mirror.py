"""``ShadowMirror``: ASGI middleware that mirrors requests without touching the answer.

On the request path it only taps ``receive`` (to keep a copy of the body) and ``send``
(to time and keep a capped copy of the primary's answer), and hands both to a
:class:`Dispatch`: the request once its body is complete, the answer once it has ended.
Nothing the dispatch does is awaited by the client's request, and nothing can raise
into it.

Whether a request is mirrored at all is the dispatch's decision, made in one order
drawn in :mod:`harness.shadow.dispatch`. Two dispatches exist: ``LocalDispatch`` runs
the mirror engine on this event loop (tests, and ``shadow.mirror_process: false``);
``SidecarDispatch`` (:mod:`harness.shadow.sidecar`) ships both halves to a mirror
process of its own, so the shadow call, decoding, redaction and SQLite cost the primary
no CPU time.
"""

from __future__ import annotations

import json
import time
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.settings import HarnessSettings
from harness.shadow import upstream_tap
from harness.shadow.dispatch import Dispatch
from harness.shadow.engine import SHADOW_HEADER, MirrorRequest, MirrorStats, PairSink
from harness.shadow.recorder import TapRecord
from harness.shadow.sampling import endpoint_of

__all__ = [
    "SHADOW_HEADER",
    "MirrorStats",
    "PairSink",
    "ShadowMirror",
]

STATS_PATH = "/_shadow/stats"
PREREAD_LIMIT = 32 * 1024 * 1024


class ShadowMirror:
    """Serves ``app`` and hands what it saw to ``dispatch``. Which dispatch, and so where
    the mirror runs, is decided once, by the caller (``build_shadow``, or a test)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: HarnessSettings,
        dispatch: Dispatch,
        tap_upstream: bool = False,
    ) -> None:
        """``tap_upstream``: ``app`` reports its provider calls to an
        :class:`~harness.shadow.upstream_tap.UpstreamTap`; each mirrored request's calls
        then go with its answer (replay mode needs them)."""
        self.app = app
        self.settings = settings
        self.dispatch = dispatch
        self.tap_upstream = tap_upstream
        self.seen = 0

    def stats(self) -> dict[str, Any]:
        """What ``GET /_shadow/stats`` shows: the dispatch's counters and requests seen."""
        return {**self.dispatch.stats(), "seen": self.seen}

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == STATS_PATH:
            await _send_json(send, self.stats())
            return
        endpoint = endpoint_of(scope["method"], scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        await self._serve_and_mirror(scope, receive, send, endpoint)

    async def _serve_and_mirror(
        self, scope: Scope, receive: Receive, send: Send, endpoint: str
    ) -> None:
        self.seen += 1
        began = perf_counter()
        received_at = time.time()
        token: object | None = None
        # Read the body before the app does (it arrives no later for that), so the mirror
        # has it even when the primary answers without reading it (a 401, say). A body
        # larger than the pre-read bound streams on to the app and is not mirrored.
        parts: list[bytes] = []
        size = 0
        more = scope["method"] != "GET"
        held: Message | None = None
        while more and size <= PREREAD_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                held = message
                break
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            more = message.get("more_body", False)
        replay: list[Message] = [
            {"type": "http.request", "body": b"".join(parts), "more_body": more}
        ]
        if held is not None:
            replay.append(held)
        if held is None and not more:
            token = self._offer(scope, endpoint, replay[0]["body"], received_at)
        elif size > PREREAD_LIMIT:
            self.dispatch.skip("body_too_large")

        async def tapped_receive() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        if token is None:
            await self.app(scope, tapped_receive, send)
            return

        # The tap runs once per chunk of every answer: plain locals, no method calls, and
        # the clock read only (offsets and decoding happen where the record is observed).
        room = self.settings.capture.max_body_bytes
        chunks: list[tuple[float, bytes]] = []
        status: int | None = None
        raw_headers: list[tuple[bytes, bytes]] = []
        headers_at: float | None = None
        ended_at: float | None = None
        truncated = False
        error: str | None = None

        async def tapped_send(message: Message) -> None:
            nonlocal room, status, raw_headers, headers_at, ended_at, truncated, error
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body:
                    if len(body) > room:
                        body = body[:room]
                        truncated = True
                    if body:
                        chunks.append((perf_counter(), body))
                        room -= len(body)
                if not message.get("more_body", False):
                    ended_at = perf_counter()
            elif message["type"] == "http.response.start":
                status = message["status"]
                raw_headers = list(message.get("headers", []))
                headers_at = perf_counter()
            try:
                await send(message)
            except BaseException:
                error = error or "client_disconnected"
                raise

        calls_token = upstream_tap.begin() if self.tap_upstream else None
        try:
            await self.app(scope, tapped_receive, tapped_send)
        except BaseException as exc:
            error = error or f"primary_error:{type(exc).__name__}"
            raise
        finally:
            calls = upstream_tap.finish(calls_token) if calls_token is not None else ()
            captured = self.settings.capture.max_body_bytes - room
            record: TapRecord = (
                began,
                status,
                raw_headers,
                chunks,
                captured,
                truncated,
                headers_at,
                ended_at if ended_at is not None else perf_counter(),
                error,
                calls,
            )
            self.dispatch.done(token, record)

    def _offer(self, scope: Scope, endpoint: str, body: bytes, received_at: float) -> object | None:
        try:
            request = MirrorRequest(
                endpoint=endpoint,
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                raw_headers=scope.get("headers", []),
                body=body,
                received_at=received_at,
            )
            return self.dispatch.offer(request)
        except Exception:  # noqa: BLE001 - mirroring must never fail the request
            self.dispatch.skip("error")
            return None

    # -- lifecycle ------------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.dispatch.start()
            elif message["type"] == "lifespan.shutdown":
                await self.dispatch.close()
            return message

        await self.app(scope, wrapped_receive, send)


async def _send_json(send: Send, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
