"""What every generation endpoint does alike, whatever its API format.

Each handler (``chat``, ``messages``) reads the same prologue from a request
(:func:`read_generation_request`: body, model route, memory routing, access-log fields),
reports attempts and the stream's outcome through the same hooks, relays a pass-through
call the same way (:func:`relay_passthrough`) and gives litellm the same per-call
settings (:func:`litellm_call_kwargs`). What differs between the formats stays in the
handlers: the fields they require, the upstream request they build, how a translated
reply is encoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from memory_proxy.access_log import annotate, note_retry
from memory_proxy.api_formats import ApiFormat
from memory_proxy.client_body import ClientBody, read_client_body
from memory_proxy.errors import ProxyError, UpstreamBadGateway
from memory_proxy.http_headers import relayed_response_headers
from memory_proxy.memory_router import RoutingDecision, sanitize_header_value
from memory_proxy.model_table import Route
from memory_proxy.proxy_state import ProxyState
from memory_proxy.relay import RelayedReply, RelayRequest
from memory_proxy.request_body import require_fields
from memory_proxy.retries import call_with_retries
from memory_proxy.streaming import (
    OpenedStream,
    final_event_detector,
    open_byte_stream,
    sse_response,
)
from memory_proxy.tracing import NO_TRACING, Span, Tracing
from memory_proxy.upstream_errors import translate_reply_error, translate_upstream_error

__all__ = [
    "GenerationRequest",
    "Translation",
    "litellm_call_kwargs",
    "read_generation_request",
    "relay_passthrough",
    "relay_translated",
    "translation_step",
]

REQUEST_CLASS_HEADER = "x-claude-code-request-class"

T = TypeVar("T")


@dataclass(frozen=True)
class GenerationRequest:
    """A generation request, read and routed; its hooks annotate the access-log line."""

    request: Request
    body: ClientBody
    route: Route
    decision: RoutingDecision
    stream: bool
    tracing: Tracing = NO_TRACING
    relay_span: list[Span] = field(default_factory=list)  # the stream's, once it starts

    def upstream_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` for the provider call, with the trace context when tracing is on."""
        self.tracing.inject(headers)
        return headers

    def on_relay_start(self) -> None:
        self.relay_span.append(self.tracing.start_span("relay"))

    def attempts(self, n: int, retrying_after: ProxyError | None) -> None:
        annotate(self.request, attempts=n)
        if retrying_after is not None:
            note_retry(self.request, retrying_after)

    def on_end(self, outcome: str) -> None:
        annotate(self.request, stream_outcome=outcome)
        for span in self.relay_span:
            span.set({"memory_proxy.stream_outcome": outcome})
            span.end(None if outcome == "complete" else outcome)


async def read_generation_request(
    state: ProxyState,
    request: Request,
    required: dict[str, type],
    *,
    check: Callable[[dict[str, Any]], None] | None = None,
    streams: bool = True,
) -> GenerationRequest:
    """Read the body, check its ``required`` fields (then ``check``), route its model.

    ``streams=False`` for an endpoint that never streams, whatever the body says.
    """
    client_body = await read_client_body(request, state.config.options.max_body_bytes)
    body = client_body.parsed
    require_fields(body, required)
    if check is not None:
        # Before routing: a malformed body is reported ahead of an unknown model.
        check(body)
    # The fast routes match exact paths (ENDPOINT_NAMES): a route, not a client's string.
    state.tracing.name_request(request.scope["method"], request.scope["path"])
    with state.tracing.span("route") as span:
        route = state.route(body["model"])
        decision = state.router.detect_user_id(request.headers)
        span.set(
            {
                "memory_proxy.model": body["model"],
                "memory_proxy.route": route.deployment.model_name,
                "memory_proxy.provider": route.provider,
                "memory_proxy.user_id": decision.user_id,
                "memory_proxy.user_id_rule": decision.rule,
                # The access-log line's id: from a trace to the log line and back.
                "memory_proxy.request_id": request.scope.get("state", {}).get("request_id", ""),
            }
        )
    stream = streams and bool(body.get("stream"))
    annotate(
        request,
        model=body["model"],
        route=route.deployment.model_name,
        user_id=decision.user_id,
        stream=stream,
    )
    # Claude Code's opt-in hint (main, subagent, workflow, compaction, auxiliary).
    request_class = sanitize_header_value(request.headers.get(REQUEST_CLASS_HEADER))
    if request_class:
        annotate(request, request_class=request_class[:32])
    return GenerationRequest(request, client_body, route, decision, stream, state.tracing)


