"""One structured log line per request, and the ``x-request-id`` the client gets back.

When the response already carries an ``x-request-id`` (OpenAI's, relayed from the
provider, which the OpenAI SDK reads as the request's id), the client keeps that one;
the line is logged under the id the client saw, with the proxy's own as
``proxy_request_id``, so a client's id still finds its line.

A pure ASGI middleware, so a stream's line is written when its last byte is sent (or
when the client goes away), with the real latency. Handlers add fields with
:func:`annotate`; no prompt text or credential is ever logged.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory_proxy.errors import ProxyError

__all__ = ["AccessLog", "annotate", "new_request_id", "note_retry"]

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


class AccessLog:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

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
            nonlocal status, client_id
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                relayed = next((v for k, v in headers if k.lower() == b"x-request-id"), None)
                if relayed is None:
                    message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
                else:
                    client_id = relayed.decode("latin-1")
                    fields["proxy_request_id"] = request_id
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                write("complete")

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            write("disconnected" if status else "aborted")
