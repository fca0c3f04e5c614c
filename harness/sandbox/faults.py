"""Deciding, per request, which faults to inject: configured rates plus directives.

The injector owns one RNG seeded from the settings' seed, so a run with the same seed
and the same request order injects the same faults. Every generation request draws the
same number of random values whatever the outcome, which keeps that sequence stable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.sandbox.directives import Directives
from harness.sandbox.settings import FaultSettings

__all__ = ["FaultInjector", "FaultPlan"]

_STATUS_RATES = ((429, "error_rate_429"), (503, "error_rate_503"), (500, "error_rate_500"))


@dataclass(frozen=True)
class FaultPlan:
    """The faults one request gets; delays are seconds.

    ``delay_s`` comes before the response headers, ``ttft_s`` before a stream's first
    content delta, ``chunk_delay_s`` between stream events. A stream is cut after
    ``cut_after`` events, or half-way when ``cut_midway``; a cut drops the connection
    without the final event. ``stream_error_after`` replaces the rest of a stream, after
    that many events, with the format's SSE error event and a clean close. A stream
    stalls after ``stall_after`` events: the connection stays open and silent until the
    client gives up (a provider that hangs mid-reply). ``silence_s`` is one silent gap
    after ``silence_after`` events (1 unless asked), the stream going on afterwards (a
    proxy's keep-alive shows).
    """

    delay_s: float = 0.0
    status: int | None = None
    cloudflare: bool = False
    malformed: bool = False
    cut_after: int | None = None
    cut_midway: bool = False
    stream_error_after: int | None = None
    stall_after: int | None = None
    silence_s: float = 0.0
    silence_after: int = 1
    ttft_s: float = 0.0
    chunk_delay_s: float = 0.0
    reasons: tuple[str, ...] = ()

    def cut_point(self, total_events: int) -> int | None:
        """How many of ``total_events`` to send before the cut, or None for no cut."""
        if self.cut_after is not None:
            return self.cut_after if self.cut_after < total_events else None
        if self.cut_midway:
            return max(1, total_events // 2)
        return None


class FaultInjector:
    """Turns ``FaultSettings`` and a request's ``Directives`` into a ``FaultPlan``."""

    def __init__(self, faults: FaultSettings, seed: int = 0) -> None:
        self.faults = faults
        self._seed = seed
        self._rng = random.Random(f"faults:{seed}")

    def reset(self, faults: FaultSettings) -> None:
        """Back to ``faults`` and the RNG's first draw."""
        self.faults = faults
        self._rng = random.Random(f"faults:{self._seed}")

    def plan(self, directives: Directives, *, generation: bool = True) -> FaultPlan:
        """The faults for one request.

        Configured latency and rates apply to generation endpoints only (not to
        ``count_tokens``); directives apply wherever they are read, and win.
        """
        faults = self.faults
        reasons: list[str] = []
        delay_ms = ttft_ms = chunk_ms = 0.0
        status: int | None = None
        malformed = cut_midway = False
        if generation:
            draws = [self._rng.random() for _ in range(6)]
            delay_ms = faults.latency_ms + draws[0] * faults.latency_jitter_ms
            ttft_ms, chunk_ms = faults.ttft_ms, faults.chunk_delay_ms
            for (code, field), draw in zip(_STATUS_RATES, draws[1:4], strict=True):
                if status is None and draw < getattr(faults, field):
                    status = code
                    reasons.append(f"status={code} (rate)")
            if draws[4] < faults.malformed_json_rate:
                malformed = True
                reasons.append("malformed (rate)")
            if draws[5] < faults.stream_cut_rate:
                cut_midway = True
                reasons.append("cut_midway (rate)")
        if directives.delay_ms is not None:
            delay_ms = directives.delay_ms
            reasons.append(f"delay_ms={directives.delay_ms} (directive)")
        if directives.ttft_ms is not None:
            ttft_ms = directives.ttft_ms
            reasons.append(f"ttft_ms={directives.ttft_ms} (directive)")
        if directives.stream_delay_ms is not None:
            chunk_ms = directives.stream_delay_ms
            reasons.append(f"stream_delay_ms={directives.stream_delay_ms} (directive)")
        if directives.status is not None:
            status = directives.status
            reasons.append(f"status={status} (directive)")
        if directives.malformed:
            malformed = True
            reasons.append("malformed (directive)")
        if directives.cut_after is not None:
            reasons.append(f"cut_after={directives.cut_after} (directive)")
        if directives.stream_error_after is not None:
            reasons.append(f"stream_error={directives.stream_error_after} (directive)")
        if directives.stall_after is not None:
            reasons.append(f"stall_after={directives.stall_after} (directive)")
        if directives.silence_ms is not None:
            reasons.append(f"silence_ms={directives.silence_ms} (directive)")
        if directives.cloudflare is not None:
            reasons.append(f"cloudflare={directives.cloudflare} (directive)")
        return FaultPlan(
            delay_s=delay_ms / 1000,
            status=status,
            cloudflare=directives.cloudflare is not None,
            malformed=malformed,
            cut_after=directives.cut_after,
            cut_midway=cut_midway,
            stream_error_after=directives.stream_error_after,
            stall_after=directives.stall_after,
            silence_s=(directives.silence_ms or 0) / 1000,
            silence_after=max(1, directives.silence_after or 1),
            ttft_s=ttft_ms / 1000,
            chunk_delay_s=chunk_ms / 1000,
            reasons=tuple(reasons),
        )
