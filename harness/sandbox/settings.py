"""The sandbox's configuration: one frozen object, built once and passed to ``create_app``.

``FaultSettings`` is also what ``GET/PUT/PATCH /_sandbox/faults`` read and write, so it
converts to and from plain JSON mappings and validates what it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MODELS", "FaultSettings", "SandboxSettings"]

DEFAULT_MODELS: tuple[str, ...] = (
    "sandbox-claude-sonnet",
    "sandbox-claude-haiku",
    "sandbox-gpt-4o",
    "sandbox-gpt-4o-mini",
)

_RATE_FIELDS = (
    "error_rate_429",
    "error_rate_503",
    "error_rate_500",
    "malformed_json_rate",
    "stream_cut_rate",
)
_DELAY_FIELDS = ("latency_ms", "latency_jitter_ms", "ttft_ms", "chunk_delay_ms")


@dataclass(frozen=True)
class FaultSettings:
    """Latency and failure injection applied to the generation endpoints.

    Delays are milliseconds:

    * ``latency_ms`` + uniform ``[0, latency_jitter_ms]``: before the response headers.
    * ``ttft_ms``: in a stream, between the opening event(s) (``message_start`` ...
      ``ping``, or the OpenAI role chunk) and the first content delta.
    * ``chunk_delay_ms``: between consecutive stream events.

    Rates are probabilities in ``[0, 1]``, drawn per request from a seeded RNG: a 429
    (with ``Retry-After: 1``), a 503 overload, a 500, a 200 with truncated JSON, and a
    stream that stops half-way and drops the connection.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    ttft_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    error_rate_429: float = 0.0
    error_rate_503: float = 0.0
    error_rate_500: float = 0.0
    malformed_json_rate: float = 0.0
    stream_cut_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in _DELAY_FIELDS:
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultSettings:
        """Build from JSON; unknown keys are an error so a typo never passes silently."""
        return cls().merged(data)

    def merged(self, data: Mapping[str, Any]) -> FaultSettings:
        """A copy with the fields in ``data`` replaced (``ValueError`` on unknown keys)."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **dict(data))

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class SandboxSettings:
    """Everything the sandbox app needs; tests build their own instead of patching.

    ``nondeterministic`` makes replies vary per request (text and ids drawn from an RNG
    seeded with ``seed``); by default a reply is a pure function of the request body.
    ``require_cookie`` turns on the Cloudflare gate: once a ``__cf_bm`` cookie has been
    issued, requests without a valid one get a 503 ``error code: 1200``.
    """

    host: str = "127.0.0.1"
    port: int = 9100
    models: tuple[str, ...] = DEFAULT_MODELS
    require_cookie: bool = False
    nondeterministic: bool = False
    seed: int = 0
    capture_limit: int = 10_000
    faults: FaultSettings = field(default_factory=FaultSettings)

    def __post_init__(self) -> None:
        if self.capture_limit < 1:
            raise ValueError(f"capture_limit must be >= 1, got {self.capture_limit}")
        if not self.models:
            raise ValueError("models must name at least one model")


def _is_number(value: object) -> bool:
    # bool is an int subclass; "true" as a latency is a caller's mistake, not 1 ms.
    return isinstance(value, int | float) and not isinstance(value, bool)
