"""The Messages stream for an OpenAI model, driven a provider read at a time, against
litellm's ``AnthropicStreamWrapper`` reading the same chunks by itself.

``messages_stream`` resumes the wrapper by hand and writes a text-only chunk amid a
text block itself; these tests hold every event to what the wrapper alone makes, for
generated chunk sequences (text, refusals, reasoning, tool calls, empty and combined
chunks, usage) cut into provider reads anywhere. A sequence with neither a finish reason
nor ``[DONE]`` is a cut stream: the proxy's deliberate difference ends it with the error
event the wrapper makes when its input fails there.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from litellm.llms.anthropic.pass_through.adapters.streaming_iterator import (
    AnthropicSSEStream,
    AnthropicStreamWrapper,
)
from litellm.types.utils import ModelResponseStream

from memory_proxy.errors import stream_cut
from memory_proxy.messages_gpt import GptMessagesCall, messages_stream
from memory_proxy.relay import RelayRequest

MODEL = "gpt-4o"
CALL = GptMessagesCall(RelayRequest("http://127.0.0.1:9/v1/chat/completions", {}, b""), MODEL, {})
_MESSAGE_ID = re.compile(rb'"msg_[0-9a-f-]+"')
_TOOL_ID = re.compile(rb'"toolu_[0-9A-Za-z_-]+"')
# A tool block opened by arguments with no call id gets a random one, on either path.
_UUID = re.compile(rb'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"')

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": extra.pop("logprobs", None)}
    choice["finish_reason"] = finish
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_800_000_000,
        "model": MODEL,
        "choices": [choice],
        **extra,
    }


@st.composite
def chunk_sequences(draw: st.DrawFn) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    if draw(st.booleans()):
        chunks.append(_chunk({"role": "assistant", "content": "", "refusal": None}))
    tools = 0
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        kind = draw(
            st.sampled_from(
                [
                    "text",
                    "text",
                    "text",
                    "text-role",
                    "text-null-usage",
                    "refusal",
                    "reasoning",
                    "tool",
                    "arguments",
                    "empty",
                    "blank",
                    "logprobs",
                ]
            )
        )
        text = draw(_TEXT)
        if kind == "text":
            chunks.append(_chunk({"content": text}))
        elif kind == "text-role":
            chunks.append(_chunk({"role": "assistant", "content": text}))
        elif kind == "text-null-usage":
            chunks.append(_chunk({"content": text}, usage=None))
        elif kind == "refusal":
            chunks.append(_chunk({"refusal": text}))
        elif kind == "reasoning":
            chunks.append(_chunk({"reasoning_content": text}))
        elif kind == "tool":
            head = {
                "index": tools,
                "id": f"call_{tools}",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
            chunks.append(_chunk({"tool_calls": [head]}))
            tools += 1
        elif kind == "arguments" and tools:
            part = {"index": tools - 1, "function": {"arguments": text}}
            chunks.append(_chunk({"tool_calls": [part]}))
        elif kind == "empty":
            chunks.append(_chunk({}))
        elif kind == "blank":
            blank = draw(
                st.sampled_from([{"content": None}, {"role": "assistant"}, {"content": ""}])
            )
            chunks.append(_chunk(blank))
        elif kind == "logprobs":
            logprobs = {"content": [{"token": text, "logprob": -0.1, "top_logprobs": []}]}
            chunks.append(_chunk({"content": text}, logprobs=logprobs))
    finish = draw(st.sampled_from(["stop", "length", "tool_calls", None]))
    if finish is not None:
        last = draw(st.sampled_from([{}, {"content": draw(_TEXT)}]))
        chunks.append(_chunk(last, finish))
        # What a provider may still send after its finish reason.
        for late in draw(st.lists(st.sampled_from([{"content": "late"}, {}]), max_size=2)):
            chunks.append(_chunk(late))
    if draw(st.booleans()):
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        chunks.append({**_chunk({}), "choices": [], "usage": usage})
    return chunks


def _sse(chunks: list[dict[str, Any]], done: bool) -> list[bytes]:
    events = [b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks]
    return events + [b"data: [DONE]\n\n"] if done else events


async def _ours(reads: list[bytes]) -> bytes:
    async def provider() -> AsyncIterator[bytes]:
        for read in reads:
            yield read

    return b"".join([batch async for batch in messages_stream(CALL, provider())])


async def _litellms(chunks: list[dict[str, Any]], failure: Exception | None = None) -> bytes:
    """The wrapper reading ``chunks`` by itself; its input then fails with ``failure``."""

    async def stream() -> AsyncIterator[ModelResponseStream]:
        for chunk in chunks:
            yield ModelResponseStream(**chunk)
        if failure is not None:
            raise failure

    wrapper = AnthropicStreamWrapper(completion_stream=stream(), model=MODEL)  # type: ignore[arg-type]
    return b"".join([event async for event in AnthropicSSEStream(wrapper)])


def _normalized(stream: bytes) -> bytes:
    for pattern, same in ((_MESSAGE_ID, b'"msg"'), (_TOOL_ID, b'"toolu"'), (_UUID, b'"id"')):
        stream = pattern.sub(same, stream)
    return stream


def _cut(events: list[bytes], cuts: list[int]) -> list[bytes]:
    """``events`` joined into provider reads, a read ending after each index in ``cuts``."""
    reads, start = [], 0
    for end in sorted({c % (len(events) + 1) for c in cuts} | {len(events)}):
        if end > start:
            reads.append(b"".join(events[start:end]))
            start = end
    return reads


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    chunks=chunk_sequences(),
    done=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_every_event_is_the_wrappers(
    chunks: list[dict[str, Any]], done: bool, cuts: list[int]
) -> None:
    ours = asyncio.run(_ours(_cut(_sse(chunks, done), cuts)))
    whole = done or any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)
    theirs = asyncio.run(_litellms(chunks, None if whole else stream_cut()))
    assert _normalized(ours).split(b"\n\n") == _normalized(theirs).split(b"\n\n")


def test_text_amid_a_block_is_written_without_the_wrapper() -> None:
    """The case the short way is for: a text block's later deltas. Each event is the
    wrapper's, one write per provider read."""
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": word}) for word in ("Paris ", "is ", "the ", "capital.")]
    chunks.append(_chunk({}, "stop"))
    events = _sse(chunks, done=True)

    async def batches() -> list[bytes]:
        async def provider() -> AsyncIterator[bytes]:
            for event in events:
                yield event

        return [batch async for batch in messages_stream(CALL, provider())]

    written = asyncio.run(batches())
    assert _normalized(b"".join(written)) == _normalized(asyncio.run(_litellms(chunks)))
    # message_start before the first read, then one write per read that made events (the
    # held stop reason goes out with the end).
    assert written[0].startswith(b"event: message_start")
    assert [b.count(b"event: ") for b in written] == [1, 2, 1, 1, 1, 1, 2]


