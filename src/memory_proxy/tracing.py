"""OpenTelemetry tracing of the SDK proxy: optional (the ``tracing`` extra), off by default.

With ``memory_proxy: {tracing: true}`` each request gives one trace:

::

    SERVER   "POST /v1/messages"   the request, head to last body byte: FastAPI's own span
    │                              (continues a caller's trace from its ``traceparent``)
    ├── INTERNAL "route"           the model route and the memory user id
    ├── CLIENT   "POST"            each provider call (every attempt, pass-through and
    │                              litellm alike), from send to the end of its body
    └── INTERNAL "relay"           a stream relayed to the client, first event to last

and every provider request carries a ``traceparent`` of the request's span, so the
upstream's (and, in shadow mode, the mirror side's) spans join the same trace.

This module never imports opentelemetry: the proxy must run without the extra.
:func:`load_tracing` imports it (``otel_tracing``) only when tracing is switched on, and
turns its absence into a :class:`ConfigError`. Off, every hook is a no-op on a shared
object: no span, no header, no observer.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

from memory_proxy.errors import ConfigError
from memory_proxy.upstream_observer import UpstreamObserver

__all__ = ["NO_TRACING", "Span", "Tracing", "console_tracer_provider", "load_tracing"]

AttributeValue = str | bool | int | float


class Span(Protocol):
    """A span in progress; the proxy's code never sees opentelemetry's own types."""

    def set(self, attributes: Mapping[str, AttributeValue]) -> None: ...

    def end(self, error: str | None = None) -> None:
        """End it; ``error`` (a short kind, e.g. an exception's name) marks it failed."""

    def __enter__(self) -> Span: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Tracing(Protocol):
    enabled: bool

    def span(self, name: str) -> Span:
        """A child of the current span, made current inside its ``with`` block."""

    def start_span(self, name: str) -> Span:
        """A child of the current span, ended by ``end()``, never made current (for a
        stream's relay, which outlives any one ``with`` block of its handler)."""

    def inject(self, headers: dict[str, str]) -> None:
        """Add the current span's ``traceparent`` (and ``tracestate``) to ``headers``."""

    def observer(self) -> UpstreamObserver | None:
        """The observer that gives each provider call its CLIENT span."""

    def fastapi_telemetry(self) -> dict[str, Any]:
        """``FastAPI(telemetry=...)``: FastAPI's native OpenTelemetry support makes the
        SERVER span."""

    def name_request(self, method: str, route: str) -> None:
        """Name the current request's SERVER span by its ``route`` (a fixed path)."""


class _NoSpan:
    def set(self, attributes: Mapping[str, AttributeValue]) -> None:
        pass

    def end(self, error: str | None = None) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


_NO_SPAN = _NoSpan()


class _NoTracing:
    enabled = False

    def span(self, name: str) -> Span:
        return _NO_SPAN

    def start_span(self, name: str) -> Span:
        return _NO_SPAN

    def inject(self, headers: dict[str, str]) -> None:
        pass

    def observer(self) -> UpstreamObserver | None:
        return None

    def fastapi_telemetry(self) -> dict[str, Any]:
        # FastAPI traces by default whenever a global provider is set: off means off.
        return dict(_FASTAPI_TELEMETRY_OFF)

    def name_request(self, method: str, route: str) -> None:
        pass


_FASTAPI_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}


NO_TRACING: Tracing = _NoTracing()

INSTALL_HINT = "pip install 'memory-proxy[tracing]' (opentelemetry-api, opentelemetry-sdk)"


def load_tracing(enabled: bool, tracer_provider: Any = None) -> Tracing:
    """The proxy's tracing: :data:`NO_TRACING` when off; else spans on ``tracer_provider``
    (an opentelemetry ``TracerProvider``; the global one when None)."""
    if not enabled:
        return NO_TRACING
    try:
        from memory_proxy.otel_tracing import OtelTracing
    except ImportError as exc:
        raise _not_installed(exc) from None
    return OtelTracing(tracer_provider)


def console_tracer_provider() -> Any:
    """An opentelemetry ``TracerProvider`` that prints finished spans to stdout (the
    CLI's, when tracing is on); a :class:`ConfigError` without the packages."""
    try:
        from memory_proxy.otel_tracing import console_tracer_provider as build
    except ImportError as exc:
        raise _not_installed(exc) from None
    try:
        return build()
    except ImportError as exc:  # the API is there, the SDK is not
        raise _not_installed(exc) from None


def _not_installed(exc: ImportError) -> ConfigError:
    return ConfigError(
        f"memory_proxy.tracing: true needs OpenTelemetry, which is not installed "
        f"({exc.name or exc}): {INSTALL_HINT}"
    )
