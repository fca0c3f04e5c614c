from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from harness.sandbox import SandboxSettings
from tests.harness.sandbox.bodies import WEATHER_SCHEMA, anthropic_body, anthropic_weather_tool
from tests.harness.sandbox.sse_frames import read_frames


async def _post(client: httpx.AsyncClient, body: Any, path: str = "/v1/messages") -> httpx.Response:
    return await client.post(path, json=body)


async def test_message_has_the_real_shape(client: httpx.AsyncClient) -> None:
    response = await _post(client, anthropic_body("Hello there sandbox"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_")
    message = response.json()
    assert set(message) == {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    }
    assert message["id"].startswith("msg_")
    assert (message["type"], message["role"], message["model"]) == (
        "message",
        "assistant",
        "sandbox-claude-sonnet",
    )
    assert message["stop_reason"] == "end_turn"
    assert message["stop_sequence"] is None
    [block] = message["content"]
    assert block["type"] == "text"
    assert block["text"].startswith('You said: "Hello there sandbox".')
    usage = message["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["cache_creation_input_tokens"] == 0 and usage["cache_read_input_tokens"] == 0


async def test_same_request_same_reply_but_new_request_id(client: httpx.AsyncClient) -> None:
    first = await _post(client, anthropic_body())
    second = await _post(client, anthropic_body())
    assert first.json() == second.json()
    assert first.headers["request-id"] != second.headers["request-id"]


async def test_stream_follows_the_real_event_sequence(client: httpx.AsyncClient) -> None:
    plain = (await _post(client, anthropic_body())).json()
    response = await _post(client, anthropic_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = read_frames(response.text)
    names = [f.event for f in frames]
    deltas = names.count("content_block_delta")
    assert deltas >= 3  # several words per chunk, several chunks
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for frame in frames:
        assert frame.json["type"] == frame.event
    start = frames[0].json["message"]
    assert start["id"] == plain["id"] and start["model"] == plain["model"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["input_tokens"] == plain["usage"]["input_tokens"]
    assert frames[1].json == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    text = "".join(f.json["delta"]["text"] for f in frames if f.event == "content_block_delta")
    assert all(
        f.json["delta"]["type"] == "text_delta" for f in frames if f.event == "content_block_delta"
    )
    assert text == plain["content"][0]["text"]
    assert frames[-3].json == {"type": "content_block_stop", "index": 0}
    assert frames[-2].json == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": plain["usage"]["output_tokens"]},
    }


async def test_tool_use_when_the_user_names_the_tool(client: httpx.AsyncClient) -> None:
    body = anthropic_body("Please call get_weather for Paris", tools=[anthropic_weather_tool()])
    message = (await _post(client, body)).json()
    assert message["stop_reason"] == "tool_use"
    [block] = message["content"]
    assert block["type"] == "tool_use" and block["name"] == "get_weather"
    assert block["id"].startswith("toolu_")
    jsonschema.validate(block["input"], WEATHER_SCHEMA)


async def test_tool_use_stream_sends_input_json_in_pieces(client: httpx.AsyncClient) -> None:
    body = anthropic_body("weather?", tools=[anthropic_weather_tool()], tool_choice={"type": "any"})
    plain = (await _post(client, body)).json()
    frames = read_frames((await _post(client, {**body, "stream": True})).text)
    start = frames[1].json["content_block"]
    assert start == {
        "type": "tool_use",
        "id": plain["content"][0]["id"],
        "name": "get_weather",
        "input": {},
    }
    assert frames[2].event == "ping"
    pieces = [f.json["delta"] for f in frames if f.event == "content_block_delta"]
    assert pieces[0] == {"type": "input_json_delta", "partial_json": ""}
    assert len(pieces) > 2
    assert json.loads("".join(p["partial_json"] for p in pieces)) == plain["content"][0]["input"]
    assert frames[-2].json["delta"]["stop_reason"] == "tool_use"


async def test_forced_tool_by_name(client: httpx.AsyncClient) -> None:
    tools = [anthropic_weather_tool(), {"name": "noop", "input_schema": {"type": "object"}}]
    body = anthropic_body("hi", tools=tools, tool_choice={"type": "tool", "name": "noop"})
    message = (await _post(client, body)).json()
    assert message["content"][0]["name"] == "noop"
    assert message["content"][0]["input"] == {}


async def test_tool_result_gets_a_text_reply_about_it(client: httpx.AsyncClient) -> None:
    body = anthropic_body(tools=[anthropic_weather_tool()], tool_choice={"type": "any"})
    body["messages"] = [
        {"role": "user", "content": "Weather in Paris? use get_weather"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny and 21C"}
            ],
        },
    ]
    message = (await _post(client, body)).json()
    assert message["stop_reason"] == "end_turn"
    assert message["content"][0]["text"].startswith(
        'The get_weather tool returned: "Sunny and 21C".'
    )


async def test_max_tokens_stop(client: httpx.AsyncClient) -> None:
    message = (await _post(client, anthropic_body(max_tokens=3))).json()
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"]["output_tokens"] == 3


async def test_count_tokens_matches_message_usage(client: httpx.AsyncClient) -> None:
    body = anthropic_body("count these words please", tools=[anthropic_weather_tool()])
    usage = (await _post(client, body)).json()["usage"]
    del body["max_tokens"]
    counted = await _post(client, body, "/v1/messages/count_tokens")
    assert counted.status_code == 200
    assert counted.json() == {"input_tokens": usage["input_tokens"]}


@pytest.mark.parametrize(
    "path",
    ["/v1/messages?beta=true", "/v3/api.anthropic.com/v1/messages", "/anthropic/v1/messages/"],
)
async def test_any_prefix_reaches_messages(client: httpx.AsyncClient, path: str) -> None:
    response = await _post(client, anthropic_body(), path)
    assert response.status_code == 200
    assert response.json()["type"] == "message"


async def test_claude_code_request_shape_is_accepted(client: httpx.AsyncClient) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "system", "content": "<system-reminder>be brief</system-reminder>"},
        ],
        "tools": [
            {
                "name": "Bash",
                "description": "run",
                "input_schema": WEATHER_SCHEMA,
                "defer_loading": True,
            }
        ],
        "metadata": {"user_id": json.dumps({"device_id": "abc", "session_id": "s1"})},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "high"},
        "temperature": 1,
    }
    response = await _post(client, body, "/v1/messages?beta=true")
    assert response.status_code == 200
    names = [f.event for f in read_frames(response.text)]
    assert names[0] == "message_start" and names[-1] == "message_stop"


