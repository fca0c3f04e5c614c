"""What both proxies serve alike: health, liveness, memory-routing info, and error bodies.

The SDK app and the legacy app differ in how they reach a provider, not in how they
describe themselves or fail: :func:`add_service_routes` declares the public routes
(no key needed, nothing secret in them) and :func:`add_error_handlers` renders every
:class:`ProxyError`, and FastAPI's own 404 and 405, with :func:`render_error`, in the
format of the endpoint that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from memory_proxy import __version__
from memory_proxy.api_formats import error_format_for
from memory_proxy.config import ProxyConfig
from memory_proxy.errors import InvalidRequest, ProxyError, UpstreamError
from memory_proxy.http_headers import relayed_response_headers
from memory_proxy.memory_router import MemoryRouter

__all__ = ["add_error_handlers", "add_probe_routes", "add_service_routes", "render_error"]

# Clients probe these before their first call (Claude Code: ``HEAD /``, ``HEAD
# /api/hello``); a 200 without a body keeps them out of error logs and gates.
PROBE_PATHS = ("/", "/api/hello")

# The name these lines have always been logged under, which log filters may rely on.
logger = logging.getLogger("memory_proxy.app")


def add_service_routes(
    app: FastAPI,
    *,
    service: str,
    config: ProxyConfig,
    router: MemoryRouter,
    models: Sequence[str],
    details: Callable[[], Mapping[str, Any]] | None = None,
    ready: Callable[[], bool] | None = None,
) -> None:
    """``/health``, ``/health/liveliness``, ``/health/readiness``, ``/memory-routing/info``.

    ``details`` adds fields to the health body after its version; ``ready`` says whether
    liveness answers "ok" or "starting" (always "ok" without it).
    """

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "healthy",
            "service": service,
            "version": __version__,
            **(details() if details is not None else {}),
            "models": list(models),
            "auth": bool(config.general.master_key),
            "memory_routing": {
                "custom_header": config.user_id_mappings.custom_header,
                "default_user_id": config.user_id_mappings.default_user_id,
                "patterns": len(router.patterns),
            },
        }

    @app.get("/health/liveliness")
    @app.get("/health/readiness")
    async def alive() -> dict[str, str]:
        return {"status": "ok" if ready is None or ready() else "starting"}

    @app.get("/memory-routing/info")
    async def routing_info(request: Request) -> dict[str, Any]:
        decision = router.detect_user_id(request.headers)
        return {**decision.describe(), "rules": router.summary()}


def add_probe_routes(app: FastAPI) -> None:
    """``HEAD`` on :data:`PROBE_PATHS`: 200, no body, no key needed, nothing revealed."""

    async def probe() -> Response:
        return Response(status_code=200)

    for path in PROBE_PATHS:
        app.add_api_route(path, probe, methods=["HEAD"], include_in_schema=False)


def add_error_handlers(app: FastAPI) -> None:
    """Render every :class:`ProxyError` the app raises, and FastAPI's own refusals, with
    :func:`render_error`."""

    @app.exception_handler(ProxyError)
    async def proxy_error(request: Request, exc: ProxyError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI's own answers (no such path, a method the path does not take) come in
        # the endpoint's format too, not as {"detail": ...}.
        response = render_error(request, InvalidRequest(str(exc.detail), status=exc.status_code))
        response.headers.update(exc.headers or {})
        return response


def render_error(request: Request, exc: Exception) -> Response:
    """The error body in the format of the endpoint that failed, or, for a provider's
    answer on a pass-through path, that answer: status, headers and body as it came."""
    path = request.scope["path"]
    fmt = error_format_for(path)
    if isinstance(exc, ProxyError):
        if isinstance(exc, UpstreamError):
            logger.warning("upstream error %s: %s", exc.status, exc.message)
        reply = exc.upstream_reply
        if reply is not None:
            return Response(
                reply.body,
                status_code=reply.status,
                headers=relayed_response_headers(reply.headers),
                media_type=reply.content_type,
            )
        return JSONResponse(fmt.error_body(exc), status_code=exc.status, headers=exc.headers())
    # A bug of ours: log the traceback, give the client a clean error in its format.
    logger.exception("unhandled error on %s", path, exc_info=exc)
    error = UpstreamError("internal error in the proxy", status=500)
    return JSONResponse(fmt.error_body(error), status_code=500)
