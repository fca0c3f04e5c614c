"""Differential tests: the proxy's translated paths against litellm's SDK entry points.

Each case sends one request to the SDK proxy and the same request to
``litellm.acompletion`` (the oracle, :mod:`translation_oracle`), both against one
scripted provider giving both the same reply. What the client gets must be equal: the
JSON, or the SSE events one by one, after ids and timestamps are normalized; and what
the provider received must be equal too. The deliberate differences (named in
``memory_proxy.claude_chat``) are removed from the oracle's side, by name, here only.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.api_formats import OPENAI
from tests.memory_proxy.differential_fixtures import CLAUDE, MASTER_KEY, PROVIDER_KEY
from tests.memory_proxy.scripted_provider import Scripted, ScriptedProvider, anthropic_events, sse
from tests.memory_proxy.translation_oracle import (
    ClientView,
    OracleLoop,
    assert_same_events,
    assert_same_json,
    normalized_events,
    oracle_json,
    oracle_stream,
)


def message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01differential",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 12, **usage},
    }


TEXT = message([{"type": "text", "text": "Paris is the capital of France, as you asked."}])
PARALLEL_TOOLS = message(
    [
        {"type": "text", "text": "Checking both cities."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
        {
            "type": "tool_use",
            "id": "toolu_01B",
            "name": "get_weather",
            "input": {"city": "Rome", "unit": "celsius", "days": [1, 2]},
        },
    ],
    "tool_use",
)
CACHED = message(
    [{"type": "text", "text": "From the cache."}],
    cache_creation_input_tokens=100,
    cache_read_input_tokens=2048,
)
STOPPED = {
    **message([{"type": "text", "text": "one two"}], "stop_sequence"),
    "stop_sequence": "three",
}
THINKING = message(
    [
        {"type": "thinking", "thinking": "The user wants a number.", "signature": "sig-abc"},
        {"type": "text", "text": "42"},
    ]
)
MAX_TOKENS = message([{"type": "text", "text": "Cut short"}], "max_tokens")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
IMAGE = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

# (id, request body without model/stream, the provider's answer)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("text", {"messages": [{"role": "user", "content": "Capital of France?"}]}, TEXT),
    (
        "system-multi-turn-params",
        {
            "messages": [
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Capital of France?"},
            ],
            "max_tokens": 50,
            "temperature": 0.3,
            "top_p": 0.9,
        },
        TEXT,
    ),
    (
        "stop-sequences",
        {"messages": [{"role": "user", "content": "Count"}], "stop": ["three", "four"]},
        STOPPED,
    ),
    (
        "parallel-tool-calls",
        {
            "messages": [{"role": "user", "content": "Weather in Paris and Rome?"}],
            "tools": TOOLS,
            "tool_choice": "auto",
        },
        PARALLEL_TOOLS,
    ),
    (
        "tool-results",
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01A",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_01A", "content": "Sunny, 21C"},
            ],
            "tools": TOOLS,
        },
        TEXT,
    ),
    (
        "image",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": IMAGE}},
                    ],
                }
            ]
        },
        TEXT,
    ),
    ("cache-usage", {"messages": [{"role": "user", "content": "Again"}]}, CACHED),
    ("thinking", {"messages": [{"role": "user", "content": "Number?"}]}, THINKING),
    (
        "max-tokens",
        {"messages": [{"role": "user", "content": "Long"}], "max_tokens": 3},
        MAX_TOKENS,
    ),
]


def via_proxy(proxy: str, body: dict[str, Any]) -> ClientView:
    with httpx.Client(timeout=30) as client:
        reply = client.post(
            proxy + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {MASTER_KEY}"},
        )
    return ClientView(reply.status_code, reply.content)


def via_litellm(oracle: OracleLoop, url: str, body: dict[str, Any]) -> ClientView:
    """What the proxy's earlier path (``litellm.acompletion``) gave the client."""
    kwargs = {
        **body,
        "model": f"anthropic/{CLAUDE}",
        "api_base": url,
        "api_key": PROVIDER_KEY,
        "num_retries": 0,
        "drop_params": True,
    }

    def call() -> Any:
        return litellm.acompletion(**kwargs)

    if body.get("stream"):
        return oracle.run(
            oracle_stream(
                call,
                lambda c: b"data: " + c.model_dump_json(exclude_none=True).encode() + b"\n\n",
                OPENAI,
                trailer=b"data: [DONE]\n\n",
            )
        )
    return oracle.run(oracle_json(call, lambda r: r.model_dump_json().encode(), OPENAI))


