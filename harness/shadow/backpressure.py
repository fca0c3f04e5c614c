"""How many mirrors the shadow target gets at once: AIMD on ``shadow.max_in_flight``. Pure.

A mirror target that is overloaded answers slower, then with 429s, 5xx and timeouts. The
LiteLLM server behind a legacy proxy is the case in point: under heavy mirror load its
router puts deployments in cooldown (429 "No deployments available") and then every call
ends in a 60 s timeout (504). Keeping ``max_in_flight`` mirrors open against it keeps it
there. So, as TCP does with its congestion window:

* a mirror that ends in 429, 5xx, a timeout or a transport error, or whose answer's
  headers came more than ``latency_bound`` seconds after the primary's, halves the
  limit (multiplicative decrease), at most once per round: mirrors that were already on
  their way when it was cut report the same trouble and must not cut it again;
* every other answer adds ``1 / limit`` (additive increase: one more per limit's worth of
  good answers), up to ``max_in_flight``.

The limit never drops below ``floor``: one mirror keeps probing the target, so the limit
recovers when the target does. The engine's workers respect :attr:`AdaptiveLimit.limit`;
what the engine then cannot take is counted as ``backpressure``.
"""

from __future__ import annotations

import math
from enum import Enum

__all__ = ["AdaptiveLimit", "Signal", "classify"]


class Signal(Enum):
    """What one mirrored call says about the target's load."""

    OK = "ok"
    SLOW = "slow"  # answered, but its headers came late
    THROTTLED = "throttled"  # 429
    FAILED = "failed"  # 5xx, a timeout, or no answer at all


def classify(
    status: int | None, error: str | None, added_latency: float, latency_bound: float
) -> Signal:
    """The signal of one mirrored call. Pure.

    ``added_latency``: seconds the target's answer headers came after the primary's (its
    own delay, not the provider's). A 4xx other than 429 is the request's fault, not load.
    """
    if error is not None or status is None or status >= 500:
        return Signal.FAILED
    if status == 429:
        return Signal.THROTTLED
    if added_latency > latency_bound:
        return Signal.SLOW
    return Signal.OK


class AdaptiveLimit:
    """The concurrency limit, driven by :meth:`observe`; no clock, no I/O."""

    def __init__(self, ceiling: int, floor: int = 1, decrease: float = 0.5) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self.decrease = decrease
        self.decreases = 0  # cuts so far
        self._window = float(self.ceiling)
        self._round = 0  # bumped at each cut: mirrors started before it do not cut again

    @property
    def limit(self) -> int:
        """Mirrors the target may have at once now."""
        return max(self.floor, math.floor(self._window))

    @property
    def reduced(self) -> bool:
        """Whether the limit is below the ceiling (the target showed trouble)."""
        return self.limit < self.ceiling

    @property
    def round(self) -> int:
        """Tag a mirror with this when it starts; pass it back to :meth:`observe`."""
        return self._round

    def observe(self, signal: Signal, started_round: int) -> int:
        """Fold in one mirror's signal; the new limit."""
        if signal is Signal.OK:
            self._window = min(float(self.ceiling), self._window + 1 / max(self._window, 1.0))
        elif started_round == self._round:
            self._window = max(float(self.floor), self._window * self.decrease)
            self._round += 1
            self.decreases += 1
        return self.limit
