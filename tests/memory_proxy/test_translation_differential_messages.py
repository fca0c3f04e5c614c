"""Differential tests: Messages requests for an OpenAI model, through the proxy and
through ``litellm.anthropic_messages`` (its adapter to Chat Completions), one scripted
provider answering both. Equal client view (JSON, or SSE events one by one after ids
are normalized) and equal provider requests; see ``test_translation_differential`` for
the OpenAI-format direction.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.api_formats import ANTHROPIC
from tests.memory_proxy.differential_fixtures import GPT, MASTER_KEY, OPENAI_KEY
from tests.memory_proxy.scripted_provider import Scripted, ScriptedProvider, openai_chunks, sse
from tests.memory_proxy.translation_oracle import (
    ClientView,
    OracleLoop,
    assert_same_events,
    assert_same_json,
    oracle_json,
    oracle_stream,
)


def completion(
    content: str | None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish: str = "stop",
    **usage: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-differential",
        "object": "chat.completion",
        "created": 1_800_000_000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_differential",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40, **usage},
    }


def call(call_id: str, city: str) -> dict[str, Any]:
    arguments = json.dumps({"city": city})
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


TEXT = completion("Paris is the capital of France.")
PARALLEL_TOOLS = completion(None, [call("call_A", "Paris"), call("call_B", "Rome")], "tool_calls")
CACHED = completion(
    "From the cache.",
    prompt_tokens_details={"cached_tokens": 1024, "audio_tokens": 0},
    prompt_tokens=1100,
    total_tokens=1109,
)
LENGTH = completion("Cut", finish="length")

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]
IMAGE = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "text",
        {"messages": [{"role": "user", "content": "Capital of France?"}], "max_tokens": 64},
        TEXT,
    ),
    (
        "system-multi-turn-params",
        {
            "system": [{"type": "text", "text": "Answer briefly."}],
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
                {"role": "user", "content": "Capital of France?"},
            ],
            "max_tokens": 50,
            "temperature": 0.3,
            "stop_sequences": ["three"],
        },
        TEXT,
    ),
    (
        "parallel-tool-calls",
        {
            "messages": [{"role": "user", "content": "Weather in Paris and Rome?"}],
            "tools": TOOLS,
            "tool_choice": {"type": "auto"},
            "max_tokens": 100,
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
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_A",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_A", "content": "Sunny"}
                    ],
                },
            ],
            "tools": TOOLS,
            "max_tokens": 100,
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
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": IMAGE},
                        },
                    ],
                }
            ],
            "max_tokens": 64,
        },
        TEXT,
    ),
    ("cache-usage", {"messages": [{"role": "user", "content": "Again"}], "max_tokens": 64}, CACHED),
    ("max-tokens", {"messages": [{"role": "user", "content": "Long"}], "max_tokens": 3}, LENGTH),
]


def via_proxy(proxy: str, body: dict[str, Any]) -> ClientView:
    with httpx.Client(timeout=30) as client:
        reply = client.post(
            proxy + "/v1/messages",
            json={**body, "model": GPT},
            headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        )
    return ClientView(reply.status_code, reply.content)


def via_litellm(oracle: OracleLoop, url: str, body: dict[str, Any]) -> ClientView:
    """What the proxy's earlier path (``litellm.anthropic_messages``) gave the client."""
    kwargs = {
        **body,
        "model": f"openai/{GPT}",
        "api_base": url + "/v1",
        "api_key": OPENAI_KEY,
        "num_retries": 0,
        "custom_llm_provider": "openai",
    }

    def start() -> Any:
        return litellm.anthropic_messages(**kwargs)

    if body.get("stream"):
        return oracle.run(oracle_stream(start, _as_bytes, ANTHROPIC))
    return oracle.run(oracle_json(start, _as_json, ANTHROPIC))


def _as_bytes(item: Any) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode()


def _as_json(result: Any) -> bytes:
    plain = result.model_dump(exclude_none=True) if hasattr(result, "model_dump") else result
    return json.dumps(plain).encode()


def run_both(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    body: dict[str, Any],
    reply: Scripted,
) -> tuple[ClientView, ClientView]:
    scripted, url = provider
    scripted.reply = reply
    scripted.requests.clear()
    ours = via_proxy(proxy, body)
    sent_ours = [r[2] for r in scripted.requests]
    scripted.requests.clear()
    theirs = via_litellm(oracle, url, body)
    sent_theirs = [r[2] for r in scripted.requests]
    assert sent_ours == sent_theirs, "the provider was sent something else"
    assert all(r[0] == "/v1/chat/completions" for r in scripted.requests)
    return ours, theirs


