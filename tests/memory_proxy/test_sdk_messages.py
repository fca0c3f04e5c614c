"""The SDK proxy's Anthropic Messages endpoint: the API Claude Code speaks."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from tests.conftest import MASTER_KEY

CLAUDE_CODE_TURN = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "claude_code_turn.json").read_text()
)
AUTH = {"x-api-key": MASTER_KEY}


@pytest.fixture
def client(sdk_proxy: LoopbackServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sdk_proxy.url, api_key=MASTER_KEY, max_retries=0)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def parse_sse(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_non_stream(client: anthropic.Anthropic, sandbox: SandboxControl) -> None:
    reply = client.messages.create(
        model="claude-sonnet-4.5", max_tokens=200, messages=user("Hello from the anthropic SDK")
    )
    assert reply.type == "message" and reply.role == "assistant"
    assert reply.stop_reason == "end_turn"
    assert "Hello" in reply.content[0].text  # type: ignore[union-attr]
    assert reply.usage.output_tokens > 0
    (upstream,) = sandbox.api_requests()
    assert upstream["path"] == "/v3/api.anthropic.com/v1/messages"
    assert upstream["headers"]["x-sm-user-id"] == "anthropic-sdk"
    assert upstream["credentials"]["x-supermemory-api-key"]["present"]
    assert upstream["body"]["model"] == "claude-sonnet-4-5-20250929"


def test_stream(client: anthropic.Anthropic, sandbox: SandboxControl) -> None:
    with client.messages.stream(
        model="claude-sonnet-4.5", max_tokens=200, messages=user("Stream to me")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "Stream" in text
    assert final.stop_reason == "end_turn"
    (upstream,) = sandbox.settled_api_requests()
    assert upstream["body"]["stream"] is True and upstream["completed"] is True


def test_tool_round_trip(client: anthropic.Anthropic, sandbox: SandboxControl) -> None:
    tools = [
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
    messages = user("Call get_weather for Oslo")
    with client.messages.stream(
        model="claude-sonnet-4.5",
        max_tokens=200,
        messages=messages,
        tools=tools,  # type: ignore[arg-type]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and "city" in call.input  # type: ignore[operator]
    follow_up = client.messages.create(
        model="claude-sonnet-4.5",
        max_tokens=200,
        tools=tools,  # type: ignore[arg-type]
        messages=[
            *messages,
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "-3C, snow"},
                ],
            },
        ],
    )
    assert follow_up.stop_reason == "end_turn"
    sent = sandbox.api_requests()[-1]["body"]
    assert sent["messages"][-1]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": call.id,
        "content": "-3C, snow",
    }
    assert sent["messages"][-2]["content"][-1]["type"] == "tool_use"


def test_body_reaches_upstream_as_sent(sdk_proxy: LoopbackServer, sandbox: SandboxControl) -> None:
    """Unknown fields, a role:system message, cache_control, metadata as a JSON string:
    the sandbox receives exactly what the client sent, but for the model id."""
    body = copy.deepcopy(CLAUDE_CODE_TURN["body"])
    body["stream"] = False
    # litellm rewrites a legacy "enabled" thinking block to "adaptive" for the models
    # it knows reject it; this model accepts it, so it must pass untouched.
    reply = httpx.post(
        sdk_proxy.url + "/v1/messages?beta=true",
        json={**body, "model": "claude-sonnet-4.5"},
        headers={**CLAUDE_CODE_TURN["headers"], **AUTH},
    )
    assert reply.status_code == 200, reply.text
    (upstream,) = sandbox.api_requests()
    received = upstream["body"]
    assert received.pop("model") == "claude-sonnet-4-5-20250929"
    expected = {k: v for k, v in body.items() if k != "model"}
    assert received == expected


def test_claude_code_turn_streamed_event_by_event(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    turn = CLAUDE_CODE_TURN
    with httpx.stream(
        "POST", sdk_proxy.url + turn["path"], json=turn["body"], headers={**turn["headers"], **AUTH}
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(list(reply.iter_lines()))
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names[1] == "content_block_start" and "ping" in names
    assert names[-2] == "message_delta"
    for name, data in events:
        assert data["type"] == name  # every event's data names its own type
    # The prompt names the Read tool: the sandbox answers with a tool_use block.
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    tool = next(b for b in starts if b["type"] == "tool_use")
    assert tool["name"] == "Read"
    partial = "".join(
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert "file_path" in json.loads(partial)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"

    (upstream,) = sandbox.api_requests()
    headers = upstream["headers"]
    assert upstream["query"] == "beta=true" or upstream["path"].endswith("/v1/messages")
    assert headers["x-sm-user-id"] == "claude-code"  # its own rule, not the default
    assert headers["x-sm-conversation-id"] == turn["headers"]["x-claude-code-session-id"]
    assert headers["anthropic-beta"] == turn["headers"]["anthropic-beta"]
    assert headers["anthropic-version"] == "2023-06-01"
    assert MASTER_KEY not in json.dumps(upstream)
    assert upstream["credentials"]["x-api-key"]["present"]  # the deployment's key


def test_claude_code_model_ids_route_through_the_wildcard(
    client: anthropic.Anthropic, sandbox: SandboxControl
) -> None:
    for model in ("claude-opus-5-5", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"):
        client.messages.create(model=model, max_tokens=50, messages=user("hi"))
    sent = [r["body"]["model"] for r in sandbox.api_requests()]
    assert sent == ["claude-opus-5-5", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]


def test_first_event_before_upstream_finishes(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 200,
        "stream": True,
        "messages": user("[sandbox:stream_delay_ms=150] take your time"),
    }
    started = time.perf_counter()
    arrivals = []
    with httpx.stream("POST", sdk_proxy.url + "/v1/messages", json=body, headers=AUTH) as reply:
        for line in reply.iter_lines():
            if line.startswith("event: "):
                arrivals.append(time.perf_counter() - started)
    assert len(arrivals) >= 6
    # Events are relayed as they come: the first arrives at least four upstream
    # inter-event delays before the last one (a buffering proxy would deliver all at once).
    assert arrivals[-1] - arrivals[0] > 4 * 0.150


def test_openai_model_through_messages(
    client: anthropic.Anthropic, sandbox: SandboxControl
) -> None:
    reply = client.messages.create(model="gpt-4o", max_tokens=300, messages=user("Hi GPT"))
    assert reply.content[0].type == "text" and "GPT" in reply.content[0].text
    with client.messages.stream(model="gpt-4o", max_tokens=300, messages=user("Hi GPT")) as s:
        streamed = s.get_final_message()
    assert streamed.content[0].type == "text" and streamed.content[0].text
    paths = [r["path"] for r in sandbox.api_requests()]
    assert paths == ["/v3/api.openai.com/v1/chat/completions"] * 2


def test_count_tokens(sdk_proxy: LoopbackServer, sandbox: SandboxControl) -> None:
    body = {"model": "claude-opus-5-5", "messages": user("count these tokens please")}
    reply = httpx.post(sdk_proxy.url + "/v1/messages/count_tokens", json=body, headers=AUTH)
    assert reply.status_code == 200 and reply.json()["input_tokens"] > 0
    (upstream,) = sandbox.api_requests()
    assert upstream["path"] == "/v3/api.anthropic.com/v1/messages/count_tokens"
    assert upstream["body"]["model"] == "claude-opus-5-5"
    local = httpx.post(
        sdk_proxy.url + "/v1/messages/count_tokens", json={**body, "model": "gpt-4o"}, headers=AUTH
    )
    assert local.status_code == 200 and local.json()["input_tokens"] > 0
    assert len(sandbox.api_requests()) == 1  # estimated locally, not sent


def anthropic_error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert body["type"] == "error"
    assert set(body["error"]) == {"type", "message"}
    return dict(body["error"])


@pytest.mark.parametrize(
    ("content", "headers", "status", "error_type", "fragment"),
    [
        (b"{oops", AUTH, 400, "invalid_request_error", "not valid JSON"),
        (
            json.dumps({"model": "claude-sonnet-4.5", "messages": user("x")}),
            AUTH,
            400,
            "invalid_request_error",
            "max_tokens: field required",
        ),
        (
            json.dumps({"model": "claude-sonnet-4.5", "max_tokens": 5}),
            AUTH,
            400,
            "invalid_request_error",
            "messages: field required",
        ),
        (
            json.dumps({"model": "claude-sonnet-4.5", "max_tokens": "5", "messages": user("x")}),
            AUTH,
            400,
            "invalid_request_error",
            "max_tokens: expected an integer",
        ),
        (
            json.dumps({"model": "gemini-pro", "max_tokens": 5, "messages": user("x")}),
            AUTH,
            404,
            "not_found_error",
            "claude-sonnet-4.5",
        ),
        (
            json.dumps({"model": "claude-sonnet-4.5", "max_tokens": 5, "messages": user("x")}),
            {},
            401,
            "authentication_error",
            "missing API key",
        ),
        (
            json.dumps({"model": "claude-sonnet-4.5", "max_tokens": 5, "messages": user("x")}),
            {"x-api-key": "nope"},
            401,
            "authentication_error",
            "invalid API key",
        ),
        (
            json.dumps({"model": "claude-sonnet-4.5", "max_tokens": 5, "messages": user("x")}),
            {"authorization": "Bearer nope"},
            401,
            "authentication_error",
            "invalid API key",
        ),
    ],
)
def test_errors_in_anthropic_format(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    content: str | bytes,
    headers: dict[str, str],
    status: int,
    error_type: str,
    fragment: str,
) -> None:
    reply = httpx.post(
        sdk_proxy.url + "/v1/messages",
        content=content,
        headers={"content-type": "application/json", **headers},
    )
    assert reply.status_code == status, reply.text
    error = anthropic_error(reply)
    assert error["type"] == error_type
    assert fragment in error["message"]
    assert sandbox.api_requests() == []


@pytest.mark.parametrize(
    ("directive", "status", "error_type"),
    [
        ("[sandbox:status=429]", 429, "rate_limit_error"),
        ("[sandbox:status=503]", 503, "overloaded_error"),
        # A pass-through path: the provider's own status, not the proxy's 502.
        ("[sandbox:status=500]", 500, "api_error"),
        ("[sandbox:status=529]", 529, "overloaded_error"),
        ("[sandbox:status=400]", 400, "invalid_request_error"),
    ],
)
def test_upstream_errors_in_anthropic_format(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    directive: str,
    status: int,
    error_type: str,
) -> None:
    for stream in (False, True):
        body = {
            "model": "claude-sonnet-4.5",
            "max_tokens": 5,
            "messages": user(directive),
            "stream": stream,
        }
        reply = httpx.post(sdk_proxy.url + "/v1/messages", json=body, headers=AUTH)
        assert reply.status_code == status, reply.text
        assert anthropic_error(reply)["type"] == error_type


def test_stream_failure_after_first_event_is_an_error_event(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    for directive in ("[sandbox:cut_after=4]", "[sandbox:stream_error=4]"):
        body = {
            "model": "claude-sonnet-4.5",
            "max_tokens": 300,
            "stream": True,
            "messages": user(f"{directive} a long reply please"),
        }
        with httpx.stream("POST", sdk_proxy.url + "/v1/messages", json=body, headers=AUTH) as r:
            assert r.status_code == 200
            events = parse_sse(list(r.iter_lines()))
        names = [n for n, _ in events]
        assert names[0] == "message_start"
        assert names[-1] == "error", names
        assert "message_stop" not in names
        assert names.count("error") == 1
        assert events[-1][1]["error"]["type"] in ("api_error", "overloaded_error")


_NO_SERVER_IMPORT = """
import sys
import httpx
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from harness.loopback import LoopbackServer
with LoopbackServer(create_app(load_config(sys.argv[1]))) as proxy:
    reply = httpx.post(
        proxy.url + "/v1/messages",
        json={"model": "gpt-4o", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": sys.argv[2]},
        timeout=60,
    )
print(reply.status_code, "litellm.proxy.proxy_server" in sys.modules)
"""


@pytest.mark.slow
def test_messages_for_other_providers_do_not_load_the_litellm_server(
    sandbox_config_path: Path, sandbox: Any
) -> None:
    """litellm's adapter would import the whole LiteLLM server (~5 s on the event loop)."""
    result = subprocess.run(
        [sys.executable, "-c", _NO_SERVER_IMPORT, str(sandbox_config_path), MASTER_KEY],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **LITELLM_OFFLINE_ENV},
        check=False,
    )
    assert result.stdout.split() == ["200", "False"], result.stderr[-2000:]
