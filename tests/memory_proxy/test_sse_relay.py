"""The pure parts of the pass-through: event framing, end detection, the body sent on."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.api_formats import ANTHROPIC, OPENAI, ApiFormat
from memory_proxy.client_body import ClientBody
from memory_proxy.config import Deployment
from memory_proxy.openai_upstream import is_passthrough
from memory_proxy.streaming import SseFramer, final_event_detector

STREAM = (
    b'event: message_start\ndata: {"type":"message_start"}\n\n'
    b": ping comment\n\n"
    b"event: content_block_delta\r\n"
    b'data: {"type":"content_block_delta","text":"caf\xc3\xa9"}\r\n\r\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=8))
def test_framer_yields_whole_events_however_the_bytes_are_split(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    framer = SseFramer()
    out = [framer.feed(chunk) for chunk in chunks]
    assert b"".join(out) == STREAM
    assert framer.pending == b""
    assert all(piece.endswith((b"\n\n", b"\r\n\r\n")) for piece in out if piece)


def test_framer_holds_a_partial_event() -> None:
    framer = SseFramer()
    assert framer.feed(b"data: [DO") == b""
    assert framer.pending == b"data: [DO"
    assert framer.feed(b"NE]\n\ndata: x") == b"data: [DONE]\n\n"
    assert framer.pending == b"data: x"


@pytest.mark.parametrize(
    ("fmt", "block", "final"),
    [
        (OPENAI, b'data: {"choices":[]}\n\n', False),
        (OPENAI, b'data: {"choices":[]}\n\ndata: [DONE]\n\n', True),
        (OPENAI, b'data: {"error":{"message":"overloaded"}}\n\n', True),
        (OPENAI, b'data: {"choices":[{"delta":{"content":"[DONE]"}}]}\n\n', False),
        (ANTHROPIC, b'event: message_delta\ndata: {"type":"message_delta"}\n\n', False),
        (ANTHROPIC, b'event: message_stop\ndata: {"type":"message_stop"}\n\n', True),
        (ANTHROPIC, b'event: error\ndata: {"type":"error"}\n\n', True),
        (ANTHROPIC, b'event: content_block_delta\ndata: {"text":"message_stop"}\n\n', False),
    ],
)
def test_final_event_detector(fmt: ApiFormat, block: bytes, final: bool) -> None:
    assert final_event_detector(fmt)(block) is final


def test_client_body_kept_as_sent_unless_it_must_change() -> None:
    raw = b'{ "model": "gpt-4o", "messages": [], "temperature": 0.7 }'
    body = ClientBody(json.loads(raw), raw)
    assert body.for_upstream("gpt-4o") is raw
    renamed = json.loads(body.for_upstream("gpt-4o-2024-08-06"))
    assert renamed == {"model": "gpt-4o-2024-08-06", "messages": [], "temperature": 0.7}
    with_defaults = json.loads(body.for_upstream("gpt-4o", {"temperature": 0, "seed": 7}))
    assert with_defaults["temperature"] == 0.7 and with_defaults["seed"] == 7  # client wins


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"model": "openai/gpt-4o", "api_base": "http://x/v1", "api_key": "k"}, True),
        ({"model": "openai/gpt-4o", "temperature": 0.2, "max_tokens": 100}, True),
        ({"model": "openai/gpt-4o", "rpm": 100}, False),  # litellm-only: litellm knows it
        ({"model": "openai/gpt-4o", "organization": "org-1"}, False),
        ({"model": "anthropic/claude-*"}, False),
    ],
)
def test_which_openai_deployments_pass_through(params: dict[str, object], expected: bool) -> None:
    assert is_passthrough(Deployment("m", params)) is expected