async def relay_passthrough(
    state: ProxyState, generation: GenerationRequest, call: RelayRequest, api_format: ApiFormat
) -> Response:
    """Send ``call`` over the shared session; the reply's bytes and headers go back."""
    relay = state.upstream.relay
    if not generation.stream:
        reply = await call_with_retries(lambda: relay.send(call), state.retry, generation.attempts)
        return Response(
            reply.body,
            media_type="application/json",
            headers=relayed_response_headers(reply.headers),
        )
    opened = await call_with_retries(
        lambda: open_byte_stream(lambda: relay.open_stream(call)),
        state.retry,
        generation.attempts,
    )
    return sse_response(
        opened,
        encode=_as_is,
        is_final=final_event_detector(api_format),
        api_format=api_format,
        headers=relayed_response_headers(opened.source.headers),
        on_start=generation.on_relay_start,
        on_end=generation.on_end,
        keepalive_seconds=state.config.options.stream_keepalive_seconds,
    )


@dataclass(frozen=True)
class Translation:
    """How a translated call's answer becomes the client's: the JSON reply, or the
    stream's events (from the provider's whole events) and how to spot its last one."""

    reply: Callable[[RelayedReply], bytes]
    events: Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]
    is_final: Callable[[bytes], bool]
    trailer: bytes = b""


def translation_step(build: Callable[[], T]) -> T:
    """Run one step of litellm's translation of the request; what it raises is translated
    here, once (a request it cannot translate is the client's: 400)."""
    return _translated(build, translate_upstream_error)


def reply_translation_step(read: Callable[[], T]) -> T:
    """Run litellm's translation of the provider's answer; what it raises is translated
    here, once (an answer it cannot read is the provider's fault: 502)."""
    return _translated(read, translate_reply_error)


def _translated(step: Callable[[], T], translate: Callable[[BaseException], ProxyError]) -> T:
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - translated at this boundary
        raise _in_client_format(translate(exc)) from exc


def _in_client_format(error: ProxyError) -> ProxyError:
    # The provider's own error body is in the provider's format, not the client's: the
    # client gets the error rendered in its own (status and message kept).
    error.upstream_reply = None
    return error


async def relay_translated(
    state: ProxyState,
    generation: GenerationRequest,
    call: RelayRequest,
    api_format: ApiFormat,
    translation: Translation,
) -> Response:
    """Send ``call`` (already in the provider's format) over the shared session and
    translate the answer back, as litellm would, for a client of ``api_format``."""
    relay = state.upstream.relay

    async def attempt(start: Callable[[], Any]) -> Any:
        try:
            return await start()
        except ProxyError as error:
            raise _in_client_format(error) from error

    if not generation.stream:
        reply = await call_with_retries(
            lambda: attempt(lambda: relay.send(call)), state.retry, generation.attempts
        )
        body = reply_translation_step(lambda: translation.reply(reply))
        return Response(
            body, media_type="application/json", headers=relayed_response_headers(reply.headers)
        )

    async def open_translated() -> OpenedStream[bytes]:
        opened = await open_byte_stream(lambda: relay.open_stream(call))
        events = translation.events(_blocks(opened))
        try:
            first = await events.__anext__()
        except BaseException as exc:
            await _aclose(events)
            await opened.source.aclose()
            if isinstance(exc, StopAsyncIteration):
                raise UpstreamBadGateway("upstream stream ended before its first event") from None
            raise
        return OpenedStream(first, events, opened.source)

    opened = await call_with_retries(
        lambda: attempt(open_translated), state.retry, generation.attempts
    )
    return sse_response(
        opened,
        encode=_as_is,
        is_final=translation.is_final,
        api_format=api_format,
        trailer=translation.trailer,
        headers=relayed_response_headers(opened.source.headers),
        on_start=generation.on_relay_start,
        on_end=generation.on_end,
        keepalive_seconds=state.config.options.stream_keepalive_seconds,
    )


async def _blocks(opened: OpenedStream[bytes]) -> AsyncIterator[bytes]:
    yield opened.first
    async for block in opened.rest:
        yield block


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


def litellm_call_kwargs(
    state: ProxyState, route: Route, extra_headers: Mapping[str, str]
) -> dict[str, Any]:
    """The deployment, its shared client and the proxy's limits, for one litellm call."""
    deployment = route.deployment
    return {
        "model": route.upstream_model,
        "api_base": deployment.api_base,
        "api_key": deployment.api_key,
        "client": state.upstream.client_for(
            route.provider, deployment.api_base, deployment.api_key
        ),
        "extra_headers": dict(extra_headers),
        # Retries are the proxy's own (before the first byte only): litellm's would
        # multiply them, three upstream calls for every one the proxy makes.
        "num_retries": 0,
        "timeout": state.config.litellm.request_timeout,
    }


def _as_is(events: bytes) -> bytes:
    return events
