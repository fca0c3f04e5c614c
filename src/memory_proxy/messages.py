"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic Messages format.

Anthropic-provider models are a pass-through over the shared session (see
``anthropic_upstream`` for why not litellm): the body goes on as the client wrote it and
the reply's bytes come back unchanged. An openai-provider model is translated with
litellm's own adapter over the same relay (``messages_gpt``); other providers, and a
request that needs the adapter's context-management polyfill, go through
``litellm.anthropic_messages``, stream included.
"""

from __future__ import annotations

import json
from typing import Any

import litellm
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_proxy.anthropic_upstream import anthropic_request
from memory_proxy.api_formats import ANTHROPIC
from memory_proxy.generation import (
    Translation,
    litellm_call_kwargs,
    read_generation_request,
    relay_passthrough,
    relay_translated,
    translation_step,
)
from memory_proxy.header_tap import header_tap
from memory_proxy.http_headers import forwarded_request_headers, relayed_response_headers
from memory_proxy.memory_router import RoutingDecision
from memory_proxy.messages_gpt import build_gpt_call, messages_reply, messages_stream, needs_litellm
from memory_proxy.model_table import Route
from memory_proxy.proxy_state import ProxyState
from memory_proxy.retries import call_with_retries
from memory_proxy.streaming import open_stream, sse_response

__all__ = ["count_tokens", "create_message"]

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"


async def create_message(state: ProxyState, request: Request) -> Response:
    generation = await read_generation_request(
        state, request, {"model": str, "messages": list, "max_tokens": int}
    )
    route = generation.route
    headers = generation.upstream_headers(_upstream_headers(route, generation.decision, request))
    if route.provider == "anthropic":
        query = request.scope.get("query_string", b"").decode("latin-1")
        call = anthropic_request(route, generation.body, headers, query=query)
        return await relay_passthrough(state, generation, call, ANTHROPIC)
    if route.provider == "openai" and not needs_litellm(generation.body.parsed):
        gpt = translation_step(
            lambda: build_gpt_call(
                route,
                generation.body.parsed,
                headers,
                drop_params=state.config.litellm.drop_params,
            )
        )
        translation = Translation(
            reply=lambda reply: messages_reply(gpt, reply),
            events=lambda events: messages_stream(gpt, events),
            is_final=_EventEndDetector(),
        )
        return await relay_translated(state, generation, gpt.request, ANTHROPIC, translation)

    # Another provider: litellm translates Messages <-> its API, stream included.
    kwargs: dict[str, Any] = {
        **{k: v for k, v in generation.body.parsed.items() if k != "model"},
        **litellm_call_kwargs(state, route, headers),
        "custom_llm_provider": route.provider,
    }
    with header_tap() as tap:
        if not generation.stream:
            result = await call_with_retries(
                lambda: litellm.anthropic_messages(**kwargs), state.retry, generation.attempts
            )
            return JSONResponse(_as_dict(result), headers=relayed_response_headers(tap.headers))
        opened = await call_with_retries(
            lambda: open_stream(lambda: litellm.anthropic_messages(**kwargs)),
            state.retry,
            generation.attempts,
        )
    return sse_response(
        opened,
        encode=_as_sse_bytes,
        is_final=_EventEndDetector(),
        api_format=ANTHROPIC,
        headers=relayed_response_headers(tap.headers),
        on_start=generation.on_relay_start,
        on_end=generation.on_end,
        keepalive_seconds=state.config.options.stream_keepalive_seconds,
    )


async def count_tokens(state: ProxyState, request: Request) -> Response:
    generation = await read_generation_request(
        state, request, {"model": str, "messages": list}, streams=False
    )
    route = generation.route
    if route.provider != "anthropic":
        return JSONResponse({"input_tokens": estimate_tokens(generation.body.parsed)})
    headers = generation.upstream_headers(_upstream_headers(route, generation.decision, request))
    call = anthropic_request(route, generation.body, headers, "/v1/messages/count_tokens")
    return await relay_passthrough(state, generation, call, ANTHROPIC)


def estimate_tokens(body: dict[str, Any]) -> int:
    """A local estimate (~4 characters a token) for providers with no counting endpoint."""
    parts = [body.get("system"), body.get("messages"), body.get("tools")]
    text = json.dumps([p for p in parts if p], ensure_ascii=False)
    return max(1, len(text) // 4)


def _upstream_headers(route: Route, decision: RoutingDecision, request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    if route.provider == "anthropic":
        headers["anthropic-version"] = DEFAULT_ANTHROPIC_VERSION
    headers.update(forwarded_request_headers(request.headers, route.provider))
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

    MARKS = ANTHROPIC.final_event_marks
    # Enough of the previous chunk to hold any mark but its last byte.
    _KEEP = max(len(mark) for mark in MARKS) - 1

    def __init__(self) -> None:
        self._tail = b""

    def __call__(self, item: Any) -> bool:
        data = _as_sse_bytes(item)
        window = self._tail + data
        self._tail = window[-self._KEEP :]
        return any(mark in window for mark in self.MARKS)
