"""Retries of upstream calls, before the first byte reaches the client only."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from memory_proxy.errors import ProxyError
from memory_proxy.http_headers import retry_after_seconds
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    # The legacy proxy keeps the migrated system's plain exponential backoff.
    legacy: bool = False
    # Full jitter draws from here; a test may seed its own.
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, error: ProxyError) -> float:
        """Seconds to wait before attempt ``attempt + 1``.

        The provider's ``Retry-After`` (seconds or an HTTP-date), capped, wins.
        Otherwise exponential backoff with full jitter (a random wait up to the
        exponential bound), so clients that failed together do not come back together.
        """
        wait = retry_after_seconds(error.retry_after)
        if wait is not None:
            return min(float(wait), self.backoff_max_seconds)
        bound = min(self.backoff_seconds * (2 ** (attempt - 1)), self.backoff_max_seconds)
        return bound if self.legacy else self.rng.uniform(0.0, bound)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_attempt: Callable[[int, ProxyError | None], None] | None = None,
) -> T:
    """Run ``call``; on a retryable failure (429, 503/529, Cloudflare 1200) wait and run
    it again, unless the provider said ``x-should-retry: false``.

    ``on_attempt`` hears of each attempt before it is made: its number, and the failure
    that made it a retry (None for the first).

    Every failure leaves as a :class:`ProxyError`: this is the boundary where litellm's
    and the transports' exceptions are translated.
    """
    attempt = 0
    previous: ProxyError | None = None
    while True:
        attempt += 1
        if on_attempt is not None:
            on_attempt(attempt, previous)
        try:
            return await call()
        except Exception as exc:  # noqa: BLE001 - translated right here, once
            error = translate_upstream_error(exc)
            if not error.retryable or attempt > policy.retries:
                raise error from exc
            previous = error
            await asyncio.sleep(policy.delay(attempt, error))
