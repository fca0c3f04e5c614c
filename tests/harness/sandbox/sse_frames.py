"""Reading SSE bodies in tests, independently of the sandbox's own encoder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Frame", "read_frames"]


@dataclass(frozen=True)
class Frame:
    event: str | None
    data: str

    @property
    def json(self) -> Any:
        return json.loads(self.data)


def read_frames(text: str) -> list[Frame]:
    """Split an SSE body into frames; every frame must end with a blank line."""
    assert text.endswith("\n\n"), "an SSE body ends with a blank line"
    frames = []
    for block in text.split("\n\n")[:-1]:
        event = None
        data_lines = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data_lines.append(value)
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        frames.append(Frame(event, "\n".join(data_lines)))
    return frames
