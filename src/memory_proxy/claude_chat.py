"""Chat Completions to an anthropic-provider model: litellm's translation, the proxy's relay.

An OpenAI-format client (the openai SDK, JetBrains AI Assistant) asking for a Claude
model needs its request rewritten as Messages and the answer rewritten back. The
rewriting is litellm's own: its call preparation (``chat_preparation``),
``AnthropicConfig`` (request headers, ``transform_request``,
``transform_parsed_response``) and its Anthropic stream iterator (``ModelResponseIterator``,
one OpenAI chunk per Messages event). The call itself goes over the shared session
(``relay``), like a pass-through: no thread-pool executor, no logging or success
callbacks, no cost calculation, none of the per-call machinery that made
``litellm.acompletion`` cost 4.5 ms a request and 0.35 ms a stream chunk (litellm
1.106.12, measured).

Re-implemented, and why:

- the entry to the answer's translation (:func:`chat_reply`). ``transform_response``
  takes the answer as an ``httpx.Response``, decodes it for a logging call and parses
  it, then derives three arguments (the prefix prompt, ``speed``, the tool-name map) and
  calls ``transform_parsed_response``, which the proxy calls itself with the same three
  and the answer it already parsed: 0.18 -> 0.10 ms a reply (in-process, litellm 1.106.12).
- the stream's shaping (:class:`ChatStreamShaper`). litellm's ``CustomStreamWrapper``
  gives every chunk the stream's id and ``created``, the role to the first delta only,
  drops empty deltas, holds the finish reason for one last empty delta and, with
  ``stream_options.include_usage``, adds the usage chunk. Its ``chunk_creator`` costs
  about 0.45 ms a chunk (1.106.12, measured) and its end of stream rebuilds the whole
  reply in a worker thread for logging; a proxy answer of hundreds of chunks would
  spend a large share of a core there. The shaper does the same few things over the
  iterator's chunks; the differential tests hold it to ``litellm.acompletion``'s output,
  event by event.
- the chunk for a text delta, a ``ping`` and a ``message_stop`` (:func:`_short_way`):
  for these, litellm's ``chunk_parser`` changes none of its state and builds a
  ``ModelResponseStream`` (pydantic, with its ``Delta`` and ``StreamingChoices``) only
  for the shaper to dump it back to a dict: about 0.05 ms an event, and text deltas are
  nearly all of a stream. The shaper writes their chunk straight from the event's text
  (:meth:`ChatStreamShaper.text`); every other event still goes through litellm. The
  bench's 18-event stream cost 1.69 ms to translate before, 0.82 ms with this, the
  block-at-a-time driving below and the model-map memo (``model_capabilities``)
  (in-process, best of 7 x 200, litellm 1.106.12).

litellm's iterator is driven through its synchronous protocol a provider read at a
time, and the events of one read go to the client in one write: one ASGI message and
socket write per event cost more than translating most of them.

Deliberate differences from ``litellm.acompletion``:

- the stream's usage chunk has no ``usage.cost``: litellm computes it from its price
  table (an estimate, not the provider's number) on its logging path.
- a stream the provider ends, at an event boundary, without its stop reason ends with
  an error event, not with a made-up ``finish_reason: "stop"``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from litellm.anthropic_beta_headers_manager import update_request_with_filtered_beta
from litellm.litellm_core_utils.core_helpers import map_finish_reason
from litellm.llms.anthropic.chat.handler import ModelResponseIterator
from litellm.llms.anthropic.chat.transformation import AnthropicConfig
from litellm.types.utils import ModelResponse, Usage

from memory_proxy.anthropic_upstream import anthropic_url
from memory_proxy.chat_preparation import prepare_chat
from memory_proxy.errors import stream_cut
from memory_proxy.model_table import Route
from memory_proxy.relay import RelayedReply, RelayRequest
from memory_proxy.sse_lines import block_data_lines
from memory_proxy.upstream_errors import translate_reply_error

__all__ = ["ClaudeChatCall", "ChatStreamShaper", "build_claude_call", "chat_reply", "chat_stream"]

# Every ``ANTHROPIC_TOOL_NAME_REVERSE_MAP_KEY``-style setting litellm keeps per call
# lives in litellm_params; the proxy passes none, as acompletion with no extras does.
_NO_LITELLM_PARAMS: Mapping[str, Any] = {}
# Stateless (its methods read only their arguments): one for every call.
_CONFIG = AnthropicConfig()


@dataclass(frozen=True)
class ClaudeChatCall:
    """One translated call: the provider request and what reading its answer needs."""

    request: RelayRequest
    model: str
    messages: list[Any]
    optional_params: dict[str, Any]
    json_mode: bool
    include_usage: bool


def build_claude_call(
    route: Route,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    defaults: Mapping[str, Any],
    drop_params: bool,
) -> ClaudeChatCall:
    """The Messages request for a Chat Completions ``body``, as ``litellm.completion``
    builds it (its validation errors, ValueErrors, are the client's: 400)."""
    prepared = prepare_chat(
        route.upstream_model_id, "anthropic", {**defaults, **body}, drop_params=drop_params
    )
    model, messages = prepared.model, prepared.messages
    optional = dict(prepared.optional_params)
    # As AnthropicChatCompletion.completion: these steer the call, they are not sent.
    optional.pop("stream", None)
    json_mode = bool(optional.pop("json_mode", False))
    optional.pop("is_vertex_request", None)
    transform_params = {**optional, "is_vertex_request": False}
    sent = _CONFIG.validate_environment(
        headers=dict(headers),
        model=model,
        messages=messages,
        optional_params=transform_params,
        litellm_params=dict(_NO_LITELLM_PARAMS),
        api_key=route.deployment.api_key,
        api_base=route.deployment.api_base,
    )
    data = _CONFIG.transform_request(
        model=model,
        messages=messages,
        optional_params=transform_params,
        litellm_params=dict(_NO_LITELLM_PARAMS),
        headers=sent,
    )
    sent, data = update_request_with_filtered_beta(
        headers=sent, request_data=data, provider="anthropic"
    )
    if prepared.stream:
        data["stream"] = True
    return ClaudeChatCall(
        request=RelayRequest(anthropic_url(route), sent, json.dumps(data).encode()),
        model=model,
        messages=messages,
        optional_params=optional,
        json_mode=json_mode,
        include_usage=prepared.include_usage,
    )


# What ``transform_parsed_response`` reads of the provider's HTTP answer: the status (200:
# the relay hands over success answers only) and the headers, which go to the reply's
# hidden params alone, never into its JSON. So none are given: copying the real ones into
# an ``httpx.Response`` was over a quarter of the reply's translation (1.106.12, measured).
_ANSWERED = httpx.Response(200)


def chat_reply(call: ClaudeChatCall, reply: RelayedReply) -> bytes:
    """The Chat Completions JSON for a Messages answer, ``transform_response``'s work
    entered one step in (see the module docstring)."""
    result = ModelResponse()
    result.usage = Usage()  # type: ignore[attr-defined]
    translated = _CONFIG.transform_parsed_response(
        completion_response=json.loads(reply.body),
        raw_response=_ANSWERED,
        model_response=result,
        json_mode=call.json_mode,
        prefix_prompt=_CONFIG.get_prefix_prompt(messages=call.messages),
        speed=call.optional_params.get("speed"),
        # Set in litellm_params by litellm's tool-name mapping, which the proxy does not
        # pass (``_NO_LITELLM_PARAMS``).
        tool_name_reverse_map=None,
    )
    return translated.model_dump_json().encode()


async def chat_stream(call: ClaudeChatCall, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Chat Completions SSE events (``data: ...``, no ``[DONE]``) for a Messages stream
    (whole SSE events, as the relay frames them): one block out per block in.

    litellm's iterator is driven through its synchronous protocol, a block of lines at
    a time (its state lives in its attributes; the sync and async paths parse alike):
    no await per line, and the events of one provider read go to the client in one
    write instead of one each. Text deltas take the short way (see the module docstring).
    """
    iterator = ModelResponseIterator(
        streaming_response=iter(()), sync_stream=True, json_mode=call.json_mode
    )
    shaper = ChatStreamShaper(call.model, call.include_usage)
    async for block in events:
        out: list[bytes] = []
        try:
            _translate_block(iterator, shaper, block_data_lines(block), out)
        except Exception as exc:  # noqa: BLE001 - the answer's fault, not the client's
            if out:  # what the block held before the failure still goes out first
                yield b"".join(out)
            raise translate_reply_error(exc) from exc
        if out:
            yield b"".join(out)
    if shaper.finish_reason is None:
        # Cut at an event boundary: no stop reason came. litellm would close with a made-up
        # "stop"; the client must not take a cut reply for a whole one.
        raise stream_cut()
    yield b"".join(_event(last) for last in shaper.end())


def _translate_block(
    iterator: ModelResponseIterator, shaper: ChatStreamShaper, lines: list[str], out: list[bytes]
) -> None:
    """The client's events for one block's ``data:`` lines, appended to ``out``."""
    for n, line in enumerate(lines):
        if iterator.chunk_type != "valid_json":
            # litellm is piecing a JSON value together across lines: all of it is litellm's.
            _through_litellm(iterator, shaper, lines[n:], out)
            return
        short = _short_way(line) if shaper.id is not None else None
        if short is None:
            _through_litellm(iterator, shaper, [line], out)
        elif short:
            out.append(_event(shaper.text(short)))


def _through_litellm(
    iterator: ModelResponseIterator, shaper: ChatStreamShaper, lines: list[str], out: list[bytes]
) -> None:
    iterator.response_iterator = iter(lines)
    for chunk in iterator:
        shaped = shaper.shape(chunk)
        if shaped is not None:
            out.append(_event(shaped))


_SHORT_MARKS = ('"content_block_delta"', '"ping"', '"message_stop"')
_NOTHING = ""  # the event adds nothing to the client's stream


def _short_way(line: str) -> str | None:
    """What an event needs without litellm's ``chunk_parser``: the text of a text delta
    (a ``content_block_delta`` whose delta has a string ``text``), or nothing for a
    ``ping`` or ``message_stop``; None for every other event.

    For these events ``chunk_parser`` changes none of its state and makes a chunk whose
    only content is that text, or no content at all (which the shaper drops). The
    differential tests hold the two ways equal: every stream they send is mostly text
    deltas and ends with ``message_stop``.
    """
    if not any(mark in line for mark in _SHORT_MARKS):
        return None
    try:
        event = json.loads(line[5:])
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind in ("ping", "message_stop"):
        return _NOTHING
    if kind != "content_block_delta":
        return None
    delta = event.get("delta")
    if not isinstance(delta, dict):
        return None
    text = delta.get("text")
    return text if isinstance(text, str) else None


def _event(chunk: dict[str, Any]) -> bytes:
    return (
        b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


class ChatStreamShaper:
    """The OpenAI stream from litellm's per-event chunks (see the module docstring)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id: str | None = None
        self.created: int | None = None
        self.sent_first = False
        self.finish_reason: str | None = None
        self.tool_call = False
        self.usage: dict[str, Any] | None = None

    def shape(self, chunk: Any) -> dict[str, Any] | None:
        """The chunk to send for one of litellm's, or None when it carries nothing."""
        if isinstance(chunk, dict):  # litellm's placeholder for a line it skips
            return None
        data: dict[str, Any] = chunk.model_dump(exclude_none=True)
        if self.id is None:
            self.id, self.created = data.get("id"), data.get("created")
        usage = data.pop("usage", None)
        if usage is not None:
            self.usage = usage
        choices = data.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        finish = choice.pop("finish_reason", None)
        if finish:
            self.finish_reason = finish
        delta = choice.get("delta") or {}
        if delta.get("tool_calls"):
            self.tool_call = True
        if not _has_content(delta):
            return None
        if self.sent_first:
            delta.pop("role", None)
        else:
            delta["role"] = "assistant"
            self.sent_first = True
        return self._stamped(data)

    def text(self, text: str) -> dict[str, Any]:
        """The chunk for a text delta: what :meth:`shape` makes of litellm's chunk for
        one (``choices: [{index: 0, delta: {content}}]``), without building that chunk."""
        delta: dict[str, Any] = {"content": text}
        if not self.sent_first:
            delta["role"] = "assistant"
            self.sent_first = True
        return self._stamped({"choices": [{"index": 0, "delta": delta}]})

    def end(self) -> list[dict[str, Any]]:
        """The closing chunks: the finish reason, then the usage when asked for."""
        finish = map_finish_reason(self.finish_reason) if self.finish_reason else "stop"
        if finish == "stop" and self.tool_call:
            finish = "tool_calls"
        chunks = [self._stamped({"choices": [{"finish_reason": finish, "index": 0, "delta": {}}]})]
        if self.include_usage and self.usage is not None:
            chunks.append(
                self._stamped({"choices": [{"index": 0, "delta": {}}], "usage": self.usage})
            )
        return chunks

    def _stamped(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "model": self.model,
            "object": "chat.completion.chunk",
            **{k: v for k, v in data.items() if k not in _STAMPED},
        }


_STAMPED = frozenset({"id", "created", "model", "object"})
_CONTENT_KEYS = ("tool_calls", "function_call", "reasoning_content", "provider_specific_fields")


def _has_content(delta: Mapping[str, Any]) -> bool:
    content = delta.get("content")
    return bool(content) or any(delta.get(key) is not None for key in _CONTENT_KEYS)
