"""The SSE decoder and the per-format assemblers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.observation import SseEvent
from harness.sandbox.anthropic_api import message_body, message_events
from harness.sandbox.formats import ANTHROPIC, OPENAI
from harness.sandbox.openai_api import completion_body, completion_events
from harness.sse import (
    SseDecoder,
    assemble_anthropic,
    assemble_openai,
    decode_sse,
    event_sequence,
    first_token_offset,
)
from tests.harness.builders import reply, stream_bytes

BODY = {"model": "claude-sonnet-4-5-20250929", "stream_options": {"include_usage": True}}


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


# -- decoding ----------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_decode_alike(newline: bytes) -> None:
    text = b'event: message_start\ndata: {"a":1}\n\n: keep-alive\n\ndata: [DONE]\n\n'
    events = decode_sse([text.replace(b"\n", newline)])
    assert events == [SseEvent('{"a":1}', "message_start"), SseEvent("[DONE]")]


def test_multiline_data_comments_and_unknown_fields() -> None:
    raw = (
        b":comment first\n"
        b"id: 7\nretry: 100\n"
        b"data: first line\n"
        b"data:second line\n"
        b"data\n"
        b"data:  two spaces keep one\n"
        b"\n"
    )
    [event] = decode_sse([raw])
    assert event.data == "first line\nsecond line\n\n two spaces keep one"
    assert event.event is None


def test_event_without_data_is_not_dispatched_and_name_resets() -> None:
    events = decode_sse([b"event: ping\n\ndata: x\n\n"])
    assert events == [SseEvent("x", None)]


def test_partial_event_at_end_is_dropped_but_lone_cr_ends_the_line() -> None:
    assert decode_sse([b"data: a\n\ndata: cut"]) == [SseEvent("a")]
    assert decode_sse([b"data: a\r\r"]) == [SseEvent("a")]


def test_bom_and_utf8_split_inside_a_character() -> None:
    raw = "\ufeffdata: héllo ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1
    assert decode_sse([raw[:cut], raw[cut:]]) == [SseEvent("héllo ✓")]


def test_crlf_split_between_cr_and_lf() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\ndata: b\r\n\r\n", offset_ms=5.0) == [
        SseEvent("a", offset_ms=5.0),
        SseEvent("b", offset_ms=5.0),
    ]


def test_feed_stamps_events_with_the_chunk_offset() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: a\n", 1.0) == []
    assert decoder.feed(b"\ndata: b\n\n", 2.5) == [
        SseEvent("a", None, 2.5),
        SseEvent("b", None, 2.5),
    ]


# -- property: any chunking, same events, same message -------------------------------

words = st.lists(st.sampled_from(["alpha", "beta", "γάμμα", "✓", "x", "  ", "\t"]), max_size=12)
tool_args = st.dictionaries(
    st.sampled_from(["city", "days", "path", "ü"]),
    st.one_of(st.integers(-5, 5), st.text(max_size=8), st.booleans(), st.none()),
    max_size=4,
)
planned = st.one_of(
    words.map(lambda w: reply(" ".join(w) or "ok")),
    tool_args.map(lambda a: reply(tool=("get_weather", a))),
)
newlines = st.sampled_from([b"\n", b"\r\n", b"\r"])
cuts = st.lists(st.integers(0, 10_000), max_size=12)


def _wire(rendered: list[Any], newline: bytes) -> bytes:
    return stream_bytes(rendered).replace(b"\n", newline)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(planned=planned, newline=newlines, cuts=cuts)
def test_openai_any_chunking_same_events_and_message(
    planned: Any, newline: bytes, cuts: list[int]
) -> None:
    data = _wire(completion_events(planned, BODY), newline)
    whole = decode_sse([data])
    chunked = decode_sse(_split(data, cuts))
    assert chunked == whole
    assert assemble_openai(chunked) == assemble_openai(whole)
    assembled = assemble_openai(whole)
    expected = completion_body(planned, BODY)
    message = expected["choices"][0]["message"]
    got = assembled["choices"][0]
    assert got["finish_reason"] == expected["choices"][0]["finish_reason"]
    assert got["message"].get("tool_calls") == message.get("tool_calls")
    assert (got["message"]["content"] or None) == message["content"]
    assert assembled["usage"] == expected["usage"]
    assert assembled["saw_done"] is True


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(planned=planned, newline=newlines, cuts=cuts)
def test_anthropic_any_chunking_same_events_and_message(
    planned: Any, newline: bytes, cuts: list[int]
) -> None:
    data = _wire(message_events(planned, BODY), newline)
    whole = decode_sse([data])
    chunked = decode_sse(_split(data, cuts))
    assert chunked == whole
    assembled = assemble_anthropic(chunked)
    assert assembled == assemble_anthropic(whole)
    assert assembled.pop("saw_message_stop") is True
    assert assembled == message_body(planned, BODY)


# -- assembly details ----------------------------------------------------------------


def _events(*payloads: tuple[str | None, Any]) -> list[SseEvent]:
    return [
        SseEvent(p if isinstance(p, str) else json.dumps(p), name, float(i))
        for i, (name, p) in enumerate(payloads)
    ]


def test_openai_parallel_tool_calls_and_arguments_concatenated() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, Any]:
        return None, {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = _events(
        chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "a", "arguments": ""},
                    },
                ],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "b", "arguments": "{}"},
                    },
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
        (None, "[DONE]"),
    )
    [choice] = assemble_openai(events)["choices"]
    assert [c["function"] for c in choice["message"]["tool_calls"]] == [
        {"name": "a", "arguments": '{"x":1}'},
        {"name": "b", "arguments": "{}"},
    ]
    assert choice["finish_reason"] == "tool_calls"
    assert event_sequence(events, "openai") == [
        "role", "tool_call_start", "tool_call_delta", "tool_call_start", "tool_call_delta",
        "finish", "[DONE]",
    ]  # fmt: skip


def test_openai_error_mid_stream_and_missing_done() -> None:
    error = OPENAI.stream_error_event(503)
    events = decode_sse([stream_bytes(completion_events(reply(), BODY)[:3]) + error.encode()])
    assembled = assemble_openai(events)
    assert assembled["error"]["type"] == json.loads(error.data)["error"]["type"]
    assert assembled["saw_done"] is False
    assert event_sequence(events, "openai") == ["role", "content", "error"]


def test_anthropic_error_mid_stream_and_missing_message_stop() -> None:
    error = ANTHROPIC.stream_error_event(529)
    rendered = message_events(reply(), BODY)[:5]
    events = decode_sse([stream_bytes(rendered) + error.encode()])
    assembled = assemble_anthropic(events)
    assert assembled["error"] == json.loads(error.data)["error"]
    assert assembled["saw_message_stop"] is False
    assert assembled["content"][0]["text"]  # what came before the error is kept
    assert event_sequence(events, "anthropic")[-1] == "error"


def test_anthropic_usage_merges_start_and_delta() -> None:
    start = {"id": "msg_1", "model": "m", "content": [], "usage": {"input_tokens": 5}}
    start["usage"]["output_tokens"] = 1
    delta = {"stop_reason": "end_turn"}
    events = _events(
        ("message_start", {"type": "message_start", "message": start}),
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    )
    assembled = assemble_anthropic(events)
    assert assembled["usage"] == {"input_tokens": 5, "output_tokens": 9}
    assert assembled["stop_reason"] == "end_turn"
    assert assembled["content"] == []


def test_anthropic_unparsable_tool_input_stays_a_string_and_malformed_is_counted() -> None:
    block = {"type": "tool_use", "id": "t", "name": "n", "input": {}}
    delta = {"type": "input_json_delta", "partial_json": '{"a": '}
    events = _events(
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        ),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_delta", "{not json"),
    )
    assembled = assemble_anthropic(events)
    assert assembled["content"][0]["input"] == '{"a": '
    assert assembled["malformed_events"] == 1
    assert event_sequence(events, "anthropic")[-1] == "malformed"


def test_sequence_collapses_runs_of_deltas_only() -> None:
    rendered = message_events(reply("one two three four five six seven eight nine ten"), BODY)
    events = decode_sse([stream_bytes(rendered)])
    deltas = sum(1 for e in events if e.event == "content_block_delta")
    assert deltas > 1
    assert event_sequence(events, "anthropic").count("content_block_delta:text_delta") == 1


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
@pytest.mark.parametrize("tool", [None, ("get_weather", {"city": "Paris"})])
def test_first_token_offset_is_the_first_content_delta(fmt: str, tool: Any) -> None:
    planned = reply(tool=tool)
    rendered = (completion_events if fmt == "openai" else message_events)(planned, BODY)
    events = [
        SseEvent(e.data, e.event, offset_ms=float(i))
        for i, e in enumerate(decode_sse([stream_bytes(rendered)]))
    ]
    opening = next(i for i, e in enumerate(rendered) if e.opens_content)
    assert opening > 0  # not the first byte
    assert first_token_offset(events, fmt) == float(opening)  # type: ignore[arg-type]


def test_first_token_offset_none_without_content() -> None:
    events = _events(
        (None, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    )
    assert first_token_offset(events, "openai") is None
