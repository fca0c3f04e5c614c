"""Per-request fault directives embedded in the last user message.

A directive is ``[sandbox:key=value]`` (several ``key=value`` pairs may share one bracket,
separated by commas). Because it travels inside the prompt, it survives any proxy in
front of the sandbox and aims a fault at exactly one request. Unknown keys and bad
values are ignored: a directive must never turn into a 400 the real API would not send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Directives", "parse_directives", "strip_directives"]

_DIRECTIVE = re.compile(r"\[sandbox:([^\]]*)\]")
_NUMERIC_KEYS = (
    "cloudflare",
    "cut_after",
    "delay_ms",
    "stream_delay_ms",
    "ttft_ms",
    "stream_error",
    "stall_after",
    "silence_ms",
    "silence_after",
)


@dataclass(frozen=True)
class Directives:
    """The faults one request asked for; ``None``/``False`` means "not asked"."""

    status: int | None = None
    cloudflare: int | None = None
    malformed: bool = False
    cut_after: int | None = None
    delay_ms: int | None = None
    stream_delay_ms: int | None = None
    ttft_ms: int | None = None
    stream_error_after: int | None = None
    stall_after: int | None = None
    silence_ms: int | None = None
    silence_after: int | None = None

    @property
    def any(self) -> bool:
        return self != Directives()


def parse_directives(text: str) -> Directives:
    """Read every ``[sandbox:...]`` in ``text``; a later directive overrides an earlier."""
    numbers: dict[str, int] = {}
    malformed = False
    for match in _DIRECTIVE.finditer(text):
        for pair in match.group(1).split(","):
            key, _, raw = pair.strip().partition("=")
            key = key.strip().lower()
            number = _non_negative_int(raw)
            if key == "malformed":
                malformed = raw.strip().lower() not in ("0", "false")
            elif key == "status" and number is not None and 400 <= number <= 599:
                numbers[key] = number
            elif key in _NUMERIC_KEYS and number is not None:
                numbers[key] = number
    return Directives(
        status=numbers.get("status"),
        cloudflare=numbers.get("cloudflare"),
        malformed=malformed,
        cut_after=numbers.get("cut_after"),
        delay_ms=numbers.get("delay_ms"),
        stream_delay_ms=numbers.get("stream_delay_ms"),
        ttft_ms=numbers.get("ttft_ms"),
        stream_error_after=numbers.get("stream_error"),
        stall_after=numbers.get("stall_after"),
        silence_ms=numbers.get("silence_ms"),
        silence_after=numbers.get("silence_after"),
    )


def strip_directives(text: str) -> str:
    """``text`` without its directives, so a reply's echo does not repeat them."""
    return " ".join(_DIRECTIVE.sub(" ", text).split())


def _non_negative_int(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None
