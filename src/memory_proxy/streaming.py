"""SSE responses: first event fetched before headers, errors after it as one SSE event.

Before the first byte a failure is an HTTP status (and may be retried); after it, the
client already has a 200, so the failure becomes the format's SSE error event and the
stream is closed cleanly. A stream the upstream ends without its final event is a
failure too: the client must not mistake a cut reply for a whole one.

Pass-through streams (bytes from ``relay``) are relayed a whole event at a time
(:class:`SseFramer`), so an error event is never glued to half of a cut one.

Keep-alive: Claude Code counts every byte of a stream, drops one silent for too long and
shows a stall banner much sooner. A provider's own pings pass through, but a stream
litellm translates has none, and a provider may think for a while. So when the upstream
has sent nothing for ``keepalive_seconds``, the format's keep-alive goes out, between two
whole events, never inside one; an upstream that speaks in time gets none added.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from memory_proxy.api_formats import ApiFormat
from memory_proxy.errors import UpstreamBadGateway, stream_cut
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = [
    "OpenedStream",
    "SseFramer",
    "SseResponse",
    "final_event_detector",
    "open_byte_stream",
    "open_stream",
    "sse_response",
]

T = TypeVar("T")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@dataclass
class OpenedStream(Generic[T]):
    first: T
    rest: AsyncIterator[T]
    source: Any  # what litellm returned, closed when the client goes away


async def open_stream(start: Callable[[], Awaitable[Any]]) -> OpenedStream[Any]:
    """Start the upstream stream and wait for its first item (inside the retry loop)."""
    source = await start()
    iterator = source.__aiter__()
    try:
        first = await iterator.__anext__()
    except StopAsyncIteration:
        raise UpstreamBadGateway("upstream stream ended before its first event") from None
    return OpenedStream(first, iterator, source)


class SseFramer:
    """Cuts a byte stream at event boundaries: what ``feed`` returns is whole events."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self.pending + chunk if self.pending else chunk
        end = _end_of_last_event(data)
        if not end:
            self.pending = data
            return b""
        self.pending = data[end:]
        return data[:end] if end < len(data) else data


def _end_of_last_event(data: bytes) -> int:
    """Offset just past the last blank line (``\\n\\n`` or ``\\r\\n\\r\\n``); 0 if none."""
    end = data.rfind(b"\n\n")
    end = end + 2 if end >= 0 else 0
    if b"\r" in data:
        crlf = data.rfind(b"\r\n\r\n")
        if crlf >= 0:
            end = max(end, crlf + 4)
    return end


async def open_byte_stream(start: Callable[[], Awaitable[Any]]) -> OpenedStream[bytes]:
    """Start a pass-through stream and wait for its first whole event (in the retry loop)."""
    source = await start()
    iterator = source.__aiter__()
    framer = SseFramer()
    try:
        first = b""
        while not first:
            first = framer.feed(await iterator.__anext__())
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await source.aclose()
        if isinstance(exc, StopAsyncIteration):
            raise UpstreamBadGateway("upstream stream ended before its first event") from None
        raise
    return OpenedStream(first, _whole_events(iterator, framer), source)


async def _whole_events(chunks: AsyncIterator[bytes], framer: SseFramer) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        events = framer.feed(chunk)
        if events:
            yield events
    if framer.pending.strip():
        raise UpstreamBadGateway("upstream stream was cut inside an event")


def final_event_detector(api_format: ApiFormat) -> Callable[[bytes], bool]:
    """``is_final`` for whole-event blocks of ``api_format``."""
    marks = api_format.final_event_marks
    return lambda block: any(mark in block for mark in marks)


def sse_response(
    stream: OpenedStream[Any],
    *,
    encode: Callable[[Any], bytes],
    is_final: Callable[[Any], bool],
    api_format: ApiFormat,
    trailer: bytes = b"",
    headers: dict[str, str] | None = None,
    on_start: Callable[[], None] | None = None,
    on_end: Callable[[str], None] | None = None,
    keepalive_seconds: float | None = None,
) -> StreamingResponse:
    """A streaming response over ``stream``; ``is_final`` spots the upstream's last event.

    ``on_start`` is called as the relay begins, ``on_end`` with its outcome once the
    last byte went out (or the client left).
    """

    async def body() -> AsyncIterator[bytes]:
        if on_start is not None:
            on_start()
        finished = False
        outcome = "disconnected"
        rest: AsyncIterator[Any] = stream.rest
        if keepalive_seconds:
            rest = _with_keepalive(stream.rest, keepalive_seconds)
        try:
            item = stream.first
            yield encode(item)
            finished = is_final(item)
            response.answered = finished and not trailer
            async for item in rest:
                if item is _SILENCE:
                    yield api_format.keepalive
                    continue
                yield encode(item)
                finished = finished or is_final(item)
                # The client has the final event: what follows is the upstream's EOF.
                response.answered = finished and not trailer
                if response.answered:
                    outcome = "complete"
            if not finished:
                raise stream_cut()
            if trailer:
                yield trailer
            outcome = "complete"
        except Exception as exc:  # noqa: BLE001 - after the first byte: an SSE error event
            error = translate_upstream_error(exc)
            outcome = f"error:{error.kind.value}"
            yield api_format.sse_error(error)
        finally:
            if on_end is not None:
                on_end(outcome)
            # Client gone or stream over: release the upstream connection now.
            await _close(stream)

    response = SseResponse(
        body(), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})}
    )
    return response


_SILENCE = object()  # what _with_keepalive yields for "nothing came in time"


async def _with_keepalive(items: AsyncIterator[T], every: float) -> AsyncIterator[Any]:
    """``items``, and :data:`_SILENCE` after each ``every`` seconds without one.

    The next item is awaited in a task of its own, so a timeout never cancels (and so
    breaks) the upstream's iterator; the same pending read goes on after a keep-alive.
    """
    iterator = items.__aiter__()
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=every)
            if not done:
                yield _SILENCE
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


class SseResponse(StreamingResponse):
    """Starlette's ``StreamingResponse``, minus its anyio task group per response.

    The client going away must still stop the stream at once (the upstream keeps
    generating, and billing, until its connection is closed), so one plain asyncio task
    waits for ``http.disconnect`` and cancels the sending task; the body's ``finally``
    then closes the upstream. Same behaviour, a fraction of the per-stream cost.

    ``answered``: set by the body once the client has the stream's final event. A client
    that leaves after it (the OpenAI and Anthropic SDKs close on ``[DONE]`` /
    ``message_stop``) while the upstream's connection is still ending got the whole answer:
    the response is ended as complete (uvicorn drops a write to a closed connection), so
    the access log and the disconnect metric do not count it as cut.
    """

    answered = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.current_task()
        done = False
        gone = False

        async def watch() -> None:
            nonlocal gone
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not done and sender is not None:
                        gone = True
                        sender.cancel()
                    return

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            async for chunk in self.body_iterator:
                if not isinstance(chunk, bytes | memoryview):
                    chunk = chunk.encode(self.charset)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone or sender is None:
                raise
            # Our own doing: the client left. Not a cancellation to pass up to the server.
            sender.uncancel()
            if self.answered:
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            done = True
            watcher.cancel()
        if self.background is not None:
            await self.background()


async def _close(stream: OpenedStream[Any]) -> None:
    # The iterator first (it may wrap the source), then the source if it is another object.
    targets = [stream.rest] if stream.rest is stream.source else [stream.rest, stream.source]
    for target in targets:
        closer = getattr(target, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
