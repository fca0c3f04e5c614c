from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from tests.harness.sandbox.bodies import WEATHER_SCHEMA, openai_body, openai_weather_tool
from tests.harness.sandbox.sse_frames import read_frames


async def _post(
    client: httpx.AsyncClient, body: Any, path: str = "/v1/chat/completions"
) -> httpx.Response:
    return await client.post(path, json=body)


async def test_completion_has_the_real_shape(client: httpx.AsyncClient) -> None:
    response = await _post(client, openai_body("Hello there sandbox"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    completion = response.json()
    assert completion["id"].startswith("chatcmpl-")
    assert completion["object"] == "chat.completion"
    assert isinstance(completion["created"], int)
    assert completion["model"] == "sandbox-gpt-4o"
    assert completion["system_fingerprint"].startswith("fp_")
    [choice] = completion["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    message = choice["message"]
    assert message["role"] == "assistant" and "tool_calls" not in message
    assert message["content"].startswith('You said: "Hello there sandbox".')
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


async def test_same_request_same_reply(client: httpx.AsyncClient) -> None:
    first, second = await _post(client, openai_body()), await _post(client, openai_body())
    assert first.json() == second.json()
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("include_usage", [True, False])
async def test_stream_chunks(client: httpx.AsyncClient, include_usage: bool) -> None:
    plain = (await _post(client, openai_body())).json()
    body = openai_body(stream=True, stream_options={"include_usage": include_usage})
    response = await _post(client, body)
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = read_frames(response.text)
    assert all(f.event is None for f in frames)
    assert frames[-1].data == "[DONE]"
    chunks = [f.json for f in frames[:-1]]
    assert {c["id"] for c in chunks} == {plain["id"]}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    if include_usage:
        usage_chunk = chunks.pop()
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == plain["usage"]
        assert all(c["usage"] is None for c in chunks)
    else:
        assert all("usage" not in c for c in chunks)
    first, *middle, last = [c["choices"][0] for c in chunks]
    assert first["delta"]["role"] == "assistant" and first["delta"]["content"] == ""
    assert len(middle) >= 3
    assert all(c["finish_reason"] is None for c in [first, *middle])
    assert (
        "".join(c["delta"]["content"] for c in middle) == plain["choices"][0]["message"]["content"]
    )
    assert last == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}


async def test_tool_call_when_required(client: httpx.AsyncClient) -> None:
    body = openai_body("weather?", tools=[openai_weather_tool()], tool_choice="required")
    choice = (await _post(client, body)).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER_SCHEMA)


async def test_tool_call_stream_sends_id_and_name_then_argument_pieces(
    client: httpx.AsyncClient,
) -> None:
    body = openai_body("use get_weather", tools=[openai_weather_tool()])
    plain_call = (await _post(client, body)).json()["choices"][0]["message"]["tool_calls"][0]
    frames = read_frames((await _post(client, {**body, "stream": True})).text)
    deltas = [f.json["choices"][0]["delta"] for f in frames[:-1]]
    opening = deltas[0]["tool_calls"][0]
    assert deltas[0]["role"] == "assistant"
    assert opening == {
        "index": 0,
        "id": plain_call["id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1]]
    assert len(pieces) >= 2
    assert all("id" not in d["tool_calls"][0] for d in deltas[1:-1])
    assert "".join(pieces) == plain_call["function"]["arguments"]
    assert frames[-2].json["choices"][0]["finish_reason"] == "tool_calls"


async def test_forced_function_by_name(client: httpx.AsyncClient) -> None:
    tools = [openai_weather_tool(), {"type": "function", "function": {"name": "noop"}}]
    body = openai_body(
        "hi", tools=tools, tool_choice={"type": "function", "function": {"name": "noop"}}
    )
    call = (await _post(client, body)).json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "noop", "arguments": "{}"}


async def test_tool_message_gets_a_text_reply_about_it(client: httpx.AsyncClient) -> None:
    body = openai_body(tools=[openai_weather_tool()], tool_choice="required")
    body["messages"] = [
        {"role": "system", "content": "be helpful"},
        {"role": "user", "content": "use get_weather for Paris"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Rainy, 12C"},
    ]
    choice = (await _post(client, body)).json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith('The get_weather tool returned: "Rainy, 12C".')


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
async def test_length_finish(client: httpx.AsyncClient, key: str) -> None:
    body = openai_body()
    body[key] = 2
    completion = (await _post(client, body)).json()
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    "path", ["/chat/completions", "/openai/v1/chat/completions", "/v1/chat/completions?x=1"]
)
async def test_any_prefix_reaches_chat_completions(client: httpx.AsyncClient, path: str) -> None:
    assert (await _post(client, openai_body(), path)).json()["object"] == "chat.completion"


@pytest.mark.parametrize("path", ["/v1/models", "/models", "/v3/api.openai.com/v1/models"])
async def test_models_list(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    listing = response.json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    assert "sandbox-gpt-4o" in ids and "sandbox-claude-sonnet" in ids
    for model in listing["data"]:
        assert model["object"] == "model" and model["owned_by"] == "sandbox"
        assert isinstance(model["created"], int)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "param", "code", "message"),
    [
        ({"messages": []}, None, None, "you must provide a model parameter"),
        (
            {"model": "m"},
            "messages",
            "missing_required_parameter",
            "Missing required parameter: 'messages'.",
        ),
        (openai_body(messages="hi"), "messages", "invalid_type", "Invalid type for 'messages'"),
        (openai_body(messages=[]), "messages", "empty_array", "Invalid 'messages': empty array."),
        (
            openai_body(messages=["hi"]),
            "messages[0]",
            "invalid_type",
            "Invalid type for 'messages[0]'",
        ),
        (
            openai_body(messages=[{"content": "x"}]),
            "messages[0].role",
            "missing_required_parameter",
            "Missing",
        ),
        (
            openai_body(messages=[{"role": "bot", "content": "x"}]),
            "messages[0].role",
            "invalid_value",
            "Invalid value: 'bot'",
        ),
        (
            openai_body(messages=[{"role": "tool", "content": "x"}]),
            "messages[0].tool_call_id",
            "missing_required_parameter",
            "Missing",
        ),
        (
            openai_body(messages=[{"role": "user"}]),
            "messages[0].content",
            "missing_required_parameter",
            "Missing",
        ),
        (
            openai_body(max_tokens=0),
            "max_tokens",
            "integer_below_min_value",
            "Invalid 'max_tokens'",
        ),
        (openai_body(stream="yes"), "stream", "invalid_type", "Invalid type for 'stream'"),
        (
            openai_body(tools=[{"type": "function"}]),
            "tools[0].function",
            "missing_required_parameter",
            "Missing",
        ),
        (
            openai_body(tool_choice="sometimes"),
            "tool_choice",
            "invalid_value",
            "Invalid value: 'sometimes'",
        ),
    ],
)
async def test_validation_errors(
    client: httpx.AsyncClient, body: Any, param: str | None, code: str | None, message: str
) -> None:
    error = _error(await _post(client, body), 400)
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"].startswith(message)


async def test_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", content=b"not json")
    assert "could not parse the JSON body" in _error(response, 400)["message"]


async def test_missing_api_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json=openai_body(), headers={"x-api-key": ""}
    )
    error = _error(response, 401)
    assert error["type"] == "invalid_request_error"
    assert "didn't provide an API key" in error["message"]
    headers = {"x-api-key": "", "authorization": "Bearer "}
    assert (
        await client.post("/v1/chat/completions", json=openai_body(), headers=headers)
    ).status_code == 401


async def test_unknown_path_and_method(client: httpx.AsyncClient) -> None:
    assert (
        _error(await client.post("/v1/embeddings", json={}), 404)["type"] == "invalid_request_error"
    )
    _error(await client.post("/v1/models", json={}), 405)