def run_both(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    body: dict[str, Any],
    reply: Scripted,
) -> tuple[ClientView, ClientView, list[dict[str, Any]]]:
    """Both paths, one reply: the two client views and the two provider request bodies."""
    scripted, url = provider
    scripted.reply = reply
    scripted.requests.clear()
    ours = via_proxy(proxy, {**body, "model": "claude-sonnet-4.5"})
    sent_ours = [r[2] for r in scripted.requests]
    scripted.requests.clear()
    theirs = via_litellm(oracle, url, body)
    sent_theirs = [r[2] for r in scripted.requests]
    assert sent_ours == sent_theirs, "the provider was sent something else"
    return ours, theirs, sent_ours


@pytest.mark.parametrize(
    ("body", "answer"), [(b, a) for _, b, a in CASES], ids=[c[0] for c in CASES]
)
def test_non_stream_matches_acompletion(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    body: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    ours, theirs, sent = run_both(
        provider, proxy, oracle, body, Scripted(json.dumps(answer).encode())
    )
    assert ours.status == 200
    assert sent[0]["messages"]  # the provider got a Messages request
    assert_same_json(ours, theirs)


@pytest.mark.parametrize("include_usage", [False, True], ids=["plain", "include-usage"])
@pytest.mark.parametrize(
    ("body", "answer"), [(b, a) for _, b, a in CASES], ids=[c[0] for c in CASES]
)
def test_stream_matches_acompletion_event_by_event(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    body: dict[str, Any],
    answer: dict[str, Any],
    include_usage: bool,
) -> None:
    streamed = {**body, "stream": True}
    if include_usage:
        streamed["stream_options"] = {"include_usage": True}
    reply = Scripted(sse(anthropic_events(answer, split=5)), stream=True)
    ours, theirs, sent = run_both(provider, proxy, oracle, streamed, reply)
    assert ours.status == 200 and sent[0]["stream"] is True
    assert_same_events(ours, theirs)
    assert ours.body.endswith(b"data: [DONE]\n\n")


def anthropic_error(kind: str, text: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": text}}).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_errors_before_the_first_byte_match(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    status: int,
    kind: str,
    stream: bool,
) -> None:
    # x-should-retry: false: one provider call on each side (the proxy would retry a 429).
    reply = Scripted(
        anthropic_error(kind, f"scripted {kind}"),
        status=status,
        headers={"x-should-retry": "false"},
    )
    body = {"messages": [{"role": "user", "content": "fail"}], "stream": stream}
    ours, theirs, _ = run_both(provider, proxy, oracle, body, reply)
    assert ours.status >= 400
    assert_same_json(ours, theirs)


def test_error_after_the_first_byte_matches(
    provider: tuple[ScriptedProvider, str], proxy: str, oracle: OracleLoop
) -> None:
    events = anthropic_events(TEXT, split=5)[:6]  # message_start ... a few text deltas
    events.append(
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    )
    body = {"messages": [{"role": "user", "content": "Capital of France?"}], "stream": True}
    ours, theirs, _ = run_both(provider, proxy, oracle, body, Scripted(sse(events), stream=True))
    assert ours.status == 200
    assert_same_events(ours, theirs)
    events = normalized_events(ours.body)
    assert events[0][1]["choices"][0]["delta"]["content"]  # text came before the error
    assert events[-1][1]["error"]["message"].endswith("Overloaded")


# Hypothesis: message lists the OpenAI format allows, with the parameters a client sets.
_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)
_USER_CONTENT = st.one_of(
    _TEXT,
    st.lists(st.builds(lambda t: {"type": "text", "text": t}, _TEXT), min_size=1, max_size=3),
)


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append(
            {"role": draw(st.sampled_from(["system", "developer"])), "content": draw(_TEXT)}
        )
    turns = draw(st.integers(min_value=0, max_value=3))
    for i in range(turns):
        messages.append({"role": "user", "content": draw(_USER_CONTENT)})
        if draw(st.booleans()):
            call_id = f"toolu_{i:02d}"
            args = json.dumps({"city": draw(_TEXT)})
            messages.append(
                {
                    "role": "assistant",
                    "content": draw(st.one_of(st.none(), _TEXT)),
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": args},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": call_id, "content": draw(_TEXT)})
            messages.append({"role": "assistant", "content": draw(_TEXT)})
        else:
            messages.append({"role": "assistant", "content": draw(_TEXT)})
    messages.append({"role": "user", "content": draw(_USER_CONTENT)})
    body: dict[str, Any] = {"messages": messages, "tools": TOOLS}
    for name, strategy in (
        ("max_tokens", st.integers(min_value=1, max_value=4096)),
        (
            "temperature",
            st.floats(min_value=0, max_value=1, allow_nan=False).map(lambda f: round(f, 2)),
        ),
        ("stop", st.lists(_TEXT, min_size=1, max_size=3)),
        ("stream", st.booleans()),
    ):
        if draw(st.booleans()):
            body[name] = draw(strategy)
    return body


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(body=conversations())
def test_generated_conversations_match(
    provider: tuple[ScriptedProvider, str], proxy: str, oracle: OracleLoop, body: dict[str, Any]
) -> None:
    if body.get("stream"):
        reply = Scripted(sse(anthropic_events(PARALLEL_TOOLS, split=4)), stream=True)
        ours, theirs, _ = run_both(provider, proxy, oracle, body, reply)
        assert_same_events(ours, theirs)
    else:
        ours, theirs, _ = run_both(
            provider, proxy, oracle, body, Scripted(json.dumps(PARALLEL_TOOLS).encode())
        )
        assert_same_json(ours, theirs)


