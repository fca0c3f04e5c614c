"""The header policy, pure: what is forwarded and relayed, and Retry-After in seconds."""

from __future__ import annotations

import random
from email.utils import formatdate

from memory_proxy.errors import UpstreamUnavailable
from memory_proxy.http_headers import (
    RESPONSE_HEADERS_NOT_RELAYED,
    forwarded_request_headers,
    relayed_response_headers,
    retry_after_seconds,
)
from memory_proxy.retries import RetryPolicy

NOW = 1_800_000_000.0


def test_retry_after_http_date_becomes_whole_seconds() -> None:
    date = formatdate(NOW + 90.2, usegmt=True)  # HTTP-dates have whole seconds
    assert retry_after_seconds(date, now=NOW) == 90
    assert retry_after_seconds("2.5") == 3
    assert retry_after_seconds(formatdate(NOW - 10, usegmt=True), now=NOW) == 0
    assert retry_after_seconds("soon") is None


def test_relayed_headers_keep_the_providers_and_drop_the_named_ones() -> None:
    upstream = [
        ("Anthropic-Ratelimit-Unified-Status", "allowed"),
        ("request-id", "req_1"),
        ("x-should-retry", "true"),
        ("Retry-After", formatdate(NOW + 30, usegmt=True)),
        ("set-cookie", "__cf_bm=abc"),
        ("content-length", "12"),
        ("content-encoding", "gzip"),
        ("transfer-encoding", "chunked"),
    ]
    assert relayed_response_headers(upstream, now=NOW) == {
        "anthropic-ratelimit-unified-status": "allowed",
        "request-id": "req_1",
        "x-should-retry": "true",
        "retry-after": "30",
    }
    # Every exclusion says why.
    assert all(reason for reason in RESPONSE_HEADERS_NOT_RELAYED.values())


def test_forwarded_request_headers_by_provider_family() -> None:
    client = {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "oauth-2025-04-20",
        "anthropic-dangerous-direct-browser-access": "true",
        "openai-beta": "assistants=v2",
        "x-api-key": "secret",
    }
    assert forwarded_request_headers(client, "anthropic") == {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "oauth-2025-04-20",
    }
    assert forwarded_request_headers(client, "openai") == {"openai-beta": "assistants=v2"}
    assert forwarded_request_headers(client, "bedrock") == {}


def test_backoff_is_full_jitter_within_the_exponential_bound() -> None:
    policy = RetryPolicy(backoff_seconds=1.0, backoff_max_seconds=8.0, rng=random.Random(7))
    error = UpstreamUnavailable("overloaded")
    for attempt, bound in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 8.0)):
        waits = [policy.delay(attempt, error) for _ in range(200)]
        assert all(0.0 <= wait <= bound for wait in waits)
        assert max(waits) - min(waits) > bound / 2  # spread out, not one fixed wait
    legacy = RetryPolicy(backoff_seconds=1.0, legacy=True)
    assert legacy.delay(3, error) == 4.0


def test_retry_after_in_either_form_sets_the_wait() -> None:
    policy = RetryPolicy(backoff_max_seconds=8.0)
    error = UpstreamUnavailable("overloaded")
    error.retry_after = "3"
    assert policy.delay(1, error) == 3.0
    error.retry_after = formatdate(NOW + 1000, usegmt=True)
    assert policy.delay(1, error) == 8.0  # capped
