"""What live mirroring may spend: requests and tokens per UTC day. Pure (handed the time).

In live mode (``shadow.upstream: live``) every mirrored request reaches the provider a
second time and is billed. ``shadow.live_budget_requests`` and ``shadow.live_budget_tokens``
cap that per UTC day (0: no cap); past either, nothing more is mirrored that day, and the
requests are counted as skipped (``live_budget``). Tokens are counted from the usage the
mirror side's answers report, so a cap on tokens may be passed by the answers in flight
when it is reached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["LiveBudget"]


def _day(now: float) -> int:
    return int(now // 86_400)


@dataclass
class LiveBudget:
    max_requests: int = 0  # per UTC day; 0: no cap
    max_tokens: int = 0
    requests: int = 0
    tokens: int = 0
    _day: int = field(default=-1, repr=False)

    def _roll(self, now: float) -> None:
        if _day(now) != self._day:
            self._day, self.requests, self.tokens = _day(now), 0, 0

    def admit(self, now: float | None = None) -> bool:
        """One more mirrored request today? Counts it when so."""
        self._roll(time.time() if now is None else now)
        if self.max_requests and self.requests >= self.max_requests:
            return False
        if self.max_tokens and self.tokens >= self.max_tokens:
            return False
        self.requests += 1
        return True

    def spend(self, tokens: int, now: float | None = None) -> None:
        self._roll(time.time() if now is None else now)
        self.tokens += max(tokens, 0)

    def as_dict(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "tokens": self.tokens,
            "max_requests": self.max_requests,
            "max_tokens": self.max_tokens,
        }
