"""The shadow harness's vocabulary: what one side answered, and a request's two answers.

As in Scientist/Laboratory: an :class:`Observation` is one target's answer (a reply or an
error, plus timings); a :class:`CapturedPair` is one client request with the primary's
observation (what the client got) and the shadow's (mirrored, discarded). Comparisons
and reports work on these only, never on live traffic.

A request's :func:`correlation_key` is part of the capture: the live shadow path stamps
it on each :class:`CapturedRequest`, and the report finds the request's upstream calls
by it later (:mod:`harness.upstream.join`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CapturedPair",
    "CapturedRequest",
    "Observation",
    "SseEvent",
    "correlation_key",
    "last_user_text",
]


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event as received: its ``event:`` name (if any), data, arrival."""

    data: str
    event: str | None = None
    offset_ms: float = 0.0  # since the request was sent


@dataclass(frozen=True)
class Observation:
    """One target's answer to one request."""

    target: str  # "sdk" or "legacy"
    status: int | None  # None: no HTTP answer at all (connect error, timeout)
    headers: dict[str, str] = field(default_factory=dict)  # selected, redacted
    body: Any = None  # parsed JSON, or text, size-capped; None for streams
    events: tuple[SseEvent, ...] | None = None  # a stream's events, in order
    time_to_headers_ms: float | None = None
    ttft_ms: float | None = None  # first content or tool delta, not first byte
    total_ms: float | None = None
    error: str | None = None  # error class when the exchange failed: timeout, connect, ...
    truncated: bool = False  # body or events cut at the capture cap

    @property
    def is_stream(self) -> bool:
        return self.events is not None


@dataclass(frozen=True)
class CapturedRequest:
    """What the client sent, redacted, with the metadata reports slice by."""

    request_id: str
    received_at: float  # unix seconds
    method: str
    path: str
    endpoint: str  # chat, messages, count_tokens, models
    model: str | None
    stream: bool
    user_id: str | None
    conversation_id: str | None
    client_family: str
    headers: dict[str, str] = field(default_factory=dict)  # redacted
    body: Any = None  # per capture.store_prompts: full, hashed or none
    # sha256 of (last user text, stream): finds this request's upstream calls in the
    # sandbox's captures, whatever format each proxy translated it to. Nothing a proxy
    # under test adds or drops (memory headers, cookies, the model id) is part of it.
    correlation_key: str | None = None


@dataclass(frozen=True)
class CapturedPair:
    """One client request and both answers. ``shadow`` is None when it was not mirrored.

    ``primary`` / ``shadow`` are roles (who answered the client); ``sdk`` / ``legacy`` /
    ``legacy_repeat`` are the same answers by proxy, for code that compares the proxies.
    """

    request: CapturedRequest
    primary: Observation
    shadow: Observation | None = None
    # A second call to the legacy target for the same request (A/A noise calibration).
    shadow_repeat: Observation | None = None
    mirror_outcome: str = "mirrored"  # mirrored, skipped:<why>, failed:<why>
    # What each target sent the sandbox upstream for this request (when the upstream is
    # the sandbox): target -> captured upstream requests.
    upstream: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # replay: the mirror side's provider calls were answered with the primary's recorded
    # ones (the upstream held fixed); live: each side called the provider itself.
    upstream_mode: str = "live"
    # The primary's build timed beside the mirror, on the same replayed upstream, by the
    # same client at the same moment (harness.shadow.engine): its timings stand for the
    # primary's in the latency comparison; its answer is not compared.
    latency_twin: Observation | None = None

    # The stored format keeps the roles (primary, shadow); what each proxy answered is
    # derived, so rows written before and after read the same.
    @property
    def sdk(self) -> Observation | None:
        """The SDK proxy's answer, whichever side it was; None when it was not mirrored."""
        return self.primary if self._sdk_is_primary else self.shadow

    @property
    def legacy(self) -> Observation | None:
        """The legacy proxy's answer, whichever side it was; None when it was not mirrored."""
        return self.shadow if self._sdk_is_primary else self.primary

    @property
    def legacy_repeat(self) -> Observation | None:
        """The legacy proxy's second answer (A/A noise probes always go to legacy)."""
        return self.shadow_repeat

    @property
    def _sdk_is_primary(self) -> bool:
        return self.primary.target == "sdk"


def last_user_text(body: Any) -> str:
    """The text of the last user turn, in either API format (tool results included)."""
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "tool"):
            continue
        return _text(message.get("content"))
    return ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = []
        for block in content:
            if not isinstance(block, dict):
                continue
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") == "tool_result":
                parts.append(_text(block.get("content")))
        return "\n".join(p.strip() for p in parts if p)
    return ""


def correlation_key(body: Any, stream: bool) -> str | None:
    """A client request's or a provider call's content key: the last user turn's text and
    the stream flag, hashed. It survives the translation between the API formats and
    never depends on what is under test: memory headers, cookies and the model id are not
    part of it, so a proxy that drops or changes them still has its calls found. None
    without a user turn."""
    text = last_user_text(body)
    if not text:
        return None
    raw = json.dumps([text, bool(stream)], ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
