"""Server-sent events as the sandbox writes them: pure values and their wire bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["SseEvent", "json_event"]


@dataclass(frozen=True)
class SseEvent:
    """One event; ``opens_content`` marks the first content delta (TTFT is before it)."""

    data: str
    event: str | None = None
    opens_content: bool = False

    def encode(self) -> bytes:
        head = f"event: {self.event}\n" if self.event else ""
        return f"{head}data: {self.data}\n\n".encode()

    def truncated(self) -> SseEvent:
        """The same event with its JSON cut in half: a malformed-payload fault."""
        return replace(self, data=self.data[: max(1, len(self.data) // 2)])


def json_event(payload: Any, event: str | None = None, *, opens_content: bool = False) -> SseEvent:
    # Compact separators, like both providers' wire format.
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return SseEvent(data, event, opens_content)
