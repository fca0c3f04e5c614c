"""SSE responses: first event fetched before headers, errors after it as one SSE event.

Before the first byte a failure is an HTTP status (and may be retried); after it, the
client already has a 200, so the failure becomes the format's SSE error event and the
stream is closed cleanly. A stream the upstream ends without its final event is a
failure too: the client must not mistake a cut reply for a whole one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.responses import StreamingResponse

from memory_proxy.api_formats import ApiFormat
from memory_proxy.errors import UpstreamBadGateway
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = ["OpenedStream", "open_stream", "sse_response"]

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


def sse_response(
    stream: OpenedStream[Any],
    *,
    encode: Callable[[Any], bytes],
    is_final: Callable[[Any], bool],
    api_format: ApiFormat,
    trailer: bytes = b"",
    headers: dict[str, str] | None = None,
    on_end: Callable[[str], None] | None = None,
) -> StreamingResponse:
    """A streaming response over ``stream``; ``is_final`` spots the upstream's last event."""

    async def body() -> AsyncIterator[bytes]:
        finished = False
        outcome = "disconnected"
        try:
            item = stream.first
            yield encode(item)
            finished = is_final(item)
            async for item in stream.rest:
                yield encode(item)
                finished = finished or is_final(item)
            if not finished:
                raise UpstreamBadGateway("upstream stream ended without its final event")
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
            closer = getattr(stream.rest, "aclose", None) or getattr(stream.source, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})}
    )