def test_a_failed_read_ends_the_stream_with_an_error_event() -> None:
    """A provider read that fails reaches litellm's wrapper as its own read's failure:
    the events made so far, then its error event."""
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Hi"})]

    async def provider() -> AsyncIterator[bytes]:
        for event in _sse(chunks, done=False):
            yield event
        raise ConnectionResetError("provider went away")

    async def run() -> bytes:
        return b"".join([batch async for batch in messages_stream(CALL, provider())])

    stream = asyncio.run(run())
    assert b'"text": "Hi"' in stream
    assert stream.rstrip().split(b"\n\n")[-1].startswith(b"event: error")


def test_a_stream_cut_before_its_finish_reason_ends_in_an_error_not_a_message_stop() -> None:
    """The deliberate difference: the provider closed after some text, with no finish
    reason and no ``[DONE]``. litellm's wrapper would close with a ``message_stop``, which
    the Anthropic SDK takes for a whole reply; the proxy's last event is an error."""
    chunks = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "Paris is"})]
    events = asyncio.run(_ours(_sse(chunks, done=False))).rstrip().split(b"\n\n")
    assert b'"text": "Paris is"' in events[-2]
    assert events[-1].startswith(b"event: error")
    assert b"upstream stream ended without its final event" in events[-1]
    assert not any(event.startswith(b"event: message_stop") for event in events)
    # Either end makes it whole: the finish reason, or the [DONE] alone.
    for whole in (_sse([*chunks, _chunk({}, "stop")], done=False), _sse(chunks, done=True)):
        last = asyncio.run(_ours(whole)).rstrip().split(b"\n\n")[-1]
        assert last.startswith(b"event: message_stop")
