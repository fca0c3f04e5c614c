"""``ready_together``: events made together go out together, none waits for company, a
failure comes after what was made before it, and closing stops the producer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from memory_proxy.event_batches import MAX_READY, ready_together


def CONTENT(item: bytes) -> bool:  # noqa: N802 - a constant predicate
    return item.startswith(b"c:")


def ANY(item: bytes) -> bool:  # noqa: N802 - a constant predicate
    return True


class Upstream:
    """A source of items in groups; between groups it waits, as on the provider."""

    def __init__(self, *groups: list[bytes], fail: Exception | None = None) -> None:
        self.groups = groups
        self.fail = fail
        self.gates = [asyncio.get_running_loop().create_future() for _ in groups]
        self.waiting = -1  # the gate it waits at
        self.closed = False

    async def items(self) -> AsyncIterator[bytes]:
        try:
            for n, group in enumerate(self.groups):
                if n:
                    self.waiting = n
                    await self.gates[n]
                    self.waiting = -1
                for item in group:
                    yield item
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True

    def open(self, n: int) -> None:
        self.gates[n].set_result(None)


async def test_items_made_together_go_out_together_and_none_waits_for_a_later_group() -> None:
    upstream = Upstream([b"a", b"b", b"c"], [b"d", b"e"])
    batches = ready_together(upstream.items(), ANY)
    assert await batches.__anext__() == b"a"  # the first item: read in the caller's task
    assert await batches.__anext__() == b"bc"
    # b and c were handed over while the source waited for its next group.
    assert upstream.waiting == 1
    upstream.open(1)
    assert await batches.__anext__() == b"de"
    with pytest.raises(StopAsyncIteration):
        await batches.__anext__()


async def test_a_failure_comes_after_the_items_made_before_it() -> None:
    upstream = Upstream([b"a", b"b", b"c"], fail=RuntimeError("cut"))
    batches = ready_together(upstream.items(), ANY)
    assert await batches.__anext__() == b"a"
    assert await batches.__anext__() == b"bc"
    with pytest.raises(RuntimeError, match="cut"):
        await batches.__anext__()


async def test_closing_early_stops_the_producer_and_closes_the_source() -> None:
    upstream = Upstream([b"a", b"b"], [b"never"])
    batches = ready_together(upstream.items(), ANY)
    assert await batches.__anext__() == b"a"
    assert await batches.__anext__() == b"b"
    assert upstream.waiting == 1
    await batches.aclose()  # the client went away
    assert upstream.closed


async def test_a_slow_consumer_holds_the_producer_back() -> None:
    upstream = Upstream([bytes([i % 256]) for i in range(MAX_READY + 50)])
    batches = ready_together(upstream.items(), ANY)
    sizes = [len(batch) async for batch in batches]
    assert sizes == [1, MAX_READY, 49]


async def test_items_up_to_the_first_content_go_out_one_by_one_in_the_callers_task() -> None:
    upstream = Upstream([b"start", b"open", b"c:first", b"c:b", b"c:c"], [b"c:d"])
    batches = ready_together(upstream.items(), CONTENT)
    # Read inline: each is handed over before the source made the next one.
    assert await batches.__anext__() == b"start"
    assert await batches.__anext__() == b"open"
    assert await batches.__anext__() == b"c:first"
    assert await batches.__anext__() == b"c:bc:c"
    upstream.open(1)
    assert [batch async for batch in batches] == [b"c:d"]


async def test_an_empty_source_gives_nothing() -> None:
    upstream = Upstream([])
    assert [batch async for batch in ready_together(upstream.items(), ANY)] == []
    assert upstream.closed
