"""The provider API surface: routes matched by path suffix under any prefix.

``POST .../v1/messages``, ``POST .../v1/messages/count_tokens``,
``POST .../chat/completions``, ``POST .../responses`` and ``GET .../models`` answer
whatever comes before them, so ``/v1/messages?beta=true`` and Supermemory's
``/v3/api.anthropic.com/v1/messages`` both reach the Anthropic handler. Each request is
captured before anything can reject it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from harness.sandbox import anthropic_api, openai_api, responses_api
from harness.sandbox.capture import CaptureRecord
from harness.sandbox.directives import parse_directives
from harness.sandbox.errors import (
    ApiError,
    InjectedFault,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    Unauthenticated,
)
from harness.sandbox.exchange import ApiExchange
from harness.sandbox.faults import FaultPlan
from harness.sandbox.formats import ANTHROPIC, OPENAI, GenerationApi, ProviderFormat
from harness.sandbox.prompt import Prompt
from harness.sandbox.replies import plan_reply
from harness.sandbox.state import SandboxState

__all__ = ["ApiRoute", "api_endpoint", "match_route"]

Handler = Callable[[SandboxState, ApiExchange], Awaitable[Response]]


@dataclass(frozen=True)
class ApiRoute:
    """An endpoint: the path endings it answers, its method, format and handler."""

    name: str
    suffixes: tuple[str, ...]
    method: str
    format: ProviderFormat
    handler: Handler


def match_route(path: str) -> ApiRoute | None:
    """The route whose suffix ends ``path`` (longest suffixes are tried first)."""
    path = path.rstrip("/")
    for route in _ROUTES:
        if any(path.endswith(suffix) for suffix in route.suffixes):
            return route
    return None


async def api_endpoint(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    body = await request.body()
    record = state.captures.record(
        method=request.method,
        path=request.url.path,
        query=request.url.query,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
        body=body,
    )
    route = match_route(request.url.path)
    api_format = route.format if route else _guess_format(request.url.path, request.headers)
    record.endpoint = route.name if route else None
    exchange = ApiExchange(state, record, api_format, request.headers.get("cookie"))
    try:
        if exchange.blocked:
            exchange.record.faults.append("cloudflare=1200 (no valid __cf_bm cookie)")
            return exchange.cloudflare()
        if route is None:
            raise NotFound()
        if request.method != route.method:
            raise MethodNotAllowed()
        _require_api_key(request.headers)
        return await route.handler(state, exchange)
    except ApiError as error:
        return exchange.error(error)


async def _messages(state: SandboxState, exchange: ApiExchange) -> Response:
    return await _generate(state, exchange, anthropic_api.MESSAGES)


async def _chat_completions(state: SandboxState, exchange: ApiExchange) -> Response:
    return await _generate(state, exchange, openai_api.CHAT_COMPLETIONS)


async def _responses(state: SandboxState, exchange: ApiExchange) -> Response:
    return await _generate(state, exchange, responses_api.RESPONSES)


async def _count_tokens(state: SandboxState, exchange: ApiExchange) -> Response:
    body = _json_body(exchange)
    prompt = anthropic_api.read_count_tokens_request(body)
    plan = await _apply_faults(state, exchange, prompt, generation=False)
    if plan.cloudflare:
        return exchange.cloudflare()
    return exchange.json(anthropic_api.count_tokens_body(prompt), malformed=plan.malformed)


async def _models(state: SandboxState, exchange: ApiExchange) -> Response:
    return exchange.json(openai_api.models_body(state.settings.models))


async def _generate(state: SandboxState, exchange: ApiExchange, api: GenerationApi) -> Response:
    body = _json_body(exchange)
    prompt = api.read_prompt(body)
    exchange.record.stream = body.get("stream") is True
    plan = await _apply_faults(state, exchange, prompt, generation=True)
    if plan.cloudflare:
        return exchange.cloudflare()
    entropy, created = state.reply_entropy()
    reply = plan_reply(prompt, entropy, created)
    if exchange.record.stream:
        return exchange.stream(api.render_stream(reply, body), plan)
    return exchange.json(api.render_body(reply, body), malformed=plan.malformed)


async def _apply_faults(
    state: SandboxState, exchange: ApiExchange, prompt: Prompt, *, generation: bool
) -> FaultPlan:
    """Plan the request's faults, wait out its latency, raise an injected error status."""
    plan = state.faults.plan(parse_directives(prompt.last_user_text), generation=generation)
    exchange.record.faults.extend(plan.reasons)
    if plan.delay_s > 0:
        await anyio.sleep(plan.delay_s)
    if plan.status is not None and not plan.cloudflare:
        raise InjectedFault(plan.status)
    return plan


def _json_body(exchange: ApiExchange) -> Any:
    record: CaptureRecord = exchange.record
    if not record.body_is_json:
        raise InvalidRequest(exchange.format.invalid_json_message)
    return record.body


def _require_api_key(headers: Headers) -> None:
    if headers.get("x-api-key", "").strip():
        return
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return
    raise Unauthenticated()


def _guess_format(path: str, headers: Headers) -> ProviderFormat:
    if "anthropic" in path or "/messages" in path or "anthropic-version" in headers:
        return ANTHROPIC
    return OPENAI


_ROUTES = (
    ApiRoute(
        "anthropic.count_tokens", ("/v1/messages/count_tokens",), "POST", ANTHROPIC, _count_tokens
    ),
    ApiRoute("anthropic.messages", ("/v1/messages",), "POST", ANTHROPIC, _messages),
    ApiRoute("openai.chat_completions", ("/chat/completions",), "POST", OPENAI, _chat_completions),
    ApiRoute("openai.responses", ("/responses",), "POST", OPENAI, _responses),
    ApiRoute("models", ("/models",), "GET", OPENAI, _models),
)
