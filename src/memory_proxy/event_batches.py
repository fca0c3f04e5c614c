"""Stream events that are ready together go to the client together.

A translated stream makes several client events per provider read (litellm's Messages
adapter turns one Chat Completions chunk into a ``content_block_start`` and a delta, the
last ones into ``content_block_stop``, ``message_delta`` and ``message_stop``). Sent one
by one, each is an ASGI message and a socket write of its own, some 0.03 ms apiece
under load, more than translating most of them. litellm's adapter is an async iterator
that reads the provider itself, so the proxy cannot ask it "what is ready now?";
:func:`ready_together` runs it in a task of its own and hands over, each time, all it
produced before it next waited on the provider. Nothing waits for company: an event
made after a pause goes out as soon as the consumer's task runs, alone if it is alone.
Up to the first event that carries content (``first_content``), events are read in the
consumer's own task and sent one by one, so the hop between the two tasks (a turn of
the event loop, long when the loop is busy) never adds to the time to the first token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

__all__ = ["MAX_READY", "ready_together"]

# Events held at most before the producer waits for the client to take them: a slow
# client still holds back reading from the provider, as it did with one event a time.
MAX_READY = 256


async def ready_together(
    items: AsyncIterator[bytes], first_content: Callable[[bytes], bool]
) -> AsyncIterator[bytes]:
    """``items`` one by one up to the first for which ``first_content`` is true; then,
    each yield the join of every item ready by then (never an empty one).

    A failure of ``items`` comes after the items made before it. Closing this
    generator stops ``items``' task.
    """
    iterator = items.__aiter__()
    task: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                first = await iterator.__anext__()
            except StopAsyncIteration:
                return
            yield first
            if first_content(first):
                break
        loop = asyncio.get_running_loop()
        ready: list[bytes] = []
        finished = False
        failure: Exception | None = None
        wake: asyncio.Future[None] | None = None
        room: asyncio.Future[None] | None = None

        def wake_consumer() -> None:
            if wake is not None and not wake.done():
                wake.set_result(None)

        async def produce() -> None:
            nonlocal finished, failure, room
            try:
                async for item in iterator:
                    ready.append(item)
                    wake_consumer()
                    if len(ready) >= MAX_READY:
                        room = loop.create_future()
                        await room
            except Exception as exc:  # noqa: BLE001 - handed to the consumer, in order
                failure = exc
            finally:
                finished = True
                wake_consumer()

        task = loop.create_task(produce())
        while True:
            if not ready and not finished:
                wake = loop.create_future()
                await wake
                wake = None
            if ready:
                batch = b"".join(ready) if len(ready) > 1 else ready[0]
                ready.clear()
                if room is not None and not room.done():
                    room.set_result(None)
                yield batch
            elif finished:
                if failure is not None:
                    raise failure
                return
    finally:
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await _close(iterator)


async def _close(iterator: AsyncIterator[bytes]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            await closer()
