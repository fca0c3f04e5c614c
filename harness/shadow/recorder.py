"""Turn one raw HTTP exchange (status, headers, timed chunks) into an Observation. Pure.

The request path only appends ``(time, bytes)`` pairs (a :data:`TapRecord`); decoding
SSE, parsing JSON and finding the first token happen here, on the mirror workers, after
the fact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.observation import Observation, SseEvent
from harness.shadow.upstream_tap import CallRecord
from harness.sse import SseDecoder, first_token_offset
from memory_proxy.api_formats import FormatName

__all__ = ["RawExchange", "TapRecord", "observe"]

# What the tap on the primary's request path keeps, as plain values (it crosses to the
# mirror sidecar as is): (began, status, raw headers, [(perf_counter, bytes)], captured
# bytes, truncated, headers_at, ended_at, error, the provider calls made while serving
# it). Times are ``time.perf_counter()`` readings of the primary; CLOCK_MONOTONIC on
# Linux, but only differences are used.
TapRecord = tuple[
    float,
    int | None,
    list[tuple[bytes, bytes]],
    list[tuple[float, bytes]],
    int,
    bool,
    float | None,
    float | None,
    str | None,
    tuple[CallRecord, ...],
]


@dataclass
class RawExchange:
    """What was seen of one answer, as it happened (mutable while it is being recorded)."""

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    captured_bytes: int = 0
    truncated: bool = False
    time_to_headers_ms: float | None = None
    total_ms: float | None = None
    error: str | None = None
    # The provider calls the primary made for it, when its upstream was tapped.
    upstream: tuple[CallRecord, ...] = ()
    began: float | None = None  # the primary's perf_counter when the request arrived

    @property
    def streamed(self) -> bool:
        """Whether the answer is a server-sent event stream."""
        content_type = dict((k.lower(), v) for k, v in self.headers).get("content-type", "")
        return content_type.startswith("text/event-stream")

    @classmethod
    def from_tap(cls, record: TapRecord) -> RawExchange:
        began, status, headers, chunks, captured, truncated, headers_at, ended_at, error = record[
            :9
        ]
        return cls(
            status=status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            chunks=[((at - began) * 1000, data) for at, data in chunks],
            captured_bytes=captured,
            truncated=truncated,
            time_to_headers_ms=None if headers_at is None else (headers_at - began) * 1000,
            total_ms=None if ended_at is None else (ended_at - began) * 1000,
            error=error,
            upstream=tuple(record[9]),
            began=began,
        )

    def add_chunk(self, offset_ms: float, data: bytes, cap: int) -> None:
        if not data:
            return
        room = cap - self.captured_bytes
        if room <= 0:
            self.truncated = True
            return
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.chunks.append((offset_ms, data))
        self.captured_bytes += len(data)


def observe(
    target: str,
    raw: RawExchange,
    fmt: FormatName,
    *,
    keep_headers: Iterable[str],
    max_events: int,
) -> Observation:
    headers = _select_headers(raw.headers, keep_headers)
    if raw.streamed:
        events, truncated = _events(raw.chunks, max_events)
        return Observation(
            target=target,
            status=raw.status,
            headers=headers,
            events=tuple(events),
            time_to_headers_ms=raw.time_to_headers_ms,
            ttft_ms=first_token_offset(events, fmt),
            total_ms=raw.total_ms,
            error=raw.error,
            truncated=raw.truncated or truncated,
        )
    body_bytes = b"".join(chunk for _, chunk in raw.chunks)
    return Observation(
        target=target,
        status=raw.status,
        headers=headers,
        body=_parse_body(body_bytes),
        time_to_headers_ms=raw.time_to_headers_ms,
        ttft_ms=None,
        total_ms=raw.total_ms,
        error=raw.error,
        truncated=raw.truncated,
    )


def _select_headers(headers: Sequence[tuple[str, str]], keep: Iterable[str]) -> dict[str, str]:
    wanted = {name.lower() for name in keep}
    return {k.lower(): v for k, v in headers if k.lower() in wanted}


def _events(chunks: Sequence[tuple[float, bytes]], cap: int) -> tuple[list[SseEvent], bool]:
    decoder = SseDecoder()
    events: list[SseEvent] = []
    last = 0.0
    for offset, chunk in chunks:
        events.extend(decoder.feed(chunk, offset))
        last = offset
    events.extend(decoder.close(last))
    if len(events) > cap:
        return events[:cap], True
    return events, False


def _parse_body(data: bytes) -> object:
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
