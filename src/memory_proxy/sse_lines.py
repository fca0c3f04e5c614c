"""The ``data:`` lines of whole SSE events, for litellm's stream iterators.

litellm's provider iterators read an event stream line by line, as httpx's
``aiter_lines`` hands it out, and skip every line but ``data:`` ones (for which they
build an empty placeholder chunk). The relay frames its bytes as whole events; this
gives the iterators only the lines they read: of one block (:func:`block_data_lines`),
or of a stream of blocks (:func:`data_lines`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

__all__ = ["block_data_lines", "data_lines"]


def block_data_lines(block: bytes) -> list[str]:
    """Each ``data:`` line of one block of whole events, line end stripped."""
    return [line for line in block.decode("utf-8").splitlines() if line.startswith("data:")]


async def data_lines(events: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Each ``data:`` line of ``events`` (blocks of whole events), line end stripped."""
    async for block in events:
        for line in block_data_lines(block):
            yield line
