"""The oracle of the differential translation tests: litellm's own SDK entry points.

The proxy translates with litellm's transformation code but not through
``litellm.acompletion`` / ``litellm.anthropic_messages``. Those stay the definition of
right: the same request, sent by them to the same scripted provider, must give the
client the same answer. This module makes the oracle's answer what the proxy's earlier
path gave the client (the same encoding, the same error rendering), and normalizes the
two sides (ids and timestamps differ per call) for comparison.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from memory_proxy.api_formats import ApiFormat
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = ["ClientView", "OracleLoop", "normalized_events", "normalized_json", "sse_data"]

T = TypeVar("T")


class OracleLoop:
    """One event loop in a thread for every oracle call (litellm caches clients per loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@dataclass(frozen=True)
class ClientView:
    """What a client sees: the status and the body's bytes."""

    status: int
    body: bytes


async def oracle_json(
    call: Callable[[], Awaitable[Any]], encode: Callable[[Any], bytes], api_format: ApiFormat
) -> ClientView:
    """A non-stream answer as the client got it: the encoded reply, or the rendered error."""
    try:
        result = await call()
    except Exception as exc:  # noqa: BLE001 - rendered as the proxy renders it
        error = translate_upstream_error(exc)
        return ClientView(error.status, json.dumps(api_format.error_body(error)).encode())
    return ClientView(200, encode(result))


async def oracle_stream(
    call: Callable[[], Awaitable[Any]],
    encode: Callable[[Any], bytes],
    api_format: ApiFormat,
    trailer: bytes = b"",
) -> ClientView:
    """A streamed answer as the client got it: the events, then the trailer or, after a
    failure past the first event, the format's SSE error event."""
    try:
        source = await call()
        iterator = source.__aiter__()
        first = await iterator.__anext__()
    except Exception as exc:  # noqa: BLE001 - before the first byte: an HTTP error
        error = translate_upstream_error(exc)
        return ClientView(error.status, json.dumps(api_format.error_body(error)).encode())
    out = [encode(first)]
    try:
        async for item in iterator:
            out.append(encode(item))
        out.append(trailer)
    except Exception as exc:  # noqa: BLE001 - after it: an SSE error event
        out.append(api_format.sse_error(translate_upstream_error(exc)))
    return ClientView(200, b"".join(out))


_VOLATILE = frozenset({"id", "created"})


def normalized_json(value: Any) -> Any:
    """``value`` with per-call ids and timestamps blanked, at any depth of the top object
    and of message/choice objects (tool-call ids come from the provider: kept)."""
    if isinstance(value, dict):
        return {
            k: ("<volatile>" if k in _VOLATILE and _is_envelope(value) else normalized_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalized_json(v) for v in value]
    return value


def _is_envelope(value: dict[str, Any]) -> bool:
    # A completion, a chunk or a Messages message: the ids the proxy or litellm made up.
    return (
        value.get("object") in {"chat.completion", "chat.completion.chunk"}
        or value.get("type") == "message"
    )


def sse_data(body: bytes) -> list[tuple[str | None, str]]:
    """``(event name, data)`` of each event in an SSE body (comments skipped)."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def normalized_events(body: bytes, drop: Callable[[Any], Any] | None = None) -> list[Any]:
    """Each event of an SSE body, JSON parsed and normalized (``[DONE]`` kept as is)."""
    out = []
    for name, data in sse_data(body):
        parsed: Any = data if data == "[DONE]" else json.loads(data)
        if drop is not None:
            parsed = drop(parsed)
        out.append((name, normalized_json(parsed)))
    return out
