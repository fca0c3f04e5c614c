"""Prometheus metrics for a proxy app: what it counts, and ``GET /metrics`` that shows it.

:class:`ProxyMetrics` owns one ``CollectorRegistry`` per app (tests build several apps in
one process; prometheus-client's global registry would mix them and refuse the second
app's metric names), the request counts in it kept as plain counts
(:mod:`memory_proxy.request_counts`: prometheus-client's locked ``Counter`` and
``Histogram`` updates were most of the metrics' cost per request) and turned into
metrics at scrape time. :class:`RequestMetrics`, a pure ASGI middleware, observes every
request from outside the app: endpoint, model route, status class, client family,
latency, time to the first body byte, streams in flight, clients that left early, and
the upstream attempts and retries the handlers noted on the access-log line
(``annotate(request, attempts=..., retried=[...], route=...)``). The handlers know
nothing of metrics.

Labels are bounded by construction, never copied from a client's request: the endpoint
is a name from ``ENDPOINT_NAMES`` (else ``other``), the route a configured route name
(a model no route matches is ``unrouted``), the client family one of
``client_family``'s names. No user id, conversation id, prompt or key is ever a label.

The same middleware answers ``GET /metrics`` (:class:`MetricsEndpoint`) with
prometheus-client's own exposition (``make_asgi_app``), behind the same master key as
``/v1/models``: Prometheus sends it with ``authorization: {credentials: ...}`` (or
``bearer_token``) in the scrape config. :class:`MetricsRoute` serves it in front of an app
that counts nothing itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.asgi import make_asgi_app
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory_proxy.api_formats import ENDPOINT_NAMES
from memory_proxy.auth import require_master_key
from memory_proxy.config import ProxyConfig
from memory_proxy.memory_router import client_family
from memory_proxy.request_counts import RequestCounts
from memory_proxy.service_routes import render_error

__all__ = [
    "METRICS_PATH",
    "UNROUTED",
    "MetricsEndpoint",
    "MetricsRoute",
    "ProxyMetrics",
    "RequestMetrics",
    "add_metrics",
]

METRICS_PATH = "/metrics"
UNROUTED = "unrouted"
OTHER_ENDPOINT = "other"
_FAMILY_CACHE_LIMIT = 256  # distinct User-Agents remembered; beyond it, matched each time
_EVENT_STREAM = b"text/event-stream"


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

    def stream_started(self, endpoint: str) -> None:
        self.counts.stream_started(endpoint)

    def stream_ended(self, endpoint: str) -> None:
        self.counts.stream_ended(endpoint)

    def observe(
        self,
        *,
        endpoint: str,
        status: int,
        user_agent: str | None,
        fields: dict[str, Any],
        stream: bool,
        latency: float,
        first_byte: float | None,
        disconnected: bool,
    ) -> None:
        """One finished request; ``fields`` is its access-log annotations."""
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


class RequestMetrics:
    """Observes every request of ``app`` into ``metrics``, and answers ``GET /metrics``
    with ``endpoint`` (that request itself is not counted).

    One middleware for both: every layer is one more frame that each resumption of a
    request's task passes through, which a stream pays once per chunk relayed.
    """

    def __init__(self, app: ASGIApp, *, metrics: ProxyMetrics, endpoint: MetricsEndpoint) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH:
            if scope["method"] == "GET":
                await self.endpoint(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        metrics = self.metrics
        endpoint = ENDPOINT_NAMES.get((scope["method"], scope["path"]), OTHER_ENDPOINT)
        started = time.perf_counter()
        first_byte_at: float | None = None
        status = 0
        stream = False
        finished = False

        async def observed_send(message: Message) -> None:
            nonlocal status, stream, finished, first_byte_at
            if message["type"] == "http.response.body":
                if first_byte_at is None and message.get("body"):
                    first_byte_at = time.perf_counter()
                if not message.get("more_body"):
                    finished = True
            elif message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type" and value.startswith(_EVENT_STREAM):
                        stream = True
                        metrics.stream_started(endpoint)
                        break
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            ended = time.perf_counter()
            if stream:
                metrics.stream_ended(endpoint)
            user_agent = None
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    user_agent = value.decode("latin-1")
                    break
            metrics.observe(
                endpoint=endpoint,
                status=status,
                user_agent=user_agent,
                fields=scope.get("state", {}).get("access_log", {}),
                stream=stream,
                latency=ended - started,
                first_byte=None if first_byte_at is None else first_byte_at - started,
                # An answer begun but never ended: the client left (or its send failed).
                disconnected=bool(status) and not finished,
            )


class MetricsEndpoint:
    """Answers ``GET /metrics`` with ``registry``'s exposition, behind ``master_key``.

    A refused scrape gets the app's own error body (``render_error``), as any route would.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        master_key: str | None,
        render_error: Callable[[Request, Exception], Response] = render_error,
    ) -> None:
        self.master_key = master_key
        self.render_error = render_error
        self.expose = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            require_master_key(Headers(scope=scope), self.master_key)
        except Exception as exc:  # noqa: BLE001 - rendered like any refused request
            await self.render_error(Request(scope, receive), exc)(scope, receive, send)
            return
        await self.expose(scope, receive, send)


class MetricsRoute:
    """Serves ``GET /metrics`` from ``registry`` behind ``master_key``; passes the rest on
    (an app that counts no requests of its own: shadow mode in front of a legacy primary).
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
        self.endpoint = MetricsEndpoint(registry, master_key=master_key, render_error=render_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        await self.endpoint(scope, receive, send)


def add_metrics(app: Starlette, config: ProxyConfig, *, proxy: str) -> None:
    """``GET /metrics`` and the counting behind it, unless ``memory_proxy.metrics`` is off.

    ``app.state.metrics`` is then the app's :class:`ProxyMetrics` (None when off), where a
    wrapper of the app (shadow mode) registers its own collectors: one scrape target.
    """
    app.state.metrics = None
    if not config.options.metrics:
        return
    metrics = ProxyMetrics(proxy)
    app.state.metrics = metrics
    endpoint = MetricsEndpoint(
        metrics.registry, master_key=config.general.master_key, render_error=render_error
    )
    app.add_middleware(RequestMetrics, metrics=metrics, endpoint=endpoint)
