"""Where the tap hands what it saw: a :class:`Dispatch`, and the in-process one."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from harness.shadow.engine import MirrorEngine, MirrorRequest
from harness.shadow.recorder import RawExchange, TapRecord

__all__ = ["Dispatch", "LocalDispatch"]


class Dispatch(Protocol):
    """Where the tap hands what it saw. ``offer`` returns a token for ``done``, or None
    when the request is not mirrored (counted under ``skipped``)."""

    def offer(self, request: MirrorRequest) -> object | None: ...

    def done(self, token: object, record: TapRecord) -> None: ...

    def skip(self, reason: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalDispatch:
    """The engine on the serving process's own event loop."""

    def __init__(self, engine: MirrorEngine) -> None:
        self.engine = engine

    def offer(self, request: MirrorRequest) -> object | None:
        primary: asyncio.Future[RawExchange] = asyncio.get_running_loop().create_future()
        return primary if self.engine.offer(request, primary) else None

    def done(self, token: object, record: TapRecord) -> None:
        assert isinstance(token, asyncio.Future)
        if not token.done():
            token.set_result(RawExchange.from_tap(record))

    def skip(self, reason: str) -> None:
        self.engine.stats.skipped[reason] += 1

    def stats(self) -> dict[str, Any]:
        return self.engine.snapshot()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.engine.drain()
