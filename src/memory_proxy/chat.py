"""``POST /v1/chat/completions``: the OpenAI format.

An openai-provider model gets the client's body as written and its reply's bytes back
(``openai_upstream``: nothing to translate); any other provider goes through
``litellm.acompletion``, which translates both ways, stream included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import litellm
from starlette.requests import Request
from starlette.responses import Response

from memory_proxy.access_log import annotate
from memory_proxy.api_formats import OPENAI
from memory_proxy.client_body import ClientBody, read_client_body
from memory_proxy.errors import InvalidRequest
from memory_proxy.memory_router import RoutingDecision
from memory_proxy.model_table import Route
from memory_proxy.openai_upstream import is_passthrough, openai_chat_request
from memory_proxy.proxy_state import ProxyState
from memory_proxy.request_body import require_fields
from memory_proxy.retries import call_with_retries
from memory_proxy.streaming import (
    final_event_detector,
    open_byte_stream,
    open_stream,
    sse_response,
)

__all__ = ["chat_completions"]

DONE = b"data: [DONE]\n\n"
_IS_FINAL_EVENT = final_event_detector(OPENAI)


async def chat_completions(state: ProxyState, request: Request) -> Response:
    client_body = await read_client_body(request, state.config.options.max_body_bytes)
    body = client_body.parsed
    require_fields(body, {"model": str, "messages": list})
    if not body["messages"]:
        raise InvalidRequest("messages: must contain at least one message")
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(f"messages[{i}]: expected an object with a string 'role'")
    route = state.route(body["model"])
    decision = state.router.detect_user_id(request.headers)
    stream = bool(body.get("stream"))
    annotate(request, model=body["model"], user_id=decision.user_id, stream=stream)

    def attempts(n: int) -> None:
        annotate(request, attempts=n)

    def on_end(outcome: str) -> None:
        annotate(request, stream_outcome=outcome)

    if is_passthrough(route.deployment):
        return await _passthrough(state, route, client_body, decision, stream, attempts, on_end)

    deployment = route.deployment
    # Deployment params are defaults; the client's own parameters win, as on LiteLLM.
    kwargs: dict[str, Any] = {**deployment.call_params(), **body}
    kwargs.update(
        model=route.upstream_model,
        api_base=deployment.api_base,
        api_key=deployment.api_key,
        client=state.upstream.client_for(route.provider, deployment.api_base, deployment.api_key),
        extra_headers={**deployment.extra_headers, **decision.upstream_headers()},
        num_retries=0,
        timeout=state.config.litellm.request_timeout,
        drop_params=state.config.litellm.drop_params,
    )

    if not stream:
        result = await call_with_retries(
            lambda: litellm.acompletion(**kwargs), state.retry, attempts
        )
        return Response(result.model_dump_json(), media_type="application/json")

    opened = await call_with_retries(
        lambda: open_stream(lambda: litellm.acompletion(**kwargs)), state.retry, attempts
    )
    return sse_response(
        opened,
        encode=_encode_chunk,
        is_final=_has_finish_reason,
        api_format=OPENAI,
        trailer=DONE,
        on_end=on_end,
    )


async def _passthrough(
    state: ProxyState,
    route: Route,
    body: ClientBody,
    decision: RoutingDecision,
    stream: bool,
    attempts: Callable[[int], None],
    on_end: Callable[[str], None],
) -> Response:
    headers = {**route.deployment.extra_headers, **decision.upstream_headers()}
    call = openai_chat_request(route, body, headers)
    relay = state.upstream.relay
    if not stream:
        data = await call_with_retries(lambda: relay.send(call), state.retry, attempts)
        return Response(data, media_type="application/json")
    opened = await call_with_retries(
        lambda: open_byte_stream(lambda: relay.open_stream(call)), state.retry, attempts
    )
    return sse_response(
        opened, encode=_as_is, is_final=_IS_FINAL_EVENT, api_format=OPENAI, on_end=on_end
    )


def _as_is(events: bytes) -> bytes:
    return events


def _encode_chunk(chunk: Any) -> bytes:
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


def _has_finish_reason(chunk: Any) -> bool:
    return any(getattr(choice, "finish_reason", None) for choice in chunk.choices)
