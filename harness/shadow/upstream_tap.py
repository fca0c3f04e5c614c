"""The tap on the primary's provider calls: what it sent and what came back, per request.

The SDK proxy reports every provider call to the observer it was built with
(``memory_proxy.upstream_observer``). :class:`UpstreamTap` is that observer in shadow
mode: :func:`begin` opens a list for the client request being served (a context
variable, so concurrent requests never mix; tasks the handler starts inherit it), each
provider call made while serving it appends a :class:`Call`, and :func:`finish` closes
the list and returns the calls as plain tuples (:data:`CallRecord`) that cross to the
mirror sidecar with the primary's answer. Requests that are not mirrored open no list,
and their calls are not recorded.

On the request path this costs a few attribute writes and one clock read per chunk; the
records are decoded only on the mirror side, to replay them to the other proxy
(:mod:`harness.shadow.replay_upstream`) and to store what each side sent the provider.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from time import perf_counter

__all__ = ["Call", "CallRecord", "UpstreamTap", "begin", "current", "finish"]

# (started, method, url, request headers, request body, status, response headers,
#  headers_at, [(perf_counter, chunk)], ended_at, error); times are perf_counter readings.
CallRecord = tuple[
    float,
    str,
    str,
    list[tuple[str, str]],
    bytes,
    int | None,
    list[tuple[str, str]],
    float | None,
    list[tuple[float, bytes]],
    float | None,
    str | None,
]

_CALLS: contextvars.ContextVar[list[Call] | None] = contextvars.ContextVar(
    "shadow_upstream_calls", default=None
)


class Call:
    """One provider call being recorded (the SDK proxy's, or one the recording relay
    forwards for the legacy stack)."""

    __slots__ = (
        "started",
        "method",
        "url",
        "headers",
        "body",
        "status",
        "response_headers",
        "headers_at",
        "chunks",
        "room",
        "ended_at",
        "error",
    )

    def __init__(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, room: int
    ) -> None:
        self.started = perf_counter()
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.status: int | None = None
        self.response_headers: list[tuple[str, str]] = []
        self.headers_at: float | None = None
        self.chunks: list[tuple[float, bytes]] = []
        self.room = room
        self.ended_at: float | None = None
        self.error: str | None = None

    def response(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.status = status
        # Plain str: aiohttp's header names are a str subclass, which marshal (the way
        # records cross to the mirror sidecar) refuses.
        self.response_headers = [(str(k), str(v)) for k, v in headers]
        self.headers_at = perf_counter()

    def chunk(self, data: bytes) -> None:
        # Beyond the capture bound the call cannot be replayed whole; keep the timing.
        if len(data) > self.room:
            data = data[: max(self.room, 0)]
            self.error = self.error or "truncated"
        self.room -= len(data)
        self.chunks.append((perf_counter(), data))

    def end(self, error: str | None = None) -> None:
        if self.ended_at is None:
            self.ended_at = perf_counter()
            self.error = self.error or error

    def record(self) -> CallRecord:
        return (
            self.started,
            self.method,
            self.url,
            self.headers,
            self.body,
            self.status,
            self.response_headers,
            self.headers_at,
            self.chunks,
            self.ended_at,
            self.error,
        )


class UpstreamTap:
    """The SDK proxy's upstream observer in shadow mode (see the module docstring)."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def call(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Call | None:
        calls = _CALLS.get()
        if calls is None:
            return None
        call = Call(method, url, [(str(k), str(v)) for k, v in headers], body, self.max_body_bytes)
        calls.append(call)
        return call


def begin() -> contextvars.Token[list[Call] | None]:
    """Record the provider calls made from here on in this context (one client request)."""
    return _CALLS.set([])


def current() -> list[Call] | None:
    """The record opened for the client request served in this context, if any."""
    return _CALLS.get()


def finish(token: contextvars.Token[list[Call] | None]) -> tuple[CallRecord, ...]:
    """Stop recording; the calls made since :func:`begin`, in the order they started."""
    calls = _CALLS.get() or []
    _CALLS.reset(token)
    return tuple(call.record() for call in calls)
