"""Prometheus metrics for a proxy app: what it counts, and ``GET /metrics`` that shows it.

:class:`ProxyMetrics` owns one ``CollectorRegistry`` per app (tests build several apps in
one process; prometheus-client's global registry would mix them and refuse the second
app's metric names). It counts every request the app's ``AccessLog`` reports to it, seen
from outside the app (:class:`memory_proxy.access_log.RequestObserver`: one wrapper of
``send`` serves the log line and the metrics): endpoint, model route, status class,
client family, latency, time to the first body byte, streams in flight, clients that left
early, and the upstream attempts and retries the handlers noted on the access-log line
(``annotate(request, attempts=..., retried=[...], route=...)``). The handlers know
nothing of metrics. The counts are plain ones (:mod:`memory_proxy.request_counts`, which
says why), turned into metrics when ``/metrics`` is scraped.

Labels are bounded by construction, never copied from a client's request: the endpoint
is a name from ``ENDPOINT_NAMES`` (else ``other``), the route a configured route name
(a model no route matches is ``unrouted``), the client family one of
``client_family``'s names. No user id, conversation id, prompt or key is ever a label.

:class:`MetricsRoute` answers ``GET /metrics`` with prometheus-client's own exposition
(``make_asgi_app``), behind the same master key as ``/v1/models``: Prometheus sends it
with ``authorization: {credentials: ...}`` (or ``bearer_token``) in the scrape config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.asgi import make_asgi_app
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from memory_proxy.api_formats import ENDPOINT_NAMES
from memory_proxy.auth import require_master_key
from memory_proxy.config import ProxyConfig
from memory_proxy.memory_router import client_family
from memory_proxy.request_counts import RequestCounts
from memory_proxy.service_routes import render_error

__all__ = [
    "METRICS_PATH",
    "UNROUTED",
    "MetricsRoute",
    "ProxyMetrics",
    "add_metrics",
]

METRICS_PATH = "/metrics"
UNROUTED = "unrouted"
OTHER_ENDPOINT = "other"
_FAMILY_CACHE_LIMIT = 256  # distinct User-Agents remembered; beyond it, matched each time


class ProxyMetrics:
    """The metrics of one proxy app (``proxy`` is ``sdk`` or ``legacy``), in a registry
    of its own."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy
        self.registry = CollectorRegistry()
        self.counts = RequestCounts(proxy)
        self.registry.register(self.counts)
        self._families: dict[str, str] = {}

    def register(self, collector: Collector) -> None:
        """Expose another collector's metrics on this app's ``/metrics`` too."""
        self.registry.register(collector)

    def family(self, user_agent: str | None) -> str:
        if user_agent is None:
            return client_family(None)
        family = self._families.get(user_agent)
        if family is None:
            family = client_family(user_agent)
            if len(self._families) < _FAMILY_CACHE_LIMIT:
                self._families[user_agent] = family
        return family

    def stream_started(self, scope: Scope) -> None:
        self.counts.stream_started(_endpoint(scope))

    def request_ended(
        self,
        scope: Scope,
        fields: dict[str, Any],
        *,
        status: int,
        stream: bool,
        latency: float,
        first_byte: float | None,
        disconnected: bool,
    ) -> None:
        """One request the app is done with (``GET /metrics`` itself is not counted);
        ``fields`` is its access-log annotations."""
        if scope["path"] == METRICS_PATH:
            return
        endpoint = _endpoint(scope)
        if stream:
            self.counts.stream_ended(endpoint)
        user_agent = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
                break
        self.counts.request(
            endpoint,
            fields.get("route") or UNROUTED,
            f"{status // 100}xx" if status else "none",
            self.family(user_agent),
            "true" if stream else "false",
            latency,
            first_byte,
            fields.get("attempts") or 0,
            fields.get("retried", ()),
            disconnected,
        )


def _endpoint(scope: Scope) -> str:
    return ENDPOINT_NAMES.get((scope["method"], scope["path"]), OTHER_ENDPOINT)


class MetricsRoute:
    """Serves ``GET /metrics`` from ``registry`` behind ``master_key``; passes the rest on.

    A refused scrape gets the app's own error body (``render_error``), as any route would.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry,
        master_key: str | None,
        render_error: Callable[[Request, Exception], Response] = render_error,
    ) -> None:
        self.app = app
        self.master_key = master_key
        self.render_error = render_error
        self.expose = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        try:
            require_master_key(Headers(scope=scope), self.master_key)
        except Exception as exc:  # noqa: BLE001 - rendered like any refused request
            await self.render_error(Request(scope, receive), exc)(scope, receive, send)
            return
        await self.expose(scope, receive, send)


def add_metrics(app: Starlette, config: ProxyConfig, *, proxy: str) -> ProxyMetrics | None:
    """``GET /metrics``, unless ``memory_proxy.metrics`` is off; the app's
    :class:`ProxyMetrics`, for its ``AccessLog`` to report every request to (None when off).

    ``app.state.metrics`` is that too, where a wrapper of the app (shadow mode) registers
    its own collectors: one scrape target.
    """
    app.state.metrics = None
    if not config.options.metrics:
        return None
    metrics = ProxyMetrics(proxy)
    app.state.metrics = metrics
    app.add_middleware(
        MetricsRoute,
        registry=metrics.registry,
        master_key=config.general.master_key,
        render_error=render_error,
    )
    return metrics
