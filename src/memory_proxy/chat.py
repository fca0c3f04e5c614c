"""``POST /v1/chat/completions``: the OpenAI format.

An openai-provider model gets the client's body as written and its reply's bytes back
(``openai_upstream``: nothing to translate). An anthropic-provider model gets the body
translated to Messages by litellm's own Anthropic code and the answer translated back,
over the same relay (``claude_chat``). Any other provider (or an openai deployment with
litellm-only settings) goes through ``litellm.acompletion``, which knows them all.
"""

from __future__ import annotations

from typing import Any

import litellm
from starlette.requests import Request
from starlette.responses import Response

from memory_proxy.api_formats import OPENAI
from memory_proxy.claude_chat import build_claude_call, chat_reply, chat_stream
from memory_proxy.errors import InvalidRequest
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
from memory_proxy.openai_upstream import is_passthrough, openai_chat_request
from memory_proxy.proxy_state import ProxyState
from memory_proxy.retries import call_with_retries
from memory_proxy.streaming import open_stream, sse_response

__all__ = ["chat_completions"]

DONE = b"data: [DONE]\n\n"


async def chat_completions(state: ProxyState, request: Request) -> Response:
    generation = await read_generation_request(
        state, request, {"model": str, "messages": list}, check=_check_messages
    )
    route, decision = generation.route, generation.decision
    headers = generation.upstream_headers(
        {
            **forwarded_request_headers(request.headers, route.provider),
            **route.deployment.extra_headers,
            **decision.upstream_headers(),
        }
    )
    if is_passthrough(route.deployment):
        call = openai_chat_request(route, generation.body, headers)
        return await relay_passthrough(state, generation, call, OPENAI)
    if route.provider == "anthropic":
        claude = translation_step(
            lambda: build_claude_call(
                route,
                generation.body.parsed,
                headers,
                defaults=route.deployment.call_params(),
                drop_params=state.config.litellm.drop_params,
            )
        )
        translation = Translation(
            reply=lambda reply: chat_reply(claude, reply),
            events=lambda events: chat_stream(claude, events),
            is_final=_names_finish_reason,
            trailer=DONE,
        )
        return await relay_translated(state, generation, claude.request, OPENAI, translation)

    # Deployment params are defaults; the client's own parameters win, as on LiteLLM.
    kwargs: dict[str, Any] = {
        **route.deployment.call_params(),
        **generation.body.parsed,
        **litellm_call_kwargs(state, route, headers),
        "drop_params": state.config.litellm.drop_params,
    }
    with header_tap() as tap:
        if not generation.stream:
            result = await call_with_retries(
                lambda: litellm.acompletion(**kwargs), state.retry, generation.attempts
            )
            return Response(
                result.model_dump_json(),
                media_type="application/json",
                headers=relayed_response_headers(tap.headers),
            )
        opened = await call_with_retries(
            lambda: open_stream(lambda: litellm.acompletion(**kwargs)),
            state.retry,
            generation.attempts,
        )
    return sse_response(
        opened,
        encode=_encode_chunk,
        is_final=_has_finish_reason,
        api_format=OPENAI,
        trailer=DONE,
        headers=relayed_response_headers(tap.headers),
        on_start=generation.on_relay_start,
        on_end=generation.on_end,
        keepalive_seconds=state.config.options.stream_keepalive_seconds,
    )


def _check_messages(body: dict[str, Any]) -> None:
    if not body["messages"]:
        raise InvalidRequest("messages: must contain at least one message")
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(f"messages[{i}]: expected an object with a string 'role'")


def _encode_chunk(chunk: Any) -> bytes:
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


def _names_finish_reason(event: bytes) -> bool:
    # Only the closing chunk has the key: the chunks are encoded without None values.
    return b'"finish_reason":"' in event


def _has_finish_reason(chunk: Any) -> bool:
    return any(getattr(choice, "finish_reason", None) for choice in chunk.choices)
