"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic Messages format.

Anthropic-provider models are a pass-through over the shared session (see
``anthropic_upstream`` for why not litellm): the body goes on as the client wrote it and
the reply's bytes come back unchanged. Other providers are translated by
``litellm.anthropic_messages``, stream included.
"""

from __future__ import annotations

import json
from typing import Any

import litellm
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.access_log import annotate
from memory_proxy.anthropic_upstream import anthropic_request
from memory_proxy.api_formats import ANTHROPIC
from memory_proxy.client_body import read_client_body
from memory_proxy.memory_router import RoutingDecision
from memory_proxy.model_table import Route
from memory_proxy.proxy_state import ProxyState
from memory_proxy.request_body import require_fields
from memory_proxy.retries import call_with_retries
from memory_proxy.streaming import (
    final_event_detector,
    open_byte_stream,
    open_stream,
    sse_response,
)

__all__ = ["count_tokens", "create_message"]

# Client headers that describe the request to Anthropic and must reach it.
FORWARDED_CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
_IS_FINAL_EVENT = final_event_detector(ANTHROPIC)


async def create_message(state: ProxyState, request: Request) -> Response:
    client_body = await read_client_body(request, state.config.options.max_body_bytes)
    body = client_body.parsed
    require_fields(body, {"model": str, "messages": list, "max_tokens": int})
    route = state.route(body["model"])
    decision = state.router.detect_user_id(request.headers)
    stream = bool(body.get("stream"))
    annotate(request, model=body["model"], user_id=decision.user_id, stream=stream)
    headers = _upstream_headers(route, decision, request)

    def attempts(n: int) -> None:
        annotate(request, attempts=n)

    def on_end(outcome: str) -> None:
        annotate(request, stream_outcome=outcome)

    if route.provider == "anthropic":
        relay = state.upstream.relay
        query = request.scope.get("query_string", b"").decode("latin-1")
        call = anthropic_request(route, client_body, headers, query=query)
        if not stream:
            data = await call_with_retries(lambda: relay.send(call), state.retry, attempts)
            return Response(data, media_type="application/json")
        opened_bytes = await call_with_retries(
            lambda: open_byte_stream(lambda: relay.open_stream(call)), state.retry, attempts
        )
        return sse_response(
            opened_bytes,
            encode=_as_sse_bytes,
            is_final=_IS_FINAL_EVENT,
            api_format=ANTHROPIC,
            on_end=on_end,
        )

    # Another provider: litellm translates Messages <-> its API, stream included.
    kwargs: dict[str, Any] = {k: v for k, v in body.items() if k != "model"}
    kwargs.update(
        model=route.upstream_model,
        api_base=route.deployment.api_base,
        api_key=route.deployment.api_key,
        client=state.upstream.client_for(
            route.provider, route.deployment.api_base, route.deployment.api_key
        ),
        extra_headers=headers,
        custom_llm_provider=route.provider,
        # Retries are the proxy's own (before the first byte only): litellm's would
        # multiply them, three upstream calls for every one the proxy makes.
        num_retries=0,
        timeout=state.config.litellm.request_timeout,
    )
    if not stream:
        result = await call_with_retries(
            lambda: litellm.anthropic_messages(**kwargs), state.retry, attempts
        )
        return JSONResponse(_as_dict(result))
    opened = await call_with_retries(
        lambda: open_stream(lambda: litellm.anthropic_messages(**kwargs)), state.retry, attempts
    )
    return sse_response(
        opened,
        encode=_as_sse_bytes,
        is_final=_EventEndDetector(),
        api_format=ANTHROPIC,
        on_end=on_end,
    )


async def count_tokens(state: ProxyState, request: Request) -> Response:
    client_body = await read_client_body(request, state.config.options.max_body_bytes)
    body = client_body.parsed
    require_fields(body, {"model": str, "messages": list})
    route = state.route(body["model"])
    decision = state.router.detect_user_id(request.headers)
    annotate(request, model=body["model"], user_id=decision.user_id, stream=False)
    if route.provider != "anthropic":
        return JSONResponse({"input_tokens": estimate_tokens(body)})
    headers = _upstream_headers(route, decision, request)
    call = anthropic_request(route, client_body, headers, "/v1/messages/count_tokens")
    relay = state.upstream.relay
    data = await call_with_retries(
        lambda: relay.send(call), state.retry, lambda n: annotate(request, attempts=n)
    )
    return Response(data, media_type="application/json")


def estimate_tokens(body: dict[str, Any]) -> int:
    """A local estimate (~4 characters a token) for providers with no counting endpoint."""
    parts = [body.get("system"), body.get("messages"), body.get("tools")]
    text = json.dumps([p for p in parts if p], ensure_ascii=False)
    return max(1, len(text) // 4)


def _upstream_headers(route: Route, decision: RoutingDecision, request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    if route.provider == "anthropic":
        headers["anthropic-version"] = DEFAULT_ANTHROPIC_VERSION
        for name in FORWARDED_CLIENT_HEADERS:
            value = request.headers.get(name)
            if value:
                headers[name] = value
    headers.update(route.deployment.extra_headers)
    headers.update(decision.upstream_headers())
    return headers


def _as_dict(result: Any) -> Any:
    if hasattr(result, "model_dump"):
        return result.model_dump(exclude_none=True)
    return result


def _as_sse_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray):
        return bytes(item)
    if isinstance(item, str):
        return item.encode()
    # Translated providers may yield event dicts: frame them as Anthropic SSE.
    event = item.get("type", "message") if isinstance(item, dict) else "message"
    data = json.dumps(_as_dict(item), separators=(",", ":"))
    return f"event: {event}\ndata: {data}\n\n".encode()


class _EventEndDetector:
    """Spots the stream's last event (``message_stop``, or the upstream's own ``error``)
    in litellm's translated byte stream, even when split across two chunks."""

    MARKS = (b"message_stop", b"event: error")

    def __init__(self) -> None:
        self._tail = b""

    def __call__(self, item: Any) -> bool:
        data = _as_sse_bytes(item)
        window = self._tail + data
        self._tail = data[-16:]
        return any(mark in window for mark in self.MARKS)
