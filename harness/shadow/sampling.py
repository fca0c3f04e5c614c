"""Which requests are mirrored: stateless endpoints, filters, a consistent sample, a rate
cap. No I/O: the rate cap is handed the time rather than reading a clock."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from harness.settings import ShadowSettings
from memory_proxy.api_formats import ENDPOINT_NAMES

__all__ = [
    "EvenSample",
    "RateCap",
    "SamplingPolicy",
    "endpoint_of",
    "percent_bucket",
    "policy_for",
]

# The API endpoints, and each proxy's own health check (answered by the proxy itself,
# never by a provider: mirroring it costs the mirror's target nothing upstream).
_ENDPOINTS = {**ENDPOINT_NAMES, ("GET", "/health"): "health"}


def endpoint_of(method: str, path: str) -> str | None:
    return _ENDPOINTS.get((method.upper(), path.rstrip("/") or "/"))


def percent_bucket(key: str) -> float:
    """A stable position in [0, 100) for ``key``: the same key always lands the same."""
    digest = hashlib.sha256(key.encode("utf-8", errors="replace")).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 / 100


@dataclass(frozen=True)
class SamplingPolicy:
    rate: float = 100.0  # percent of sampling keys mirrored
    endpoints: tuple[str, ...] = ("chat", "messages", "count_tokens", "models", "health")
    models: tuple[str, ...] = ()  # empty: all
    aa_rate: float = 0.0  # percent of mirrored requests also sent to legacy twice
    health_rate: float = 100.0  # percent of health checks mirrored (an EvenSample's)

    def decide(self, endpoint: str, model: str | None, sampling_key: str) -> str | None:
        """None to mirror, else why not (``skipped:<reason>``)."""
        if endpoint not in self.endpoints:
            return "skipped:endpoint"
        if endpoint == "health":
            return None  # no user, no model: sampled apart, by health_rate
        if self.models and model not in self.models:
            return "skipped:model"
        # Decided per user / conversation, so a conversation is mirrored whole or not at all.
        # Salted: the gradual cutover's slices are the unsalted buckets of the same user ids
        # (a 10 % sample would otherwise lie wholly inside a 25 % SDK slice, and the legacy
        # slice would never be mirrored).
        if percent_bucket("sample:" + sampling_key) >= self.rate:
            return "skipped:sample"
        return None

    def is_noise_probe(self, request_id: str) -> bool:
        return percent_bucket("aa:" + request_id) < self.aa_rate


def policy_for(shadow: ShadowSettings, *, repeat: bool) -> SamplingPolicy:
    """The policy ``shadow`` describes; no A/A noise probes without a repeat target."""
    return SamplingPolicy(
        rate=shadow.sample_rate,
        endpoints=shadow.endpoints,
        models=shadow.models,
        aa_rate=shadow.aa_rate if repeat else 0.0,
        health_rate=shadow.health_rate,
    )


class EvenSample:
    """``percent`` of the calls to :meth:`take` say yes, evenly spaced, the first one
    included (10 %: the 1st, 11th, 21st, ...)."""

    def __init__(self, percent: float) -> None:
        self.fraction = min(max(percent, 0.0), 100.0) / 100
        self._calls = 0

    def take(self) -> bool:
        before = math.ceil(self._calls * self.fraction - 1e-9)
        self._calls += 1
        return math.ceil(self._calls * self.fraction - 1e-9) > before


class RateCap:
    """At most ``per_second`` mirrors a second, in bursts of at most one second's worth:
    a token bucket. ``per_second <= 0`` caps nothing.

    The sample decides *who* is mirrored; the cap bounds *how much* the mirror's target
    is asked to do when traffic outgrows the host it shares with the primary. A capped
    request is dropped whole, like one the full queue sheds, so the report's gates see
    fewer pairs, not broken ones.
    """

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self.burst = max(per_second, 1.0)
        self._tokens = self.burst
        self._last: float | None = None

    def take(self, now: float) -> bool:
        if self.per_second <= 0:
            return True
        if self._last is not None:
            gained = max(0.0, now - self._last) * self.per_second
            self._tokens = min(self.burst, self._tokens + gained)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
