"""``RequestCounts``: what its collector exports is what prometheus-client's own
``Counter`` / ``Histogram`` / ``Gauge`` export for the same requests, and counts written
from several threads all arrive."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from memory_proxy.request_counts import LATENCY_BUCKETS, RequestCounts
from tests.metrics_scrape import Scrape

# (endpoint, route, status_class, family, stream, latency, first_byte, attempts, retried,
# disconnected): values on and between bucket bounds, the last past every bound.
Request = tuple[Any, ...]
REQUESTS: list[Request] = [
    ("chat", "gpt-4o", "2xx", "openai-sdk", "false", 0.005, 0.004, 1, (), False),
    ("chat", "gpt-4o", "2xx", "openai-sdk", "false", 0.0123, 0.011, 1, (), False),
    ("chat", "unrouted", "4xx", "curl", "false", 0.001, 0.001, 0, (), False),
    ("messages", "claude-*", "2xx", "anthropic-sdk", "true", 1.0, 0.2, 3,
     ("rate_limited", "overloaded"), False),
    ("messages", "claude-*", "2xx", "anthropic-sdk", "true", 2.6, None, 1, (), True),
    ("messages", "claude-*", "5xx", "other", "false", 301.0, 0.3, 3,
     ("overloaded", "overloaded"), False),
]  # fmt: skip


def reference(proxy: str) -> tuple[CollectorRegistry, Gauge, Callable[[Request], None]]:
    """The same metrics as prometheus-client's own classes, fed the same requests."""
    r = CollectorRegistry()
    requests = Counter(
        "memory_proxy_requests",
        "",
        ["proxy", "endpoint", "route", "status_class", "client_family"],
        registry=r,
    )
    latency = Histogram(
        "memory_proxy_request_duration_seconds",
        "",
        ["proxy", "endpoint", "stream"],
        buckets=LATENCY_BUCKETS,
        registry=r,
    )
    ttft = Histogram(
        "memory_proxy_time_to_first_byte_seconds",
        "",
        ["proxy", "endpoint", "stream"],
        buckets=LATENCY_BUCKETS,
        registry=r,
    )
    attempts = Counter("memory_proxy_upstream_attempts", "", ["proxy", "endpoint"], registry=r)
    retries = Counter(
        "memory_proxy_upstream_retries", "", ["proxy", "endpoint", "reason"], registry=r
    )
    streams = Gauge("memory_proxy_streams_in_flight", "", ["proxy", "endpoint"], registry=r)
    disconnects = Counter("memory_proxy_client_disconnects", "", ["proxy", "endpoint"], registry=r)

    def observe(request: Request) -> None:
        endpoint, route, status, family, stream, latency_s, first, n, retried, gone = request
        requests.labels(proxy, endpoint, route, status, family).inc()
        latency.labels(proxy, endpoint, stream).observe(latency_s)
        if first is not None:
            ttft.labels(proxy, endpoint, stream).observe(first)
        if n:
            attempts.labels(proxy, endpoint).inc(n)
        for reason in retried:
            retries.labels(proxy, endpoint, reason).inc()
        if gone:
            disconnects.labels(proxy, endpoint).inc()

    return r, streams, observe


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    scrape = Scrape.of(generate_latest(registry).decode())
    return {
        (name, frozenset(labels.items())): value
        for name, labels, value in scrape.samples
        if not name.endswith("_created")
    }


def test_exported_samples_equal_prometheus_clients_own() -> None:
    counts = RequestCounts("sdk")
    mine = CollectorRegistry()
    mine.register(counts)
    theirs, streams, observe = reference("sdk")

    for request in REQUESTS:
        counts.request(*request)
        observe(request)
    # Two streams started, one ended: one in flight on messages, none on chat.
    for endpoint in ("messages", "messages", "chat"):
        counts.stream_started(endpoint)
        streams.labels("sdk", endpoint).inc()
    for endpoint in ("messages", "chat"):
        counts.stream_ended(endpoint)
        streams.labels("sdk", endpoint).dec()

    got, want = samples(mine), samples(theirs)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    scrape = Scrape.of(generate_latest(mine).decode())
    # Spot checks, so that a wrong reference cannot hide a wrong export.
    duration = "memory_proxy_request_duration_seconds"
    assert scrape.value(duration + "_count", endpoint="chat") == 3
    assert scrape.value(duration + "_bucket", endpoint="chat", le="0.005") == 2  # <= bound
    assert scrape.value(duration + "_bucket", endpoint="messages", stream="false", le="300.0") == 0
    assert scrape.value(duration + "_bucket", endpoint="messages", stream="false", le="+Inf") == 1
    assert scrape.value("memory_proxy_time_to_first_byte_seconds_count", stream="true") == 1
    assert scrape.value("memory_proxy_upstream_retries_total", reason="overloaded") == 3
    assert scrape.value("memory_proxy_streams_in_flight", endpoint="messages") == 1
    assert scrape.value("memory_proxy_streams_in_flight", endpoint="chat") == 0
    assert scrape.value("memory_proxy_client_disconnects_total", endpoint="messages") == 1


def test_counts_from_several_threads_all_arrive() -> None:
    counts = RequestCounts("legacy")
    registry = CollectorRegistry()
    registry.register(counts)
    per_thread = 2000
    start = threading.Barrier(4)

    def serve() -> None:
        start.wait()
        for _ in range(per_thread):
            counts.stream_started("chat")
            counts.request("chat", "r", "2xx", "curl", "true", 0.02, 0.01, 1, (), False)
            counts.stream_ended("chat")

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    # Scrapes while the threads write (a shard read as its thread adds to it) do not fail.
    while any(t.is_alive() for t in threads):
        generate_latest(registry)
    for thread in threads:
        thread.join()

    scrape = Scrape.of(generate_latest(registry).decode())
    assert scrape.value("memory_proxy_requests_total", proxy="legacy") == 4 * per_thread
    assert scrape.value("memory_proxy_upstream_attempts_total") == 4 * per_thread
    duration = "memory_proxy_request_duration_seconds"
    assert scrape.value(duration + "_bucket", le="0.025") == 4 * per_thread
    assert scrape.value(duration + "_sum") == pytest.approx(0.02 * 4 * per_thread)
    assert scrape.value("memory_proxy_streams_in_flight") == 0


def test_its_names_clash_with_a_second_collector_of_the_same_metrics() -> None:
    registry = CollectorRegistry()
    registry.register(RequestCounts("sdk"))
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(RequestCounts("sdk"))
