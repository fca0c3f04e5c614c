"""The SDK memory proxy: an ASGI app that calls providers with the litellm SDK in-process.

``create_app(config)`` builds everything from one :class:`ProxyConfig`; the lifespan
owns the one upstream session. Errors are :class:`ProxyError`s rendered once, by
``service_routes.render_error``, in the format of the endpoint that failed; the health and
routing-info routes are the ones the legacy app serves too. The generation endpoints are served
by :class:`FastRoutes` ahead of FastAPI's request layers (see ``fast_routes``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from memory_proxy.litellm_env import keep_litellm_offline  # noqa: E402

keep_litellm_offline()  # before litellm is imported

import litellm  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402

from memory_proxy import __version__, model_capabilities  # noqa: E402
from memory_proxy.access_log import AccessLog  # noqa: E402
from memory_proxy.api_formats import ENDPOINT_NAMES, endpoint_paths  # noqa: E402
from memory_proxy.auth import require_master_key  # noqa: E402
from memory_proxy.chat import chat_completions  # noqa: E402
from memory_proxy.config import ProxyConfig  # noqa: E402
from memory_proxy.fast_routes import Endpoint, FastRoutes  # noqa: E402
from memory_proxy.messages import count_tokens, create_message  # noqa: E402
from memory_proxy.metrics import add_metrics  # noqa: E402
from memory_proxy.model_list import models_body, served_models, wants_anthropic_shape  # noqa: E402
from memory_proxy.openapi_schemas import generation_openapi, models_openapi  # noqa: E402
from memory_proxy.proxy_state import ProxyState  # noqa: E402
from memory_proxy.service_routes import (  # noqa: E402
    add_error_handlers,
    add_probe_routes,
    add_service_routes,
    render_error,
)
from memory_proxy.session import UpstreamSession  # noqa: E402
from memory_proxy.tracing import load_tracing  # noqa: E402
from memory_proxy.upstream_observer import UpstreamObserver, observe_all  # noqa: E402

__all__ = ["create_app"]


def _configure_litellm() -> None:
    # The proxy logs its own line per request; litellm's debug banners would only add noise.
    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    # /v1/messages for an openai/... model: translate to Chat Completions, the API the
    # deployment's api_base serves, not the Responses API litellm would pick by default.
    litellm.use_chat_completions_url_for_anthropic_messages = True
    _no_proxy_router_lookup()
    # A translated request asks litellm's model map the same questions every call.
    model_capabilities.install()


def _no_proxy_router_lookup() -> None:
    """Keep litellm's /v1/messages adapter from importing the LiteLLM *server*.

    For a non-Anthropic model, litellm 1.106's adapter looks for the LiteLLM server's
    router by importing ``litellm.proxy.proxy_server`` (some 1,700 modules: 5.5 s on the
    first such request, on the event loop, stalling every other request). This process
    is not that server and has no such router, so the lookup's answer is always None.
    A test checks the module stays unimported, so a litellm upgrade that moves the
    lookup shows up there.
    """
    from litellm.llms.anthropic.pass_through.adapters import handler

    if hasattr(handler, "_proxy_router_fallback"):
        handler._proxy_router_fallback = lambda: None


def create_app(
    config: ProxyConfig,
    *,
    upstream_observer: UpstreamObserver | None = None,
    tracer_provider: Any = None,
) -> FastAPI:
    """The SDK proxy's app; ``upstream_observer`` watches every provider call it makes.

    With ``memory_proxy.tracing`` on, its spans go to ``tracer_provider`` (an
    opentelemetry ``TracerProvider``; the global one when None). Off, it is not used.
    """
    tracing = load_tracing(config.options.tracing, tracer_provider)
    state = ProxyState.from_config(config, tracing)
    observer = observe_all(upstream_observer, tracing.observer())
    _configure_litellm()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One app may be served by several servers at once (shadow mode wraps the app
        # that also serves directly): each server's loop gets its own clients.
        if state.session is None:
            state.session = UpstreamSession(
                timeout=config.litellm.request_timeout, observer=observer
            )
        session = state.session
        session.open()
        try:
            yield
        finally:
            await session.aclose()
            if not session.loops:
                state.session = None

    app = FastAPI(
        title="memory-proxy (SDK)",
        version=__version__,
        lifespan=lifespan,
        telemetry=tracing.fastapi_telemetry(),  # type: ignore[arg-type]
    )
    app.state.proxy = state

    async def authorized(request: Request) -> None:
        require_master_key(request.headers, config.general.master_key)

    async def chat(request: Request) -> Response:
        await authorized(request)
        return await chat_completions(state, request)

    async def messages(request: Request) -> Response:
        await authorized(request)
        return await create_message(state, request)

    async def messages_count_tokens(request: Request) -> Response:
        await authorized(request)
        return await count_tokens(state, request)

    handlers: dict[str, Endpoint] = {
        "chat": chat,
        "messages": messages,
        "count_tokens": messages_count_tokens,
    }
    generation = {
        (method, path): handlers[name]
        for (method, path), name in ENDPOINT_NAMES.items()
        if name in handlers
    }
    # Declared for the OpenAPI schema; FastRoutes answers these before FastAPI does.
    # The unversioned paths stay out of it: the same endpoints, for clients that use them.
    for (method, path), endpoint in generation.items():
        app.add_api_route(
            path,
            endpoint,
            methods=[method],
            openapi_extra=generation_openapi(path, state.models.names),
            include_in_schema=path.startswith("/v1/"),
        )

    listed = served_models(state.models, config.options.wildcard_models)

    async def models(request: Request) -> Response:
        await authorized(request)
        anthropic = wants_anthropic_shape(request.headers)
        return JSONResponse(models_body(listed, request.query_params, anthropic=anthropic))

    for path in endpoint_paths("models"):
        app.add_api_route(
            path,
            models,
            methods=["GET"],
            openapi_extra=models_openapi(),
            include_in_schema=path.startswith("/v1/"),
        )

    add_service_routes(
        app,
        service="memory-proxy-sdk",
        config=config,
        router=state.router,
        models=state.models.names,
        details=lambda: {"litellm_version": _litellm_version()},
        ready=lambda: state.session is not None,
    )
    add_probe_routes(app)
    add_error_handlers(app)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        return render_error(request, exc)

    app.add_middleware(FastRoutes, routes=generation, render_error=render_error)
    metrics = add_metrics(app, config, proxy="sdk")
    # Added last, so outermost: one line (and one count) for every request, fast route or
    # not.
    app.add_middleware(AccessLog, service="sdk", observer=metrics)
    return app


@functools.cache
def _litellm_version() -> str:
    """Read once: ``importlib.metadata.version`` scans the installed distributions, 1.5 ms
    of CPU a call here, which made ``GET /health`` slower than legacy's in shadow mode's
    latency gate."""
    from importlib.metadata import version

    return version("litellm")
