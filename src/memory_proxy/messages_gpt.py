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
- the event for a text-only chunk amid a text block (:func:`_text_event`), and the
  skipping of a blank chunk (the role chunk that opens every OpenAI stream). For such a
  chunk the wrapper changes none of its state and makes one ``text_delta`` at the
  block's index, or nothing; building the chunk's ``ModelResponseStream`` and running
  the wrapper over it cost about 0.1 ms a chunk, and text chunks are nearly all of a
  stream. Only when the wrapper waits for input with nothing held or queued, before its
  first block or inside a text block (:meth:`_Adapter._in_text`), and the chunk carries
  text and nothing else (:func:`_text_only`); every other chunk goes through the wrapper.
  ``test_messages_gpt_stream`` holds every event to the wrapper's own, over generated
  chunk sequences cut into reads anywhere.

Deliberate difference from ``litellm.anthropic_messages``: a stream the provider ends
with neither a finish reason nor its ``[DONE]`` ends with an error event. litellm closes
it with a ``message_stop`` (no ``content_block_stop``, no ``message_delta``), which the
client takes for a whole reply.

The wrapper is an async iterator that reads the provider itself. It is driven by hand
(:class:`_Adapter`): its input (:class:`_Feed`) hands over the chunks of one provider
read and then suspends it, so the proxy knows which events one read made and sends
them in one write, with no task between the provider and the client. Sent one by one,
the adapter's ~15 events for the bench's 13 chunks were each an ASGI message and a
socket write (3.30 -> 2.53 ms CPU a stream when batched, in an A/B pair of the bench
on a loaded host).
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Generator, Mapping
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
    AnthropicStreamWrapper,
)
from litellm.llms.openai.chat.gpt_transformation import OpenAIGPTConfig
from litellm.llms.openai.openai import OpenAIChatCompletion
from litellm.types.utils import ModelResponse, ModelResponseStream

from memory_proxy.chat_preparation import prepare_chat
from memory_proxy.errors import UpstreamBadGateway, stream_cut
from memory_proxy.model_table import Route
from memory_proxy.openai_upstream import DEFAULT_BASE
from memory_proxy.relay import RelayedReply, RelayRequest, error_message
from memory_proxy.sse_lines import block_data_lines

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
        # The headers would go to hidden params only, never into the Message.
        _response_headers=None,
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
    """Messages SSE events for a Chat Completions stream (blocks of whole SSE events), in
    one write per provider read; see the module docstring."""
    feed = _Feed()
    wrapper = AnthropicStreamWrapper(
        completion_stream=cast(Any, feed),  # read with ``async for`` only
        model=call.model,
        tool_name_mapping=call.tool_name_mapping,
    )
    adapter = _Adapter(wrapper, feed)
    reads = events.__aiter__()
    try:
        ready = adapter.run()  # message_start: made before the provider's first event
        if ready:
            yield b"".join(ready)
        while not adapter.done:
            ready = []
            try:
                block = await reads.__anext__()
            except StopAsyncIteration:
                if adapter.whole:
                    feed.ended = True
                else:  # see the module docstring's deliberate differences
                    feed.failure = stream_cut()
            except Exception as exc:  # noqa: BLE001 - litellm's, as if its own read failed
                feed.failure = exc
            else:
                ready = adapter.translate(block)
            if feed.ended or feed.failure is not None:
                ready += adapter.run()
            if ready:
                yield b"".join(ready)
    finally:
        adapter.abandon()
        closer = getattr(reads, "aclose", None)
        if closer is not None:
            await closer()


class _Want:
    """What the wrapper's input hands its driver when it has no chunk to give yet."""


_WANT = _Want()


class _Feed:
    """``AnthropicStreamWrapper``'s input: the chunks its driver hands it. With none in
    hand, the wrapper's read suspends it and gives :data:`_WANT` to the driver (it awaits
    nothing else), which reads the provider, hands over and resumes it."""

    def __init__(self) -> None:
        self.chunks: deque[ModelResponseStream] = deque()
        self.ended = False
        self.failure: Exception | None = None

    def __aiter__(self) -> _Feed:
        return self

    def __anext__(self) -> _Take:
        return _Take(self)


class _Take:
    __slots__ = ("feed",)

    def __init__(self, feed: _Feed) -> None:
        self.feed = feed

    def __await__(self) -> Generator[_Want, None, ModelResponseStream]:
        feed = self.feed
        while not feed.chunks:
            if feed.failure is not None:
                failure, feed.failure = feed.failure, None
                feed.ended = True
                raise failure
            if feed.ended:
                raise StopAsyncIteration
            yield _WANT
        return feed.chunks.popleft()


