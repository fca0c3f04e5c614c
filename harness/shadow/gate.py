"""``MirrorGate``: the engine's workers take a slot here before they call the shadow target.

The number of slots is :class:`~harness.shadow.backpressure.AdaptiveLimit`'s, and moves
with what the target's answers say. The engine keeps ``max_in_flight`` workers; while
the limit is lower, the extra workers wait here with their job, the queue behind them
fills, and what the engine then refuses is counted as ``backpressure``. One event loop
uses it: no lock, only futures to wake waiters.
"""

from __future__ import annotations

import asyncio

from harness.shadow.backpressure import AdaptiveLimit, Signal

__all__ = ["MirrorGate"]


class MirrorGate:
    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: list[asyncio.Future[None]] = []

    async def acquire(self) -> int:
        """Wait for a free slot and take it; the round to pass back to :meth:`release`."""
        while self.active >= self.limit.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        self.active += 1
        return self.limit.round

    def release(self, signal: Signal | None, started_round: int) -> None:
        """Give the slot back, with what the call said about the target (None: nothing,
        e.g. it was cancelled)."""
        self.active -= 1
        if signal is not None:
            self.limit.observe(signal, started_round)
        # Every waiter checks again: the limit may have grown by more than one slot.
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