def test_a_stream_cut_before_its_stop_reason_ends_in_an_error_not_a_made_up_stop(
    provider: tuple[ScriptedProvider, str], proxy: str, oracle: OracleLoop
) -> None:
    """The deliberate difference: litellm closes a cut stream with ``finish_reason: stop``;
    the proxy's last event is an error, so the client cannot take half a reply for one."""
    events = anthropic_events(TEXT, split=5)[:6]  # the provider closed after a few deltas
    body = {"messages": [{"role": "user", "content": "Capital of France?"}], "stream": True}
    ours, theirs, _ = run_both(provider, proxy, oracle, body, Scripted(sse(events), stream=True))
    mine, oracle_events = normalized_events(ours.body), normalized_events(theirs.body)
    # Equal up to the end: the same text deltas.
    assert mine[:-1] == oracle_events[:-2]
    assert oracle_events[-2][1]["choices"][0]["finish_reason"] == "stop"
    assert mine[-1][1]["error"]["message"] == "upstream stream ended without its final event"
    assert b"[DONE]" not in ours.body


_UNREADABLE_EVENT = ("message_delta", {"type": "message_delta"})  # no delta: litellm's KeyError


@pytest.mark.parametrize(
    "reply",
    [
        Scripted(b'{"type": "message", "role": "assistant"}'),
        Scripted(b"[]"),
        Scripted(sse([*anthropic_events(TEXT)[:1], _UNREADABLE_EVENT]), stream=True),
    ],
    ids=["json-without-content", "json-list", "stream-before-the-first-byte"],
)
def test_an_answer_litellm_cannot_read_is_the_providers_502(
    provider: tuple[ScriptedProvider, str], proxy: str, reply: Scripted
) -> None:
    """A 200 answer of another shape: litellm crashes reading it. The provider's fault,
    a 502 sent once; the same crash building the request is the client's 400, which
    would tell the client to change a request that was fine."""
    scripted, _ = provider
    scripted.reply = reply
    scripted.requests.clear()
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": reply.stream}
    ours = via_proxy(proxy, {**body, "model": "claude-sonnet-4.5"})
    assert ours.status == 502, ours
    error = json.loads(ours.body)["error"]
    assert error["message"].startswith("upstream reply could not be translated ("), error
    assert len(scripted.requests) == 1


def test_an_event_litellm_cannot_read_after_the_first_byte_is_an_error_event(
    provider: tuple[ScriptedProvider, str], proxy: str
) -> None:
    scripted, _ = provider
    scripted.reply = Scripted(
        sse([*anthropic_events(TEXT, split=5)[:6], _UNREADABLE_EVENT]), stream=True
    )
    body = {"messages": [{"role": "user", "content": "Capital of France?"}], "stream": True}
    ours = via_proxy(proxy, {**body, "model": "claude-sonnet-4.5"})
    events = normalized_events(ours.body)
    assert ours.status == 200
    assert events[0][1]["choices"][0]["delta"]["content"]  # text came before it
    assert events[-1][1]["error"]["message"].startswith("upstream reply could not be translated")
