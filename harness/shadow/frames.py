"""Length-prefixed marshal frames: how shadow mode's processes talk over a socketpair.

marshal takes plain tuples of bytes, str and numbers, several times cheaper than pickle on
the primary's request path; both ends are the same interpreter, and the socket is a
private socketpair between a process and its own child.
"""

from __future__ import annotations

import asyncio
import marshal
import struct
from typing import Any

__all__ = ["frame", "read_frame"]

_LENGTH = struct.Struct("!I")


def frame(payload: Any) -> bytes:
    """``payload`` marshalled, behind its length."""
    data = marshal.dumps(payload)
    return _LENGTH.pack(len(data)) + data


async def read_frame(reader: asyncio.StreamReader) -> Any | None:
    """The next frame's payload; None when the other end closed."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        data = await reader.readexactly(_LENGTH.unpack(head)[0])
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return marshal.loads(data)  # noqa: S302 - a private socketpair with our own child
