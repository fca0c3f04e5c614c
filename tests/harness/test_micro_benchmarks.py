"""Micro-benchmarks of the harness's and the proxy's per-request pure work.

In the normal suite (``--benchmark-disable``) each runs once, as a test of its result;
measure with ``pytest tests/harness/test_micro_benchmarks.py --benchmark-enable``.
Normalize + diff per captured pair is measured in ``compare/test_compare_benchmark.py``, not here.
What a whole request costs through each path is ``harness bench``'s job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import Headers

from harness.observation import CapturedPair
from harness.sandbox.anthropic_api import message_events
from harness.sandbox.openai_api import completion_events
from harness.shadow import upstream_tap
from harness.shadow.upstream_tap import UpstreamTap
from harness.sse import SseDecoder, assemble, decode_sse
from harness.store.capture_store import CaptureStore
from memory_proxy.memory_router import HeaderPattern, MemoryRouter, UserIdMappings
from memory_proxy.streaming import SseFramer
from tests.harness.builders import (
    chat_observation,
    make_pair,
    messages_observation,
    reply,
    stream_bytes,
)

LONG_TEXT = " ".join(f"word{i}" for i in range(200))  # ~70 events in a stream


# -- memory router -------------------------------------------------------------------------

_ROUTER = MemoryRouter(
    UserIdMappings(
        header_patterns=(
            HeaderPattern("user-agent", re.compile("^OpenAIClientImpl/Java", re.I), "pycharm-ai"),
        )
    )
)
_CLAUDE_CODE = Headers(
    {
        "user-agent": "claude-cli/2.1.332 (external, cli)",
        "x-claude-code-session-id": "6f1c2b8e-4a1d-4c8e-9a55-0d6f1e2b3c4d",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-proxy",
        "content-type": "application/json",
    }
)
_CUSTOM = Headers({"x-memory-user-id": "alice", "user-agent": "curl/8.5.0"})
_UNKNOWN = Headers({"user-agent": "SomethingElse/1.0", "accept": "*/*"})


@pytest.mark.benchmark(group="memory-router")
@pytest.mark.parametrize(
    ("headers", "user_id", "rule"),
    [
        (_CLAUDE_CODE, "claude-code", "header_pattern"),
        (_CUSTOM, "alice", "custom_header"),
        (_UNKNOWN, "default-dev", "default"),
    ],
    ids=["pattern", "custom-header", "default"],
)
def test_detect_user_id(benchmark: Any, headers: Headers, user_id: str, rule: str) -> None:
    decision = benchmark(_ROUTER.detect_user_id, headers)
    assert (decision.user_id, decision.rule) == (user_id, rule)


# -- SSE: decode and assemble, per format ----------------------------------------------------

_OPENAI_STREAM = stream_bytes(completion_events(reply(LONG_TEXT), {"model": "gpt-4o"}))
_ANTHROPIC_STREAM = stream_bytes(message_events(reply(LONG_TEXT), {"model": "claude"}))


def _network_chunks(data: bytes, size: int = 1400) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _decode_and_assemble(chunks: list[bytes], fmt: Any) -> dict[str, Any]:
    return assemble(decode_sse(chunks), fmt)


@pytest.mark.benchmark(group="sse")
@pytest.mark.parametrize(
    ("stream", "fmt", "done_key"),
    [(_OPENAI_STREAM, "openai", "saw_done"), (_ANTHROPIC_STREAM, "anthropic", "saw_message_stop")],
    ids=["openai", "anthropic"],
)
def test_sse_decode_and_assemble(benchmark: Any, stream: bytes, fmt: str, done_key: str) -> None:
    chunks = _network_chunks(stream)
    assembled = benchmark(_decode_and_assemble, chunks, fmt)
    assert assembled[done_key] is True
    text = (
        assembled["choices"][0]["message"]["content"]
        if fmt == "openai"
        else assembled["content"][0]["text"]
    )
    assert text.startswith("word0") and "word199" in text


@pytest.mark.benchmark(group="sse")
def test_sse_decode_only(benchmark: Any) -> None:
    chunks = _network_chunks(_ANTHROPIC_STREAM)

    def decode() -> int:
        decoder = SseDecoder()
        return sum(len(decoder.feed(chunk)) for chunk in chunks)

    assert benchmark(decode) > 50


@pytest.mark.benchmark(group="sse")
def test_proxy_sse_framing(benchmark: Any) -> None:
    # What the proxy's pass-through does per stream: cut at event boundaries, no parsing.
    chunks = _network_chunks(_ANTHROPIC_STREAM)

    def frame() -> int:
        framer = SseFramer()
        return sum(len(framer.feed(chunk)) for chunk in chunks)

    assert benchmark(frame) == len(_ANTHROPIC_STREAM)


# -- capture store: put + flush -------------------------------------------------------------

PAIRS = 200


def _pairs() -> list[CapturedPair]:
    chat = make_pair(chat_observation(), chat_observation(target="legacy", model="gpt-4o"))
    stream = make_pair(
        messages_observation(stream=True),
        messages_observation(target="legacy", stream=True),
        endpoint="messages",
        stream=True,
    )
    return [chat if i % 2 else stream for i in range(PAIRS)]


@pytest.mark.benchmark(group="store")
def test_store_put_and_flush(benchmark: Any, tmp_path: Path) -> None:
    pairs = _pairs()
    store = CaptureStore(tmp_path / "bench.db")

    def write_all() -> bool:
        for pair in pairs:
            store.put(pair)
        return store.flush(timeout=30)

    try:
        assert benchmark(write_all) is True
        written = store.count()
        assert written > 0 and written % PAIRS == 0  # every call wrote all its pairs
        assert store.dropped == 0
    finally:
        store.close()


# -- the tap on the primary's provider calls (replay mode) ----------------------------------

_TAP = UpstreamTap(max_body_bytes=262_144)
_TAP_HEADERS = [(f"x-header-{i}", "v" * 20) for i in range(12)]
_TAP_CHUNKS = [b"event: content_block_delta\ndata: " + b"x" * 80 + b"\n\n"] * 20


def _tapped_stream_call() -> tuple[Any, ...]:
    """What replay mode adds to one mirrored request on the primary's request path: the
    context opened and closed, one provider call of 20 stream chunks recorded."""
    token = upstream_tap.begin()
    call = _TAP.call("POST", "https://provider/v1/messages", _TAP_HEADERS, b"{}" * 200)
    assert call is not None
    call.response(200, _TAP_HEADERS)
    for chunk in _TAP_CHUNKS:
        call.chunk(chunk)
    call.end()
    return upstream_tap.finish(token)


def test_the_tap_on_a_streamed_provider_call(benchmark: Any) -> None:
    (record,) = benchmark(_tapped_stream_call)
    assert record[5] == 200 and len(record[8]) == 20


def test_the_tap_costs_nothing_outside_a_mirrored_request(benchmark: Any) -> None:
    assert benchmark(_TAP.call, "POST", "https://provider/v1/messages", _TAP_HEADERS, b"{}") is None
