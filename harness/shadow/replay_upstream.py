"""The replay upstream: the mirror side's provider, answering with what the primary got.

In replay mode (``shadow.upstream: replay``) the mirror proxy's provider base URLs point
here, so nothing the mirror side sends reaches the provider or the memory router: memory
is written once, spend is not doubled, and the answer the mirror side gets is the one the
model gave the primary, so every difference between the two proxies' answers is the
proxies' own, not the model's randomness.

::

    mirror engine: expect(primary's recorded calls) --> a registration, keyed by content
    mirror proxy --provider call--> ReplayUpstream: key of the call's body
        found: the registration's next recorded call: its status and headers after the
               primary's time to headers, then each body chunk at the primary's offset;
               the call received is kept (what the mirror side sent the provider)
        not found: 502, an error in both APIs' shape (``replay_miss``), counted and kept
               as an unattached call (the report's accounting gate); nothing is
               forwarded anywhere
    mirror engine: release(registration) once the mirror request is answered

A call that carries the harness's own id of the mirrored request (``x-shadow-request``,
which the mirror engine puts on the mirror request) gets that request's registration,
where the mirror stack passes the header on; the legacy proxy forwards a closed list of
headers and does not. Otherwise the key decides: the one the harness correlates
provider calls with, without the memory user
id (:func:`~harness.observation.correlation_key`): the last user turn's text and the
stream flag, hashed. It holds in both API formats, whatever model id or memory headers
each proxy sends, so a proxy that drops a memory header still gets its answer (and the
upstream gates see the drop). Identical requests in flight share a key; any of their
recorded answers is one the provider gave for that request, and among them the one whose
recorded ``x-sm-user-id`` is the call's goes first, so two users' identical turns keep
their own answers while a call that lost the header is still answered.

Retries: a registration answers its calls in the order the primary's calls were made,
then repeats the last. A primary that retried after a 429 therefore replays as the same
429 then the success, to a mirror that retries too; a mirror that retries where the
primary did not gets the same recorded answer again.

The latency twin (:mod:`harness.shadow.engine`: the SDK build timed beside the mirror) has
a book of its own, under the path prefix ``/_twin`` (:class:`ReplayRouter`): its calls
are answered the same way, from the same recorded calls, but never claim the mirror's
registrations, so what the mirror side sent the provider stays the mirror's alone.

The app runs on its own server thread (:class:`~harness.loopback.LoopbackServer`), so the
registry is guarded by a lock; answers are paced on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from harness.shadow.targets import SHADOW_HEADER
from harness.shadow.upstream_tap import CallRecord
from harness.upstream.join import call_key, is_accounted
from memory_proxy.http_headers import HOP_BY_HOP_HEADERS

__all__ = [
    "MISS_STATUS",
    "TWIN_PREFIX",
    "ReceivedCall",
    "Registration",
    "ReplayRouter",
    "ReplayUpstream",
    "replay_key",
]

MISS_STATUS = 502
# Unattached calls held between two takes by the mirror caller (it takes them after each
# mirror it sends): a bound, not an expected number.
_UNATTACHED_KEPT = 1000
# The latency twin's provider base URLs start with this on the replay upstream.
TWIN_PREFIX = "/_twin"
MEMORY_USER = "x-sm-user-id"
# Re-framed here: the body is sent as recorded (already decoded by the primary's client).
_NOT_REPLAYED = frozenset({*HOP_BY_HOP_HEADERS, "content-length", "content-encoding"})


def replay_key(body: bytes) -> str | None:
    """The content key of a provider call's body; None when it has no user turn."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    return call_key(parsed)


@dataclass(frozen=True)
class ReceivedCall:
    """One provider call the mirror side made, as it arrived here."""

    time: float  # unix seconds
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    status: int  # what it was answered
    duration_ms: float
    answer_headers: list[tuple[str, str]] = field(default_factory=list)  # as replayed
    # Claimed by its content key, not by the harness's id of the request: one of the
    # identical requests in flight then, maybe another than the one that made it.
    by_key: bool = False


@dataclass
class Registration:
    """The primary's recorded calls for one mirrored request, and what the mirror sent."""

    key: str
    calls: Sequence[CallRecord]
    request_id: str | None = None  # the harness's id of the mirrored request
    user_id: str | None = None  # the memory user id the primary's call carried
    served: int = 0
    received: list[ReceivedCall] = field(default_factory=list)
    registered: float = field(default_factory=time.time)

    def next_call(self) -> CallRecord:
        call = self.calls[min(self.served, len(self.calls) - 1)]
        self.served += 1
        return call


