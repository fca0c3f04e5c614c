"""One structured log line per request, and the ``x-request-id`` the client gets back.

When the response already carries an ``x-request-id`` (OpenAI's, relayed from the
provider, which the OpenAI SDK reads as the request's id), the client keeps that one;
the line is logged under the id the client saw, with the proxy's own as
``proxy_request_id``, so a client's id still finds its line.

A pure ASGI middleware, so a stream's line is written when its last byte is sent (or
when the client goes away), with the real latency. Handlers add fields with
:func:`annotate`; no prompt text or credential is ever logged.

It is also where a :class:`RequestObserver` (the app's metrics) sees each request: the
status, whether the answer is an event stream, the first body byte, the end. One wrapper
of ``send`` for both, since every wrapper is one more coroutine call per message, which a
stream pays per event relayed (0.2-0.4 us each on a loaded 2-core host; a long answer has
hundreds of events).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from typing import Any, Protocol

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory_proxy.errors import ProxyError

__all__ = ["AccessLog", "RequestObserver", "annotate", "new_request_id", "note_retry"]

logger = logging.getLogger("memory_proxy.access")

# Request ids: a random per-process prefix and a counter. Unique per process run and
# cheap (uuid4 reads os.urandom on every request); a forked worker draws its own prefix.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = os.urandom(6).hex()
    _ID_COUNTER = itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)
# One encoder for every line: json.dumps builds a new one per call when given options.
_ENCODE = json.JSONEncoder(separators=(",", ":"), default=str).encode


def annotate(request: Request, **fields: Any) -> None:
    """Add fields to this request's access-log line."""
    log = request.scope.setdefault("state", {}).setdefault("access_log", {})
    log.update(fields)


def note_retry(request: Request, error: ProxyError) -> None:
    """Add the kind of failure that made the proxy call upstream again to ``retried``."""
    log = request.scope.setdefault("state", {}).setdefault("access_log", {})
    log.setdefault("retried", []).append(error.kind.value)


def new_request_id() -> str:
    return f"req_{_ID_PREFIX}{next(_ID_COUNTER):012x}"


_EVENT_STREAM = b"text/event-stream"


class RequestObserver(Protocol):
    """Watches every HTTP request the access log sees."""

    def stream_started(self, scope: Scope) -> None:
        """The answer has begun, as an event stream."""

    def request_ended(
        self,
        scope: Scope,
        fields: dict[str, Any],
        *,
        status: int,
        stream: bool,
        latency: float,
        first_byte: float | None,
        disconnected: bool,
    ) -> None:
        """The app is done with the request. ``fields``: the line's annotations; times in
        seconds from the request; ``status`` 0 when no answer was begun; ``disconnected``:
        one begun and never ended (the client left, or its send failed)."""


class AccessLog:
    def __init__(
        self, app: ASGIApp, *, service: str, observer: RequestObserver | None = None
    ) -> None:
        self.app = app
        self.service = service
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        fields: dict[str, Any] = state.setdefault("access_log", {})
        started = time.perf_counter()
        status = 0
        logged = False
        client_id = request_id
        observer = self.observer
        stream = False
        first_byte_at: float | None = None
        last_sent = False  # the app sent the answer's last part (its send may still fail)

        def write(outcome: str) -> None:
            nonlocal logged
            if logged or not logger.isEnabledFor(logging.INFO):
                return
            logged = True
            line = {
                "event": "request",
                "service": self.service,
                "request_id": client_id,
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                "outcome": outcome,
                **fields,
            }
            logger.info(_ENCODE(line))

        async def send_with_id(message: Message) -> None:
            nonlocal status, client_id, stream, first_byte_at, last_sent
            if message["type"] == "http.response.body":
                if first_byte_at is None and message.get("body"):
                    first_byte_at = time.perf_counter()
                if message.get("more_body"):
                    await send(message)
                    return
                last_sent = True
                await send(message)
                write("complete")
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                relayed = None
                for name, value in headers:
                    key = name.lower()
                    if key == b"x-request-id":
                        if relayed is None:
                            relayed = value
                    elif key == b"content-type" and value.startswith(_EVENT_STREAM):
                        stream = True
                if relayed is None:
                    message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
                else:
                    client_id = relayed.decode("latin-1")
                    fields["proxy_request_id"] = request_id
                if stream and observer is not None:
                    observer.stream_started(scope)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if observer is not None:
                observer.request_ended(
                    scope,
                    fields,
                    status=status,
                    stream=stream,
                    latency=time.perf_counter() - started,
                    first_byte=None if first_byte_at is None else first_byte_at - started,
                    disconnected=bool(status) and not last_sent,
                )
            write("disconnected" if status else "aborted")
