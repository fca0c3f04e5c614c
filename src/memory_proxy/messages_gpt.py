"""Messages to an openai-provider model: litellm's adapter, the proxy's relay.

An Anthropic-format client asking for an OpenAI model needs its request rewritten as
Chat Completions and the answer rewritten back. The rewriting is the adapter
``litellm.anthropic_messages`` uses for such models
(``LiteLLMMessagesToCompletionTransformationHandler`` and its ``ANTHROPIC_ADAPTER``:
request to Chat Completions kwargs, ``ModelResponse`` to a Message, and
``AnthropicStreamWrapper`` for the stream), then litellm's own preparation of those
kwargs for OpenAI (``chat_preparation``, ``OpenAIGPTConfig.transform_request``) and
``convert_to_model_response_object`` for the answer. The call goes over the shared
session (``relay``): no ``acompletion`` inside, so no thread-pool executor, logging,
callbacks or cost calculation.

Re-implemented, and why:

- the adapter's entry (``async_anthropic_messages_handler``) is not called: it calls
  ``litellm.acompletion`` itself. Its steps are, in its order: the context-management
  polyfill (only for a request that carries ``context_management`` or a compaction
  block: such a request is left to ``litellm.anthropic_messages``, see
  :func:`needs_litellm`), ``_prepare_completion_kwargs`` (called), the completion, the
  output translation (called).
- the stream's chunks reach ``AnthropicStreamWrapper`` as litellm's ``ModelResponseStream``
  built straight from each OpenAI chunk, not through ``CustomStreamWrapper`` (about
  0.45 ms a chunk, litellm 1.106.12, measured); the differential tests hold the events
  to ``litellm.anthropic_messages``'s, one by one.

The adapter's events made from one provider read go to the client in one write
(``event_batches.ready_together``), after the first text delta: the adapter makes about
15 events from the bench's 13 chunks, each one ASGI message and socket write when sent
alone (3.30 -> 2.53 ms CPU a stream, and 3.90 -> 2.80, in two A/B pairs of the bench
on a loaded host). What remains is litellm's: ``AnthropicStreamWrapper`` and a
``ModelResponseStream`` per chunk, about 0.1 ms a chunk (1.4 ms for the bench's stream,
in-process); the wrapper's state (open blocks, a held stop reason, queued events) is
too much to keep in step by hand, so no event bypasses it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response import (
    convert_to_model_response_object,
)
from litellm.llms.anthropic.pass_through.adapters.handler import (
    ANTHROPIC_ADAPTER,
    LiteLLMMessagesToCompletionTransformationHandler,
)
from litellm.llms.anthropic.pass_through.adapters.streaming_iterator import (
    AnthropicSSEStream,
    AnthropicStreamWrapper,
)
from litellm.llms.openai.chat.gpt_transformation import OpenAIGPTConfig
from litellm.llms.openai.openai import OpenAIChatCompletion
from litellm.types.utils import ModelResponse, ModelResponseStream

from memory_proxy.chat_preparation import prepare_chat
from memory_proxy.errors import UpstreamBadGateway
from memory_proxy.event_batches import ready_together
from memory_proxy.model_table import Route
from memory_proxy.openai_upstream import DEFAULT_BASE
from memory_proxy.relay import RelayedReply, RelayRequest, error_message
from memory_proxy.sse_lines import data_lines

__all__ = [
    "GptMessagesCall",
    "build_gpt_call",
    "messages_reply",
    "messages_stream",
    "needs_litellm",
]

_HANDLER = LiteLLMMessagesToCompletionTransformationHandler
_OPENAI = OpenAIChatCompletion()
# The adapter's named parameters; every other body field goes in as its extra kwargs.
_NAMED = (
    "max_tokens",
    "messages",
    "metadata",
    "stop_sequences",
    "stream",
    "system",
    "temperature",
    "thinking",
    "tool_choice",
    "tools",
    "top_k",
    "top_p",
    "output_format",
)


@dataclass(frozen=True)
class GptMessagesCall:
    request: RelayRequest
    model: str  # as the Message names it
    tool_name_mapping: dict[str, str]


def needs_litellm(body: Mapping[str, Any]) -> bool:
    """Whether the request needs the adapter's context-management polyfill (which may
    call a summarization model): those go through ``litellm.anthropic_messages``."""
    if body.get("context_management") is not None:
        return True
    return any(
        isinstance(block, dict) and block.get("type") == "compaction"
        for message in body.get("messages") or []
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for block in message["content"]
    )


def build_gpt_call(
    route: Route, body: Mapping[str, Any], headers: Mapping[str, str], *, drop_params: bool
) -> GptMessagesCall:
    """The Chat Completions request for a Messages ``body``, as litellm builds it."""
    params = {k: v for k, v in body.items() if k != "model"}
    named = {k: params.pop(k) for k in _NAMED if k in params}
    completion, tool_names = _HANDLER._prepare_completion_kwargs(
        model=route.upstream_model,
        extra_kwargs={**params, "custom_llm_provider": route.provider},
        **named,
    )
    prepared = prepare_chat(
        route.upstream_model_id,
        route.provider,
        {k: v for k, v in completion.items() if k != "custom_llm_provider"},
        drop_params=drop_params,
    )
    optional = dict(prepared.optional_params)
    # As OpenAIChatCompletion.completion: these two steer the call, they are not sent.
    stream_options = optional.pop("stream_options", None)
    stream = bool(optional.pop("stream", False))
    data = OpenAIGPTConfig().transform_request(
        model=prepared.model,
        messages=prepared.messages,
        optional_params=optional,
        litellm_params={},
        headers={},
    )
    deployment = route.deployment
    if stream:
        data["stream"] = True
        data.update(_OPENAI.get_stream_options(stream_options, deployment.api_base))
    # The openai SDK's request options, which litellm's call hands it: merged as it merges them.
    data.update(data.pop("extra_body", None) or {})
    sent = {
        **headers,
        **(data.pop("extra_headers", None) or {}),
        "content-type": "application/json",
    }
    if deployment.api_key:
        sent["authorization"] = f"Bearer {deployment.api_key}"
    base = (deployment.api_base or DEFAULT_BASE).rstrip("/")
    return GptMessagesCall(
        request=RelayRequest(base + "/chat/completions", sent, json.dumps(data).encode()),
        model=route.upstream_model_id,
        tool_name_mapping=tool_names,
    )


def messages_reply(call: GptMessagesCall, reply: RelayedReply) -> bytes:
    """The Message JSON for a Chat Completions answer."""
    completion = convert_to_model_response_object(
        response_object=json.loads(reply.body),
        model_response_object=ModelResponse(),
        hidden_params={},
        _response_headers=dict(reply.headers),
    )
    assert isinstance(completion, ModelResponse)
    message = ANTHROPIC_ADAPTER.translate_completion_output_params(
        completion, tool_name_mapping=call.tool_name_mapping
    )
    if message is None:
        raise UpstreamBadGateway("upstream reply could not be translated to a Message")
    return json.dumps(_plain(message), ensure_ascii=False, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value


async def messages_stream(
    call: GptMessagesCall, events: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """Messages SSE events for a Chat Completions stream (whole SSE events); those
    made from one provider read are sent in one write (``event_batches``)."""
    wrapper = AnthropicStreamWrapper(
        completion_stream=cast(Any, _chunks(events)),  # read with ``async for`` only
        model=call.model,
        tool_name_mapping=call.tool_name_mapping,
    )
    async for batch in ready_together(AnthropicSSEStream(wrapper), _is_content):
        yield batch


def _is_content(event: bytes) -> bool:
    return event.startswith(b"event: content_block_delta")


async def _chunks(events: AsyncIterator[bytes]) -> AsyncIterator[ModelResponseStream]:
    async for line in data_lines(events):
        data = line[5:].strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        if isinstance(chunk, dict) and chunk.get("error"):
            # The openai SDK raises on an error event in a stream; so does this.
            raise UpstreamBadGateway(f"upstream stream error: {error_message(data)}")
        yield ModelResponseStream(**chunk)