class ReplayUpstream:
    """An ASGI app; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[Registration]] = {}
        self._by_id: dict[str, Registration] = {}
        self.misses = 0
        self.served = 0
        self._unattached: list[ReceivedCall] = []

    # -- the mirror engine's side ----------------------------------------------------------

    def expect(
        self, calls: Sequence[CallRecord], request_id: str | None = None
    ) -> Registration | None:
        """Register the primary's calls for the mirrored request ``request_id``; None when
        there is nothing to replay (no call, or none with a user turn to key it by)."""
        key = next((k for k in (replay_key(c[4]) for c in calls) if k is not None), None)
        if key is None:
            return None
        sent = {name.lower(): value for name, value in calls[0][3]} if calls else {}
        registration = Registration(key, list(calls), request_id, sent.get(MEMORY_USER))
        with self._lock:
            self._waiting.setdefault(key, []).append(registration)
            if request_id is not None:
                self._by_id[request_id] = registration
        return registration

    def release(self, registration: Registration) -> None:
        with self._lock:
            waiting = self._waiting.get(registration.key, [])
            if registration in waiting:
                waiting.remove(registration)
                _take_back(registration, waiting)
            if not waiting:
                self._waiting.pop(registration.key, None)
            if registration.request_id is not None:
                self._by_id.pop(registration.request_id, None)

    def _claim(
        self, key: str | None, request_id: str | None, user_id: str | None = None
    ) -> tuple[Registration, CallRecord] | None:
        with self._lock:
            # The harness's own id first, where the mirror stack passed it on: two users'
            # identical turns in flight at once then never swap answers.
            exact = self._by_id.get(request_id) if request_id is not None else None
            if exact is not None:
                self.served += 1
                return exact, exact.next_call()
            waiting = self._waiting.get(key or "")
            if not waiting:
                self.misses += 1
                return None
            # The same memory user first (a tie-break, never a requirement), then the
            # least-served: a new request before another's retry.
            registration = min(waiting, key=lambda r: (r.user_id != user_id, r.served))
            self.served += 1
            return registration, registration.next_call()

    # -- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        arrived, wall = time.perf_counter(), time.time()
        parts: list[bytes] = []
        more = True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(parts)
        # Decoded once: for the lookups here and for the record of what the mirror sent.
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        named = {k.lower(): v for k, v in headers}
        request_id = named.get(SHADOW_HEADER)
        claimed = self._claim(replay_key(body), request_id, named.get(MEMORY_USER))
        if claimed is None:
            status = MISS_STATUS
            await _send_miss(send)
        else:
            registration, call = claimed
            status = call[5] or MISS_STATUS
            await _send_recorded(send, call, arrived)
        received = ReceivedCall(
            time=wall,
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            status=status,
            duration_ms=(time.perf_counter() - arrived) * 1000,
            answer_headers=list(claimed[1][6]) if claimed is not None else [],
            by_key=claimed is not None
            and (request_id is None or claimed[0].request_id != request_id),
        )
        with self._lock:
            if claimed is not None:
                claimed[0].received.append(received)
            elif is_accounted(received.method):
                # No mirrored request claims it (a duplicate sent after its request was
                # answered, a call the primary never made): kept for the accounting gate.
                self._unattached.append(received)
                del self._unattached[:-_UNATTACHED_KEPT]

    def take_unattached(self) -> list[ReceivedCall]:
        """The calls no registration claimed since the last take (the newest
        ``_UNATTACHED_KEPT`` of them when more came)."""
        with self._lock:
            taken, self._unattached = self._unattached, []
        return taken


class ReplayRouter:
    """The replay upstream's one listener: ``/_twin/...`` to the twin's book (the prefix
    removed), everything else to the mirror's."""

    def __init__(self, mirror: ReplayUpstream, twin: ReplayUpstream | None = None) -> None:
        self.mirror = mirror
        self.twin = twin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.twin is not None and scope["type"] == "http" and path.startswith(TWIN_PREFIX + "/"):
            inner = path[len(TWIN_PREFIX) :]
            scope = {**scope, "path": inner, "raw_path": inner.encode("latin-1")}
            await self.twin(scope, receive, send)
            return
        await self.mirror(scope, receive, send)


def _take_back(registration: Registration, siblings: Sequence[Registration]) -> None:
    """A mirrored request answered without any call of its own on record, while an
    identical one (same key) in flight holds a call claimed by key since this one was
    registered: that call was this request's. Identical requests in flight share a key,
    and a call without the harness's id (the legacy proxy does not pass it on) goes to
    the least-served of them, which may be another one's; left there, one pair would show
    a provider call too many and the other one too few. Only the count is at stake: the
    siblings' recorded answers are the same provider's for the same turn."""
    if registration.received or not registration.calls:
        return
    for sibling in siblings:
        for index, call in enumerate(sibling.received):
            if call.by_key and call.time >= registration.registered:
                registration.received.append(sibling.received.pop(index))
                return


async def _pause_until(arrived: float, offset_s: float) -> None:
    delay = arrived + offset_s - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def _send_recorded(send: Send, call: CallRecord, arrived: float) -> None:
    started, _, _, _, _, status, headers, headers_at, chunks, _, _ = call
    kept = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers
        if k.lower() not in _NOT_REPLAYED
    ]
    streamed = any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in kept)
    if not streamed:
        # A whole body, framed by its length as the provider's was.
        body = b"".join(data for _, data in chunks)
        kept.append((b"content-length", str(len(body)).encode()))
    await _pause_until(arrived, (headers_at - started) if headers_at is not None else 0.0)
    await send({"type": "http.response.start", "status": status or MISS_STATUS, "headers": kept})
    if not streamed:
        await _pause_until(arrived, (chunks[-1][0] - started) if chunks else 0.0)
        await send({"type": "http.response.body", "body": body})
        return
    for at, data in chunks:
        await _pause_until(arrived, at - started)
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_miss(send: Send) -> None:
    # Readable by either API's client: Anthropic's envelope, with OpenAI's ``error`` key.
    body: dict[str, Any] = {
        "type": "error",
        "error": {
            "type": "replay_miss",
            "message": "shadow replay: no recorded provider answer for this request "
            "(the primary made no such call); nothing was forwarded",
        },
    }
    await send(
        {
            "type": "http.response.start",
            "status": MISS_STATUS,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
