"""A proxy's request metrics as plain counts, turned into Prometheus metrics at scrape time.

Why not prometheus-client's ``Counter`` / ``Histogram`` / ``Gauge`` on the request path:
each of their updates takes a lock and checks the metric's type (a ``Counter.inc`` ~0.65 us,
a ``Histogram.observe`` ~1.6 us, a gauge's inc + dec ~2.5 us on a loaded 2-core host); a
streamed request made six of them, 8-9 us with their label lookups, against a budget of
0.03 ms of CPU per request for all the metrics. Here the same request is a few dict and
list updates (~2 us, same host), and :meth:`RequestCounts.collect` builds
prometheus-client's own metric families from them when ``/metrics`` is scraped, so the
exposition is still prometheus-client's (``make_asgi_app``), not hand-written.

No lock either: an app may be served on several event loops at once, each in its own
thread (shadow mode serves the app it wraps; tests do the same), and ``d[k] += 1`` is not
atomic across threads. So each thread writes only its own :class:`_Shard` (one per event
loop's thread, kept when the thread ends: its counts still count), and a scrape sums
copies of every shard (a ``dict`` or ``list`` copy is one step under the GIL). A
histogram's ``_count`` is its ``+Inf`` bucket, so buckets and count always agree; its sum
may trail by the one observation being written.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["LATENCY_BUCKETS", "RequestCounts"]

# From a few ms (a local error) to the minutes a long generation takes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# Bucket labels as prometheus-client writes them (``1.0``, ``+Inf``).
_LE = (*(floatToGoString(b) for b in LATENCY_BUCKETS), "+Inf")
_SUM = len(_LE)  # a histogram's list: one count per bucket (not cumulative), then the sum


class _Shard:
    """One thread's counts, written by that thread alone."""

    __slots__ = ("attempts", "disconnects", "latency", "requests", "retries", "streams", "ttft")

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str], int] = {}
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.ttft: dict[tuple[str, str], list[float]] = {}
        self.attempts: dict[str, int] = {}
        self.retries: dict[tuple[str, str], int] = {}
        self.streams: dict[str, int] = {}
        self.disconnects: dict[str, int] = {}


def _observe(histogram: dict[tuple[str, str], list[float]], key: tuple[str, str], v: float) -> None:
    counts = histogram.get(key)
    if counts is None:
        counts = histogram[key] = [0] * _SUM + [0.0]
    counts[bisect_left(LATENCY_BUCKETS, v)] += 1  # the first bucket whose bound is >= v
    counts[_SUM] += v


class RequestCounts(Collector):
    """The request metrics of one proxy app (``proxy``: ``sdk`` or ``legacy``).

    Label values are the caller's: bounded names, never copied from a client's request.
    """

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy
        self._local = threading.local()
        self._shards: list[_Shard] = []

    def _shard(self) -> _Shard:
        try:
            shard: _Shard = self._local.shard
        except AttributeError:
            shard = self._local.shard = _Shard()
            self._shards.append(shard)
        return shard

    def stream_started(self, endpoint: str) -> None:
        streams = self._shard().streams
        streams[endpoint] = streams.get(endpoint, 0) + 1

    def stream_ended(self, endpoint: str) -> None:
        streams = self._shard().streams
        streams[endpoint] = streams.get(endpoint, 0) - 1

    def request(
        self,
        endpoint: str,
        route: str,
        status_class: str,
        family: str,
        stream: str,
        latency: float,
        first_byte: float | None,
        attempts: int,
        retried: Iterable[str],
        disconnected: bool,
    ) -> None:
        """One finished request; ``stream`` is ``"true"`` or ``"false"``."""
        shard = self._shard()
        key = (endpoint, route, status_class, family)
        shard.requests[key] = shard.requests.get(key, 0) + 1
        _observe(shard.latency, (endpoint, stream), latency)
        if first_byte is not None:
            _observe(shard.ttft, (endpoint, stream), first_byte)
        if attempts:
            shard.attempts[endpoint] = shard.attempts.get(endpoint, 0) + attempts
        for reason in retried:
            shard.retries[endpoint, reason] = shard.retries.get((endpoint, reason), 0) + 1
        if disconnected:
            shard.disconnects[endpoint] = shard.disconnects.get(endpoint, 0) + 1

    # -- scrape time ------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        """The families without samples: the registry checks their names for clashes."""
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        shards = list(self._shards)
        yield from self._families(shards)

    def _families(self, shards: Sequence[_Shard] = ()) -> Iterator[Metric]:
        proxy = self.proxy
        requests = CounterMetricFamily(
            "memory_proxy_requests",
            "Client requests, by endpoint, model route, status class and client family.",
            labels=["proxy", "endpoint", "route", "status_class", "client_family"],
        )
        for labels, count in _summed(s.requests for s in shards):
            requests.add_metric([proxy, *labels], count)
        yield requests
        for name, documentation, attribute in (
            (
                "memory_proxy_request_duration_seconds",
                "Time from the request to the last byte of the answer.",
                "latency",
            ),
            (
                "memory_proxy_time_to_first_byte_seconds",
                "Time from the request to the first byte of the answer's body (TTFT on streams).",
                "ttft",
            ),
        ):
            histogram = HistogramMetricFamily(
                name, documentation, labels=["proxy", "endpoint", "stream"]
            )
            for labels, counts in _summed_lists(getattr(s, attribute) for s in shards):
                cumulative = 0.0
                buckets = []
                for le, in_bucket in zip(_LE, counts, strict=False):  # the sum is left over
                    cumulative += in_bucket
                    buckets.append((le, cumulative))
                histogram.add_metric([proxy, *labels], buckets, counts[_SUM])
            yield histogram
        for family, attribute in (
            (
                CounterMetricFamily(
                    "memory_proxy_upstream_attempts",
                    "Upstream calls made, retries included.",
                    labels=["proxy", "endpoint"],
                ),
                "attempts",
            ),
            (
                CounterMetricFamily(
                    "memory_proxy_upstream_retries",
                    "Upstream calls made again, by the failure that caused the retry.",
                    labels=["proxy", "endpoint", "reason"],
                ),
                "retries",
            ),
            (
                GaugeMetricFamily(
                    "memory_proxy_streams_in_flight",
                    "Event streams being relayed to clients now.",
                    labels=["proxy", "endpoint"],
                ),
                "streams",
            ),
            (
                CounterMetricFamily(
                    "memory_proxy_client_disconnects",
                    "Clients that went away before the answer's last byte.",
                    labels=["proxy", "endpoint"],
                ),
                "disconnects",
            ),
        ):
            # Keyed by endpoint, or by (endpoint, reason) for the retries.
            for key, count in _summed(getattr(s, attribute) for s in shards):
                family.add_metric([proxy, *(key if isinstance(key, tuple) else (key,))], count)
            yield family


def _summed(counts: Iterable[dict[Any, int]]) -> list[tuple[Any, int]]:
    total: dict[Any, int] = {}
    for shard in counts:
        for key, count in dict(shard).items():  # a copy: its thread may be writing
            total[key] = total.get(key, 0) + count
    return sorted(total.items())


def _summed_lists(histograms: Iterable[dict[Any, list[float]]]) -> list[tuple[Any, list[float]]]:
    total: dict[Any, list[float]] = {}
    for shard in histograms:
        for key, counts in dict(shard).items():
            counts = list(counts)
            into = total.get(key)
            if into is None:
                total[key] = counts
            else:
                total[key] = [a + b for a, b in zip(into, counts, strict=True)]
    return sorted(total.items())