class _Adapter:
    """litellm's ``AnthropicStreamWrapper`` and its SSE framing
    (``async_anthropic_sse_wrapper``, which also turns a failure into an error event),
    driven by hand: :meth:`run` resumes it until it wants a chunk it has not been given."""

    def __init__(self, wrapper: AnthropicStreamWrapper, feed: _Feed) -> None:
        self.wrapper = wrapper
        self.feed = feed
        self.sse = wrapper.async_anthropic_sse_wrapper()
        self.step: Any = None  # the SSE generator's next step, while it waits for input
        self.done = False
        # The provider sent a finish reason or its "[DONE]": the reply is whole.
        self.whole = False

    def run(self) -> list[bytes]:
        """Every event the wrapper makes from what it has been given."""
        out: list[bytes] = []
        while not self.done:
            if self.step is None:
                self.step = self.sse.__anext__()
            try:
                wanted = self.step.send(None)
            except StopIteration as made:
                self.step = None
                out.append(made.value)
                continue
            except StopAsyncIteration:
                self.step = None
                self.done = True
                break
            if wanted is not _WANT:
                raise RuntimeError(f"litellm's stream wrapper awaited {wanted!r}")
            break
        return out

    def translate(self, block: bytes) -> list[bytes]:
        """The events for one provider read (whole SSE events)."""
        out: list[bytes] = []
        feed = self.feed
        for line in block_data_lines(block):
            data = line[5:].strip()
            if data == "[DONE]":
                self.whole = feed.ended = True
                break
            try:
                chunk = json.loads(data)
                if isinstance(chunk, dict) and chunk.get("error"):
                    # The openai SDK raises on an error event in a stream; so does this.
                    raise UpstreamBadGateway(f"upstream stream error: {error_message(data)}")
                text = _text_only(chunk) if self._in_text() else None
                if text == "":
                    continue  # a blank chunk: the wrapper skips it and changes nothing
                if text is not None and self.wrapper.sent_content_block_start:
                    out.append(_text_event(self.wrapper.current_content_block_index, text))
                    continue
                if not self.whole:
                    self.whole = _finishes(chunk)
                feed.chunks.append(ModelResponseStream(**chunk))
            except Exception as exc:  # noqa: BLE001 - litellm's, as if its own read failed
                feed.failure = exc
                break
            out.extend(self.run())
            if self.done:
                break
        return out

    def _in_text(self) -> bool:
        """Whether the wrapper waits for input holding nothing, before its first block or
        inside an open text block. Then a blank chunk changes none of its state and
        makes no event; inside the block, a text-only chunk makes one text delta."""
        w = self.wrapper
        return (
            self.step is not None  # it waits for input, so it holds no chunk of ours
            and not w.sent_content_block_finish
            and w.current_content_block_type == "text"
            and w.holding_chunk is None
            and w.holding_stop_reason_chunk is None
            and not w.queued_usage_chunk
            and not w.chunk_queue
        )

    def abandon(self) -> None:
        """Close the SSE generator where it waits (the client left, or it is done)."""
        step, self.step = self.step, None
        if step is not None:
            with contextlib.suppress(BaseException):
                step.throw(GeneratorExit)


_TEXT_ONLY_DELTA = frozenset({"content", "role", "refusal"})
_TEXT_ONLY_CHOICE = frozenset({"index", "delta", "logprobs", "finish_reason"})


def _text_only(chunk: Any) -> str | None:
    """The text of a chunk whose one choice carries text and nothing else (no finish
    reason, refusal, tool call, reasoning, logprobs or usage), "" for one that carries
    nothing at all (a role, an empty or null content); None for any other."""
    if not isinstance(chunk, dict) or chunk.get("usage") is not None:
        return None
    choices = chunk.get("choices")
    if not isinstance(choices, list) or len(choices) != 1:
        return None
    choice = choices[0]
    if (
        not isinstance(choice, dict)
        or not _TEXT_ONLY_CHOICE.issuperset(choice)
        or choice.get("finish_reason") is not None
        or choice.get("logprobs") is not None
    ):
        return None
    delta = choice.get("delta")
    if not isinstance(delta, dict) or not _TEXT_ONLY_DELTA.issuperset(delta):
        return None
    text = delta.get("content")
    if text is None:
        text = ""
    if not isinstance(text, str) or delta.get("refusal") is not None:
        return None
    role = delta.get("role")
    return text if role is None or isinstance(role, str) else None


def _finishes(chunk: Any) -> bool:
    """Whether a chunk carries a finish reason (text-only chunks never do)."""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return isinstance(choices, list) and any(
        isinstance(choice, dict) and choice.get("finish_reason") is not None for choice in choices
    )


def _text_event(index: int, text: str) -> bytes:
    """The event the wrapper makes of a text-only chunk amid a text block, framed as
    ``async_anthropic_sse_wrapper`` frames it."""
    event = {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": text},
    }
    return f"event: content_block_delta\ndata: {json.dumps(event)}\n\n".encode()