def _error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert body["request_id"] == response.headers["request-id"]
    message: str = body["error"]["message"]
    return message


def _without(key: str) -> dict[str, Any]:
    body = anthropic_body()
    del body[key]
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_without("model"), "model: Field required"),
        (_without("messages"), "messages: Field required"),
        (_without("max_tokens"), "max_tokens: Field required"),
        ([1, 2], "Input should be a valid dictionary"),
        (anthropic_body(messages="hi"), "messages: Input should be a valid list"),
        (anthropic_body(messages=[]), "messages: at least one message is required"),
        (anthropic_body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (anthropic_body(max_tokens="10"), "max_tokens: Input should be a valid integer"),
        (anthropic_body(messages=[{"content": "x"}]), "messages.0.role: Field required"),
        (
            anthropic_body(messages=[{"role": "robot", "content": "x"}]),
            "messages.0.role: Input should be",
        ),
        (anthropic_body(messages=[{"role": "user"}]), "messages.0.content: Field required"),
        (
            anthropic_body(messages=[{"role": "user", "content": [{"text": "x"}]}]),
            "messages.0.content.0.type",
        ),
        (anthropic_body(tools={"name": "x"}), "tools: Input should be a valid list"),
        (anthropic_body(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (anthropic_body(stream="yes"), "stream: Input should be a valid boolean"),
    ],
)
async def test_validation_errors(client: httpx.AsyncClient, body: Any, message: str) -> None:
    assert _error(await _post(client, body), 400, "invalid_request_error").startswith(message)


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    assert "parsing the body" in _error(response, 400, "invalid_request_error")


async def test_count_tokens_does_not_need_max_tokens_but_needs_messages(
    client: httpx.AsyncClient,
) -> None:
    response = await _post(client, {"model": "m"}, "/v1/messages/count_tokens")
    assert _error(response, 400, "invalid_request_error") == "messages: Field required"


async def test_missing_api_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=anthropic_body(), headers={"x-api-key": ""})
    assert _error(response, 401, "authentication_error") == "x-api-key header is required"


async def test_bearer_token_is_an_api_key(client: httpx.AsyncClient) -> None:
    headers = {"x-api-key": "", "authorization": "Bearer sk-something-long-enough"}
    assert (
        await client.post("/v1/messages", json=anthropic_body(), headers=headers)
    ).status_code == 200


async def test_wrong_method_and_unknown_path(client: httpx.AsyncClient) -> None:
    _error(await client.get("/v1/messages"), 405, "invalid_request_error")
    _error(await client.post("/v1/messages/batches/x", json={}), 404, "not_found_error")


@pytest.mark.parametrize("settings", [SandboxSettings(nondeterministic=True, seed=1)])
async def test_nondeterministic_mode_varies_text_and_ids(client: httpx.AsyncClient) -> None:
    first, second = (
        (await _post(client, anthropic_body())).json(),
        (await _post(client, anthropic_body())).json(),
    )
    assert first["id"] != second["id"]
    assert first["content"][0]["text"] != second["content"][0]["text"]
    assert first["content"][0]["text"].startswith('You said: "Hello sandbox, how are you today?".')
