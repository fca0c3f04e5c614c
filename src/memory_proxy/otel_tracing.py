"""The OpenTelemetry side of :mod:`memory_proxy.tracing`; imported only when tracing is on.

Only the OpenTelemetry *API* is used here: where spans go is the ``TracerProvider``'s
business (the CLI's console exporter, a test's in-memory one). The SERVER span is
FastAPI's own (its native OpenTelemetry support, configured by
:meth:`OtelTracing.fastapi_telemetry`); the proxy adds the rest. Context goes upstream as
W3C Trace Context only (``traceparent``, ``tracestate``), with its own propagator rather
than the global one: a client's ``baggage`` is never sent on to a provider. Attribute
names follow OpenTelemetry's HTTP semantic conventions; the proxy's own are under
``memory_proxy.``. No header value, body or key is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from memory_proxy import __version__
from memory_proxy.tracing import AttributeValue

__all__ = ["OtelTracing", "console_tracer_provider"]

_PROPAGATOR = TraceContextTextMapPropagator()


class _OtelSpan:
    def __init__(self, span: trace.Span, *, current: bool = False) -> None:
        self._span = span
        self._current = current
        self._token: object | None = None
        self._ended = False

    def set(self, attributes: Mapping[str, AttributeValue]) -> None:
        self._span.set_attributes(attributes)

    def end(self, error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        if error is not None:
            self._span.set_attribute("error.type", error)
            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()

    def __enter__(self) -> _OtelSpan:
        if self._current:
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        if exc is not None:
            self._span.record_exception(exc)
        self.end(exc_type.__name__ if exc_type is not None else None)


class OtelTracing:
    """:class:`memory_proxy.tracing.Tracing` on an OpenTelemetry ``TracerProvider``."""

    enabled = True

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.provider = tracer_provider  # None: the global one, wherever it is used
        provider = tracer_provider or trace.get_tracer_provider()
        self.tracer = provider.get_tracer("memory_proxy", __version__)

    def span(self, name: str) -> _OtelSpan:
        return _OtelSpan(self.tracer.start_span(name), current=True)

    def start_span(self, name: str) -> _OtelSpan:
        return _OtelSpan(self.tracer.start_span(name))

    def inject(self, headers: dict[str, str]) -> None:
        _PROPAGATOR.inject(headers)

    def observer(self) -> _ClientSpans:
        return _ClientSpans(self.tracer)

    def fastapi_telemetry(self) -> dict[str, Any]:
        # FastAPI's own SERVER span, on the same provider: it reads the caller's
        # traceparent, stays current while the app (every middleware included) runs, and
        # ends with the last body byte. Its metrics and logs stay off: the proxy has
        # Prometheus metrics and its access log.
        return {
            "tracing": True,
            "tracer_provider": self.provider,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
        }

    def name_request(self, method: str, route: str) -> None:
        # The fast routes answer ahead of FastAPI's router, which would otherwise name
        # the span by its route.
        span = trace.get_current_span()
        if span.is_recording():
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)


class _ClientSpans:
    """An upstream observer: a CLIENT span per provider call, a child of the span current
    when the call is sent (the request's), ended when the reply's body ends."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def call(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> _ClientSpan:
        parts = urlsplit(url)
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            # Without the query: nothing of the client's request beyond the route.
            "url.full": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "server.address": parts.hostname or "",
            "http.request.body.size": len(body),
        }
        if parts.port is not None:
            attributes["server.port"] = parts.port
        span = self.tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        return _ClientSpan(span)


class _ClientSpan:
    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.size = 0
        self.chunks = 0
        self.ended = False

    def response(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.span.set_attribute("http.response.status_code", status)
        if status >= 400:
            self.span.set_attribute("error.type", str(status))
            self.span.set_status(Status(StatusCode.ERROR))

    def chunk(self, data: bytes) -> None:
        if not self.chunks:
            self.span.add_event("first_chunk")  # time to the reply's first byte
        self.chunks += 1
        self.size += len(data)

    def end(self, error: str | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self.span.set_attribute("http.response.body.size", self.size)
        if error is not None:
            self.span.set_attribute("error.type", error)
            self.span.set_status(Status(StatusCode.ERROR, error))
        self.span.end()


def console_tracer_provider() -> trace.TracerProvider:
    """A ``TracerProvider`` printing each span to stdout as it ends (the CLI's exporter
    when tracing is on); needs ``opentelemetry-sdk``.

    Not batched: uvicorn re-raises the SIGTERM it caught once it has shut down, so the
    process ends without running exit handlers, and a batch still queued would be lost.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "memory-proxy"}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider
