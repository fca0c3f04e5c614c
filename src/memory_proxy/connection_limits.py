"""Connection limits uvicorn lacks: the request head and body on a clock, the head capped.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) and answers 503
past a number of connections (``limit_concurrency``). Nothing else is bounded: a client
that connects and sends nothing, or trickles its request head or body, holds a connection
for as long as it likes, and under httptools a head that never ends grows without limit.
:func:`uvicorn_settings` hands uvicorn the ``memory_proxy:`` limits and an HTTP protocol
(:func:`serve_with_limits` runs an app with them),
uvicorn's own with :class:`_RequestClock` in front of it, so that:

=====================  ============================================  ========================
the client ...         bounded by                                    answer
=====================  ============================================  ========================
sends nothing          ``header_timeout_seconds`` from the accept    close
trickles the head      ``header_timeout_seconds`` from the accept,   408, OpenAI format
                       or from the head's first byte when reused
sends a huge head      ``max_header_bytes``                          431, OpenAI format
trickles the body      ``body_timeout_seconds`` from the head's end  408, endpoint's format
idles after a reply    ``keep_alive_timeout_seconds`` (uvicorn)      close
is one too many        ``max_connections`` (uvicorn)                 503
=====================  ============================================  ========================

The body's clock is for the whole body, so that a trickle of one byte a second cannot hold
it either: a client must send ``max_body_bytes`` in ``body_timeout_seconds`` (the defaults
ask 10 MiB in 60 s). The 503 is uvicorn's own, in plain text.

The path is unknown until the head is complete, so head errors use the OpenAI shape. A
body timeout is answered only while the response has not started; once it has, the body
no longer holds anything up. Answers are written on the socket directly (the app never saw
the request, or is stuck waiting for its body and is told the client left), then the
connection is half-closed and drained for :data:`LINGER_SECONDS` before it is closed, so
the client reads the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import gc
import json
from http import HTTPStatus
from typing import Any, ClassVar, Literal

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from memory_proxy.api_formats import OPENAI, ApiFormat, error_format_for
from memory_proxy.config import ProxyOptions
from memory_proxy.errors import HeadersTooLarge, ProxyError, RequestTimeout

__all__ = ["LINGER_SECONDS", "serve_with_limits", "uvicorn_settings"]

# How long a connection that was refused is drained after its answer, at most.
LINGER_SECONDS = 2.0

_HEAD = "head"
_BODY = "body"


def uvicorn_settings(
    options: ProxyOptions, *, http: Literal["auto", "h11", "httptools"] = "auto"
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` or ``uvicorn.Config`` enforcing ``options``.

    ``http`` is uvicorn's option of the same name; "auto" is httptools, which uvicorn's
    ``standard`` extra installs.
    """
    base: type[_RequestClock] = _ClockedH11 if http == "h11" else _ClockedHttpTools
    protocol = type(f"{base.__name__}Limited", (base,), {"options": options})
    return {
        "http": protocol,
        "timeout_keep_alive": options.keep_alive_timeout_seconds,
        "limit_concurrency": options.max_connections,
        "h11_max_incomplete_event_size": options.max_header_bytes,
        "timeout_graceful_shutdown": int(options.shutdown_grace_seconds),
    }


def serve_with_limits(
    app: Any, options: ProxyOptions, *, host: str, port: int, log_level: str
) -> None:
    """Serve ``app`` with uvicorn under ``options``' limits until it is stopped.

    uvicorn's access log is off: the apps write their own line per request.

    Before serving, what start-up built (litellm's modules and model map: ~320,000
    objects) is moved out of the collector's reach (``gc.freeze``): a full collection of
    that heap takes ~170 ms of CPU here, a pause every request in flight would wait out;
    after the freeze, collections scan only what serving allocates.
    """
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        **uvicorn_settings(options),
    )


