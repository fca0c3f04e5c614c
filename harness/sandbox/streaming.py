"""The ASGI responses that know when an exchange is over.

``EventStreamResponse`` paces SSE events (TTFT before the first content delta, a delay
between events), can cut the stream (return without the final body message, which
makes the server drop the connection mid-body, like a provider's edge resetting it) or
stall it (stop sending, connection open, until the client gives up) and watches for the
client going away. Each response reports its outcome to ``on_finish``:
``completed``, ``cut`` or ``disconnected``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from harness.sandbox.sse import SseEvent

__all__ = ["EventStreamResponse", "FinishedResponse"]

FinishCallback = Callable[[str], None]


class FinishedResponse(Response):
    """A whole-body response that reports ``completed`` once its body has been sent."""

    def __init__(
        self,
        content: bytes | str,
        *,
        status_code: int,
        headers: Mapping[str, str],
        media_type: str,
        on_finish: FinishCallback,
    ) -> None:
        super().__init__(
            content,
            status_code=status_code,
            headers=headers,
            media_type=media_type,
            background=BackgroundTask(on_finish, "completed"),
        )


class EventStreamResponse(Response):
    """``text/event-stream`` of pre-rendered events with delays, cuts and outcome."""

    media_type = "text/event-stream"

    def __init__(
        self,
        events: Sequence[SseEvent],
        *,
        headers: Mapping[str, str],
        on_finish: FinishCallback,
        ttft_s: float = 0.0,
        chunk_delay_s: float = 0.0,
        cut_after: int | None = None,
        stall_after: int | None = None,
        silence_s: float = 0.0,
        silence_after: int = 1,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.events = list(events)
        self.ttft_s = ttft_s
        self.chunk_delay_s = chunk_delay_s
        self.cut_after = cut_after
        self.stall_after = stall_after
        self.silence_s = silence_s
        self.silence_after = silence_after
        self._on_finish = on_finish
        # No body attribute: init_headers then leaves out content-length (chunked).
        self.init_headers({"cache-control": "no-cache", **headers})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"sent_all": False, "cut": False}

        async def stream() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            for index, event in enumerate(self.events):
                if self.cut_after is not None and index >= self.cut_after:
                    state["cut"] = True
                    return
                if self.stall_after is not None and index >= self.stall_after:
                    # Silent, connection open: only the client leaving ends this.
                    await anyio.sleep_forever()
                delay = self.chunk_delay_s if index else 0.0
                if index == self.silence_after:
                    delay += self.silence_s
                if event.opens_content:
                    delay += self.ttft_s
                if delay:
                    await anyio.sleep(delay)
                await send(
                    {"type": "http.response.body", "body": event.encode(), "more_body": True}
                )
            # Set before the terminator: the client has every event even if it leaves now.
            state["sent_all"] = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch_disconnect() -> None:
            # Servers that drop send() after a disconnect (uvicorn) only tell us here.
            while (await receive())["type"] != "http.disconnect":
                pass

        async with anyio.create_task_group() as group:

            async def run(task: Callable[[], Awaitable[None]]) -> None:
                await task()
                group.cancel_scope.cancel()

            group.start_soon(run, stream)
            group.start_soon(run, watch_disconnect)
        if state["sent_all"]:
            self._on_finish("completed")
        else:
            self._on_finish("cut" if state["cut"] else "disconnected")
