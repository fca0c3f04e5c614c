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
import copy
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from memory_proxy.api_formats import ApiFormat
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = [
    "ClientView",
    "OracleLoop",
    "assert_same_events",
    "assert_same_json",
    "normalized_events",
    "normalized_json",
    "sse_data",
]

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


def without_cost(event: Any) -> Any:
    """The deliberate difference: litellm's own cost estimate in the stream's usage."""
    if isinstance(event, dict) and isinstance(event.get("usage"), dict):
        event = copy.deepcopy(event)
        event["usage"].pop("cost", None)
    return event


def assert_same_json(ours: ClientView, theirs: ClientView) -> None:
    assert ours.status == theirs.status, (ours, theirs)
    mine, oracle_body = json.loads(ours.body), json.loads(theirs.body)
    if ours.status >= 400:
        assert_same_error(mine, oracle_body)
        return
    assert normalized_json(mine) == normalized_json(oracle_body)


def assert_same_error(mine: Any, theirs: Any) -> None:
    """Equal but for the deliberate difference: the message is the provider's own words,
    where litellm's wraps them (its class name, the provider's whole body, even a Python
    ``b'...'`` repr of it)."""
    assert "error" in mine and "error" in theirs
    # The envelope (Anthropic's ``type: error``) is equal; then the error but its message.
    assert {k: v for k, v in mine.items() if k != "error"} == {
        k: v for k, v in theirs.items() if k != "error"
    }
    ours_error, oracle_error = dict(mine["error"]), dict(theirs["error"])
    ours_message, oracle_message = ours_error.pop("message"), oracle_error.pop("message")
    assert ours_error == oracle_error
    assert ours_message and ours_message.split(": ")[-1] in oracle_message


def assert_same_events(ours: ClientView, theirs: ClientView) -> None:
    assert ours.status == theirs.status, (ours, theirs)
    if ours.status != 200:
        assert_same_json(ours, theirs)
        return
    mine = normalized_events(ours.body)
    oracle_events = normalized_events(theirs.body, drop=without_cost)
    if mine and oracle_events and _is_error(mine[-1]) and _is_error(oracle_events[-1]):
        assert_same_error(mine.pop()[1], oracle_events.pop()[1])
    assert mine == oracle_events


def _is_error(event: tuple[str | None, Any]) -> bool:
    return isinstance(event[1], dict) and "error" in event[1] and event[0] in (None, "error")