@pytest.mark.parametrize(
    ("body", "answer"), [(b, a) for _, b, a in CASES], ids=[c[0] for c in CASES]
)
def test_non_stream_matches_anthropic_messages(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    body: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    ours, theirs = run_both(provider, proxy, oracle, body, Scripted(json.dumps(answer).encode()))
    assert ours.status == 200 and json.loads(ours.body)["type"] == "message"
    assert_same_json(ours, theirs)


@pytest.mark.parametrize(
    ("body", "answer"), [(b, a) for _, b, a in CASES], ids=[c[0] for c in CASES]
)
def test_stream_matches_anthropic_messages_event_by_event(
    provider: tuple[ScriptedProvider, str],
    proxy: str,
    oracle: OracleLoop,
    body: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    reply = Scripted(sse(openai_chunks(answer, split=4)), stream=True)
    ours, theirs = run_both(provider, proxy, oracle, {**body, "stream": True}, reply)
    assert ours.status == 200 and b"event: message_stop" in ours.body
    assert_same_events(ours, theirs)


def openai_error(kind: str, text: str) -> bytes:
    return json.dumps(
        {"error": {"message": text, "type": kind, "param": None, "code": None}}
    ).encode()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "invalid_api_key"),
        (429, "rate_limit_exceeded"),
        (500, "server_error"),
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
    reply = Scripted(
        openai_error(kind, f"scripted {kind}"), status=status, headers={"x-should-retry": "false"}
    )
    body = {"messages": [{"role": "user", "content": "fail"}], "max_tokens": 10, "stream": stream}
    ours, theirs = run_both(provider, proxy, oracle, body, reply)
    assert ours.status >= 400
    assert_same_json(ours, theirs)


def test_error_after_the_first_byte_matches(
    provider: tuple[ScriptedProvider, str], proxy: str, oracle: OracleLoop
) -> None:
    chunks = openai_chunks(TEXT, split=4)[:4]
    chunks.append((None, {"error": {"message": "The server had an error", "type": "server_error"}}))
    body = {"messages": [{"role": "user", "content": "Capital?"}], "max_tokens": 64, "stream": True}
    ours, theirs = run_both(provider, proxy, oracle, body, Scripted(sse(chunks), stream=True))
    assert ours.status == 200 and b"event: error" in ours.body
    assert_same_events(ours, theirs)


_UNTRANSLATABLE = "upstream reply could not be translated ("


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b'{"choices": [{"index": 0, "message": null}]}', _UNTRANSLATABLE),
        (b"[]", _UNTRANSLATABLE),
        # litellm's own message for it carries a traceback and the reply: neither is sent.
        (b"null", "upstream call failed: Invalid response object"),
    ],
    ids=["choice-without-message", "list", "null"],
)
def test_an_answer_litellm_cannot_read_is_the_providers_502(
    provider: tuple[ScriptedProvider, str], proxy: str, answer: bytes, message: str
) -> None:
    """A 200 answer of another shape is the provider's fault: a 502, sent once, never the
    400 that would tell the client to change its request."""
    scripted, _ = provider
    scripted.reply = Scripted(answer)
    scripted.requests.clear()
    ours = via_proxy(proxy, {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10})
    assert ours.status == 502, ours
    error = json.loads(ours.body)["error"]
    assert error["message"].startswith(message), error
    assert "Traceback" not in error["message"] and "received_args" not in error["message"]
    assert len(scripted.requests) == 1


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
)


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for i in range(draw(st.integers(min_value=0, max_value=3))):
        messages.append({"role": "user", "content": draw(_TEXT)})
        if draw(st.booleans()):
            tool_id = f"toolu_{i:02d}"
            tool_use = {
                "type": "tool_use",
                "id": tool_id,
                "name": "get_weather",
                "input": {"city": draw(_TEXT)},
            }
            messages.append({"role": "assistant", "content": [tool_use]})
            result = {"type": "tool_result", "tool_use_id": tool_id, "content": draw(_TEXT)}
            messages.append({"role": "user", "content": [result]})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": draw(_TEXT)}]})
    messages.append({"role": "user", "content": draw(_TEXT)})
    body: dict[str, Any] = {
        "messages": messages,
        "tools": TOOLS,
        "max_tokens": draw(st.integers(min_value=1, max_value=4096)),
    }
    if draw(st.booleans()):
        body["system"] = draw(_TEXT)
    if draw(st.booleans()):
        body["temperature"] = round(draw(st.floats(min_value=0, max_value=1, allow_nan=False)), 2)
    if draw(st.booleans()):
        body["stop_sequences"] = draw(st.lists(_TEXT, min_size=1, max_size=3))
    body["stream"] = draw(st.booleans())
    return body


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(body=conversations())
def test_generated_conversations_match(
    provider: tuple[ScriptedProvider, str], proxy: str, oracle: OracleLoop, body: dict[str, Any]
) -> None:
    if body["stream"]:
        reply = Scripted(sse(openai_chunks(PARALLEL_TOOLS, split=3)), stream=True)
        ours, theirs = run_both(provider, proxy, oracle, body, reply)
        assert_same_events(ours, theirs)
    else:
        ours, theirs = run_both(
            provider, proxy, oracle, body, Scripted(json.dumps(PARALLEL_TOOLS).encode())
        )
        assert_same_json(ours, theirs)
