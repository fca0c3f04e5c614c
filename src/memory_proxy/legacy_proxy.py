"""The legacy memory proxy (the "binary" architecture): an HTTP forwarder to the LiteLLM server.

::

    client -> legacy memory proxy :8765 -HTTP-> LiteLLM server :4000 -> provider

It detects the memory user id with the same :class:`MemoryRouter` as the SDK proxy, adds
the memory headers, and forwards every other request (``/v1/*`` and the unversioned OpenAI
paths) with its own key. Streams are
passed through as they arrive, and each client request makes exactly one upstream
request (the proxy being migrated sent streams upstream twice). 429, 503 and Cloudflare
1200 replies are retried with exponential backoff before the first byte, as the migrated
proxy retries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from memory_proxy import __version__
from memory_proxy.access_log import AccessLog, annotate, note_retry
from memory_proxy.api_formats import ApiFormat, endpoint_paths, error_format_for
from memory_proxy.auth import require_master_key
from memory_proxy.config import ProxyConfig
from memory_proxy.errors import (
    ProxyError,
    UpstreamBadGateway,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from memory_proxy.memory_router import MemoryRouter
from memory_proxy.metrics import add_metrics
from memory_proxy.model_table import ModelTable
from memory_proxy.request_body import read_body_bytes
from memory_proxy.retries import RetryPolicy
from memory_proxy.service_routes import add_error_handlers, add_service_routes
from memory_proxy.upstream_errors import is_cloudflare_1200

__all__ = ["LEGACY_TRIES", "create_legacy_app"]

LEGACY_TRIES = 3
# What the client may tell the provider; everything else stays here. The LiteLLM server
# forwards every x-* header it gets upstream, so the forwarder must not pass the client's on.
_FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "anthropic-version", "anthropic-beta")
# Matched as prefixes: /v1/messages/count_tokens carries the memory headers too.
_MEMORY_PATHS = endpoint_paths("chat", "messages")
_PASSED_RESPONSE_HEADERS = ("content-type", "retry-after", "cache-control")


def create_legacy_app(config: ProxyConfig, litellm_url: str) -> FastAPI:
    router = MemoryRouter(config.user_id_mappings)
    routes = ModelTable(config.deployments)
    retry = RetryPolicy(
        retries=LEGACY_TRIES - 1,
        backoff_seconds=config.options.retry_backoff_seconds,
        backoff_max_seconds=config.options.retry_backoff_max_seconds,
        legacy=True,
    )
    holder: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["client"] = httpx.AsyncClient(
            base_url=litellm_url.rstrip("/"),
            timeout=httpx.Timeout(config.litellm.request_timeout, connect=10.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )
        try:
            yield
        finally:
            await holder["client"].aclose()

    app = FastAPI(title="memory-proxy (legacy)", version=__version__, lifespan=lifespan)

    add_service_routes(
        app,
        service="memory-proxy-legacy",
        config=config,
        router=router,
        models=config.model_names,
    )

    # A catch-all, as the proxy being migrated had: /v1/* and the unversioned OpenAI paths
    # (/chat/completions, /models) that some clients use all go to the LiteLLM server.
    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def forward(request: Request, path: str) -> Response:
        require_master_key(request.headers, config.general.master_key)
        body = await read_body_bytes(request, config.options.max_body_bytes)
        headers = {
            name: request.headers[name]
            for name in _FORWARDED_REQUEST_HEADERS
            if name in request.headers
        }
        if config.general.master_key:
            headers["authorization"] = f"Bearer {config.general.master_key}"
        if request.url.path.startswith(_MEMORY_PATHS):
            decision = router.detect_user_id(request.headers)
            headers.update(decision.upstream_headers())
            annotate(request, user_id=decision.user_id, route=_route_name(routes, body))
        upstream = holder["client"].build_request(
            request.method,
            request.url.path,
            params=request.query_params,
            content=body,
            headers=headers,
        )
        reply = await _send_with_retries(holder["client"], upstream, retry, request)
        passed = {k: v for k, v in reply.headers.items() if k.lower() in _PASSED_RESPONSE_HEADERS}
        if reply.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(
                _relay(reply, error_format_for(request.url.path)),
                status_code=reply.status_code,
                headers=passed,
                background=BackgroundTask(reply.aclose),
            )
        content = await reply.aread()
        await reply.aclose()
        return Response(content, status_code=reply.status_code, headers=passed)

    add_error_handlers(app)
    metrics = add_metrics(app, config, proxy="legacy")
    app.add_middleware(AccessLog, service="legacy", observer=metrics)
    return app


async def _send_with_retries(
    client: httpx.AsyncClient, upstream: httpx.Request, retry: RetryPolicy, request: Request
) -> httpx.Response:
    """Send once per try; only a retryable reply before any byte is relayed is tried again."""
    attempt = 0
    while True:
        attempt += 1
        annotate(request, attempts=attempt)
        try:
            reply = await client.send(upstream, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"LiteLLM server timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"LiteLLM server unreachable: {exc}") from exc
        error = await _retryable_error(reply)
        if error is None:
            return reply
        if attempt >= LEGACY_TRIES:
            return await _buffered(reply)
        note_retry(request, error)
        await asyncio.sleep(retry.delay(attempt, error))


def _route_name(routes: ModelTable, body: bytes) -> str | None:
    """The configured route the body's model goes to; None for no JSON or no such route."""
    try:
        model = json.loads(body).get("model")
    except (ValueError, AttributeError):
        return None
    route = routes.resolve(model) if isinstance(model, str) else None
    return route.deployment.model_name if route is not None else None


async def _retryable_error(reply: httpx.Response) -> ProxyError | None:
    if reply.status_code == 429:
        return UpstreamRateLimited("rate limited", retry_after=reply.headers.get("retry-after"))
    if reply.status_code == 503:
        return UpstreamUnavailable("unavailable")
    if reply.status_code >= 500:
        body = await _buffered(reply)
        if is_cloudflare_1200(body.text):
            return UpstreamUnavailable("Cloudflare error 1200")
    return None


async def _buffered(reply: httpx.Response) -> httpx.Response:
    await reply.aread()
    await reply.aclose()
    return reply


async def _relay(reply: httpx.Response, fmt: ApiFormat) -> AsyncIterator[bytes]:
    try:
        async for chunk in reply.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        # After the first byte there is no status to change: one SSE error event, then close.
        yield fmt.sse_error(UpstreamBadGateway(f"LiteLLM server stream failed: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            await reply.aclose()
