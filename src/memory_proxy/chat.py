"""``POST /v1/chat/completions``: the OpenAI format, through ``litellm.acompletion``."""

from __future__ import annotations

from typing import Any

import litellm
from starlette.requests import Request
from starlette.responses import Response

from memory_proxy.access_log import annotate
from memory_proxy.api_formats import OPENAI
from memory_proxy.errors import InvalidRequest
from memory_proxy.proxy_state import ProxyState
from memory_proxy.request_body import read_json_body, require_fields
from memory_proxy.retries import call_with_retries
from memory_proxy.streaming import open_stream, sse_response

__all__ = ["chat_completions"]

DONE = b"data: [DONE]\n\n"


async def chat_completions(state: ProxyState, request: Request) -> Response:
    body = await read_json_body(request, state.config.options.max_body_bytes)
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

    def attempts(n: int) -> None:
        annotate(request, attempts=n)

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
        on_end=lambda outcome: annotate(request, stream_outcome=outcome),
    )


def _encode_chunk(chunk: Any) -> bytes:
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


def _has_finish_reason(chunk: Any) -> bool:
    return any(getattr(choice, "finish_reason", None) for choice in chunk.choices)