class _RequestClock(asyncio.Protocol):
    """Deadlines for one connection's request head and body, ahead of uvicorn's protocol.

    Subclasses put this first and uvicorn's H11Protocol or HttpToolsProtocol second, and
    tell the clock where the parser is: a head begun, a head complete, a body complete, a
    response complete. A head that begins while a response is still being written (the
    client pipelines) is timed from the end of that response, and is never answered in
    the middle of it.
    """

    options: ClassVar[ProxyOptions] = ProxyOptions()

    # Set by uvicorn's protocol, which follows this class in the MRO.
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    _phase: str | None = None
    _deadline: asyncio.TimerHandle | None = None
    _in_head = False  # part of a request head received, not the whole of it
    _head_bytes = 0
    _timed_cycle: Any = None  # the request whose body is on the clock
    # Set once the connection has been answered here: it is drained, no longer parsed.
    _linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start(_HEAD, self.options.header_timeout_seconds)

    def data_received(self, data: bytes) -> None:
        if self._linger is not None:
            return
        was_in_head = self._in_head
        super().data_received(data)
        self._follow_parser(received=True)
        if self._in_head and self._linger is None and not self.transport.is_closing():
            self._head_bytes = (self._head_bytes if was_in_head else 0) + len(data)
            if self._head_bytes > self.options.max_header_bytes:
                self._head_too_large()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    # -- what the parser reports ------------------------------------------------------------

    def _follow_parser(self, *, received: bool) -> None:
        """Read the parser's state after it was fed (h11); httptools calls back instead."""

    def _responding(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _head_begun(self) -> None:
        self._in_head = True
        # A fresh connection's clock has run since the accept; a reused one's starts now.
        if self._phase is not _HEAD and not self._responding():
            self._start(_HEAD, self.options.header_timeout_seconds)

    def _head_complete(self, cycle: Any, *, queued: bool = False) -> None:
        self._in_head = False
        if queued:
            self._stop()  # behind a response in progress: timed once it runs
        else:
            self._time_body(cycle)

    def _time_body(self, cycle: Any) -> None:
        self._start(_BODY, self.options.body_timeout_seconds)
        self._timed_cycle = cycle

    def _body_complete(self) -> None:
        if self._phase is _BODY:
            self._stop()

    def _head_too_large(self) -> None:
        if self._responding():
            self.transport.close()  # no answer can be put in the middle of another
            return
        limit = self.options.max_header_bytes
        self._answer(HeadersTooLarge(f"request head exceeds the {limit}-byte limit"), OPENAI)

    # -- the clock --------------------------------------------------------------------------

    def _start(self, phase: str, seconds: float) -> None:
        self._stop()
        self._phase = phase
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._phase = self._deadline = None

    def _expired(self) -> None:
        phase, self._phase, self._deadline = self._phase, None, None
        # A closing connection, or one handed to the WebSocket protocol, is not ours.
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if phase is _HEAD:
            if not self._in_head:
                self.transport.close()  # nothing was asked: nothing to answer
            elif not self._responding():
                seconds = self.options.header_timeout_seconds
                error = RequestTimeout(f"request head not received within {seconds:g} s")
                self._answer(error, OPENAI)
            return
        cycle = self._timed_cycle
        if cycle is None or cycle.response_complete:
            # Answered already (without reading the whole body): the rest is not awaited.
            self.transport.close()
        elif not cycle.response_started:
            seconds = self.options.body_timeout_seconds
            error = RequestTimeout(f"request body not received within {seconds:g} s")
            self._answer(error, error_format_for(cycle.scope["path"]), cycle)

    def _answer(self, error: ProxyError, fmt: ApiFormat, cycle: Any = None) -> None:
        """Write ``error`` as the response, half-close, and drain until the client leaves."""
        self._stop()
        transport = self.transport
        if cycle is not None:
            # The app waits for this body: its receive() now says the client left, and
            # uvicorn drops whatever it sends.
            cycle.disconnected = True
            cycle.message_event.set()
        transport.write(_response_bytes(error, fmt))
        if transport.can_write_eof():
            transport.write_eof()
        # uvicorn's eof_received closes the transport when the client closes its side.
        self._linger = self.loop.call_later(LINGER_SECONDS, transport.close)


class _ClockedH11(_RequestClock, H11Protocol):
    # h11 holds a pipelined request back (PAUSED) until the response before it is done, so
    # a request object exists only once it runs.
    _clocked_cycle: Any = None  # the request whose head the clock last saw complete

    def _follow_parser(self, *, received: bool) -> None:
        if self.cycle is not None and self.cycle is not self._clocked_cycle:
            self._clocked_cycle = self.cycle
            self._head_complete(self.cycle)
        elif received and self.conn.their_state is h11.IDLE:
            self._head_begun()
        if self._phase is _BODY and self.conn.their_state is not h11.SEND_BODY:
            self._body_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request may be read from the buffer just now, whole or in part.
        pending = self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
        self._follow_parser(received=pending)

    def send_400_response(self, msg: str) -> None:
        # h11 refuses a head longer than h11_max_incomplete_event_size (max_header_bytes)
        # as a protocol error, which uvicorn answers with a plain-text 400.
        if len(self.conn.trailing_data[0]) > self.options.max_header_bytes:
            self._head_too_large()
            return
        super().send_400_response(msg)


class _ClockedHttpTools(_RequestClock, HttpToolsProtocol):
    # httptools parses a pipelined request while the one before it runs, and queues it.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._head_complete(self.cycle, queued=bool(self.pipeline))

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._body_complete()

    def on_response_complete(self) -> None:
        starting = self.pipeline[-1][0] if self.pipeline else None
        super().on_response_complete()
        if starting is not None and starting.more_body:
            self._time_body(starting)
        elif self._in_head:
            self._head_begun()


def _response_bytes(error: ProxyError, fmt: ApiFormat) -> bytes:
    body = json.dumps(fmt.error_body(error), separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
