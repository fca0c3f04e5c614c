"""Retries of upstream calls, before the first byte reaches the client only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from memory_proxy.errors import ProxyError
from memory_proxy.upstream_errors import translate_upstream_error

__all__ = ["RetryPolicy", "call_with_retries"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 8.0

    def delay(self, attempt: int, error: ProxyError) -> float:
        """Exponential backoff; an upstream Retry-After wins when it is within the cap."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.backoff_max_seconds)
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return min(self.backoff_seconds * (2 ** (attempt - 1)), self.backoff_max_seconds)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_attempt: Callable[[int, ProxyError | None], None] | None = None,
) -> T:
    """Run ``call``; on a retryable failure (429, 503, Cloudflare 1200) wait and run it again.

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
