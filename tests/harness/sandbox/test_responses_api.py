"""The sandbox's OpenAI Responses API, read by the real openai SDK (non-stream, stream,
a function call) over loopback, and its errors in the API's own format."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from tests.harness.sandbox.bodies import API_KEY, WEATHER_SCHEMA

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather",
    "parameters": WEATHER_SCHEMA,
}


@pytest.fixture
def client(sandbox_server: LoopbackServer, sandbox: SandboxControl) -> openai.OpenAI:
    # ``sandbox`` resets the shared sandbox first: a test before this one on the same worker
    # may have left it a fault rate (a stream here once met its 500).
    return openai.OpenAI(base_url=sandbox_server.url + "/v1", api_key=API_KEY, max_retries=0)


def test_a_text_response_as_the_sdk_reads_it(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-4o",
        instructions="Be brief.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Hello responses"}]}],
        max_output_tokens=200,
    )
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_") and response.model == "gpt-4o"
    (item,) = response.output
    assert isinstance(item, ResponseOutputMessage) and item.role == "assistant"
    assert 'You said: "Hello responses"' in response.output_text
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_the_stream_is_the_same_answer_in_typed_events(client: openai.OpenAI) -> None:
    plain = client.responses.create(model="gpt-4o", input="Stream me, please")
    events = list(client.responses.create(model="gpt-4o", input="Stream me, please", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 3 and "".join(deltas) == plain.output_text
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == plain.output_text and final.response.id == plain.id


def test_a_function_call_and_its_output(client: openai.OpenAI) -> None:
    called = client.responses.create(
        model="gpt-4o",
        input="What is the get_weather in Paris?",
        tools=[TOOL],  # type: ignore[list-item]
    )
    (call,) = called.output
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "get_weather"
    streamed = list(
        client.responses.create(
            model="gpt-4o",
            input="What is the get_weather in Paris?",
            tools=[TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    pieces = [e.delta for e in streamed if e.type == "response.function_call_arguments.delta"]
    assert "".join(pieces) == call.arguments
    answered = client.responses.create(
        model="gpt-4o",
        input=[
            {"role": "user", "content": "What is the get_weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[TOOL],  # type: ignore[list-item]
    )
    assert isinstance(answered.output[0], ResponseOutputMessage)
    assert "sunny" in answered.output_text


def test_errors_in_the_apis_format(sandbox_server: LoopbackServer, sandbox: SandboxControl) -> None:
    headers = {"authorization": f"Bearer {API_KEY}"}
    url = sandbox_server.url + "/v1/responses"
    missing = httpx.post(url, json={"model": "gpt-4o"}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "message": "Missing required parameter: 'input'.",
        "type": "invalid_request_error",
        "param": "input",
        "code": "missing_required_parameter",
    }
    low = httpx.post(
        url, json={"model": "gpt-4o", "input": "hi", "max_output_tokens": 8}, headers=headers
    )
    assert low.status_code == 400 and low.json()["error"]["param"] == "max_output_tokens"
    assert httpx.post(url, json={"model": "gpt-4o", "input": "hi"}).status_code == 401
