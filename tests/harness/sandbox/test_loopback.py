"""The sandbox on a real uvicorn server, checked by the real SDKs and raw sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox import create_app
from tests.harness.sandbox.bodies import (
    API_KEY,
    WEATHER_SCHEMA,
    anthropic_body,
    anthropic_weather_tool,
    openai_body,
    openai_weather_tool,
)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(create_app()) as srv:
        yield srv


@pytest.fixture
def url(server: LoopbackServer) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url


@pytest.fixture
def http(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, headers={"x-api-key": API_KEY}, timeout=10) as client:
        yield client


def _last_capture(url: str) -> dict[str, Any]:
    record: dict[str, Any] = httpx.get(f"{url}/_sandbox/requests").json()["requests"][-1]
    return record


def _wait_for_outcome(url: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = _last_capture(url)
        if record["outcome"] is not None or time.monotonic() > deadline:
            return record
        time.sleep(0.02)


def test_anthropic_sdk_parses_messages_and_streams(url: str) -> None:
    with anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0) as client:
        kwargs: dict[str, Any] = {
            "model": "sandbox-claude-sonnet",
            "max_tokens": 512,
            "messages": [{"role": "user", "content": "Hello from the SDK"}],
        }
        message = client.messages.create(**kwargs)
        with client.messages.stream(**kwargs) as stream:
            texts = list(stream.text_stream)
            final = stream.get_final_message()
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith('You said: "Hello from the SDK".')
    assert len(texts) >= 3 and "".join(texts) == message.content[0].text
    assert final.model_dump() == message.model_dump()


def test_anthropic_sdk_through_the_memory_router_prefix_with_tools(url: str) -> None:
    router = f"{url}/v3/api.anthropic.com"
    with anthropic.Anthropic(base_url=router, api_key=API_KEY, max_retries=0) as client:
        with client.messages.stream(
            model="sandbox-claude-haiku",
            max_tokens=512,
            messages=[{"role": "user", "content": "check get_weather please"}],
            tools=[anthropic_weather_tool()],  # type: ignore[list-item]
        ) as stream:
            final = stream.get_final_message()
        counted = client.messages.count_tokens(
            model="sandbox-claude-haiku",
            messages=[{"role": "user", "content": "check get_weather please"}],
        )
    assert final.stop_reason == "tool_use"
    [block] = final.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "sandbox city", "unit": "celsius", "days": 1}
    assert counted.input_tokens > 0
    assert _last_capture(url)["path"] == "/v3/api.anthropic.com/v1/messages/count_tokens"


def test_openai_sdk_parses_completions_and_streams(url: str) -> None:
    with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as client:
        messages: Any = [{"role": "user", "content": "Hello from OpenAI"}]
        completion = client.chat.completions.create(model="sandbox-gpt-4o", messages=messages)
        chunks = list(
            client.chat.completions.create(
                model="sandbox-gpt-4o",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        tools: Any = [openai_weather_tool()]
        tool_chunks = list(
            client.chat.completions.create(
                model="sandbox-gpt-4o",
                messages=[{"role": "user", "content": "use get_weather"}],
                tools=tools,
                stream=True,
            )
        )
        models = client.models.list()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage == completion.usage
    arguments = "".join(
        call.function.arguments or ""
        for c in tool_chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or []
        if call.function is not None
    )
    assert json.loads(arguments)["unit"] in WEATHER_SCHEMA["properties"]["unit"]["enum"]
    assert tool_chunks[-1].choices[0].finish_reason == "tool_calls"
    assert "sandbox-gpt-4o" in [m.id for m in models]


def test_sdks_map_error_bodies_to_their_exceptions(url: str) -> None:
    with anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0) as client:
        with pytest.raises(anthropic.RateLimitError) as limited:
            client.messages.create(
                model="m",
                max_tokens=5,
                messages=[{"role": "user", "content": "[sandbox:status=429]"}],
            )
        with pytest.raises(anthropic.BadRequestError, match="max_tokens: Input should be"):
            client.messages.create(
                model="m", max_tokens=0, messages=[{"role": "user", "content": "x"}]
            )
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as oai:
        with pytest.raises(openai.RateLimitError) as oai_limited:
            oai.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "[sandbox:status=429]"}]
            )
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "[sandbox:status=503]"}]
            )
    assert oai_limited.value.code == "rate_limit_exceeded"


def test_sdks_raise_on_mid_stream_error_events(url: str) -> None:
    content = "[sandbox:stream_error=4]"
    with anthropic.Anthropic(base_url=url, api_key=API_KEY, max_retries=0) as client:
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            with client.messages.stream(
                model="m", max_tokens=50, messages=[{"role": "user", "content": content}]
            ) as stream:
                stream.get_final_message()
    with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as oai:
        with pytest.raises(openai.APIError, match="overloaded"):
            list(
                oai.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": content}], stream=True
                )
            )


def _timed_events(http: httpx.Client, body: dict[str, Any]) -> list[tuple[float, str]]:
    """(seconds since the request, line) for each ``data:`` line as it arrives."""
    started = time.monotonic()
    arrivals = []
    with http.stream("POST", "/v1/messages", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.monotonic() - started, line))
    return arrivals


def test_stream_delay_spreads_events_over_time(http: httpx.Client) -> None:
    arrivals = _timed_events(http, anthropic_body("[sandbox:stream_delay_ms=30]", stream=True))
    first, last = arrivals[0][0], arrivals[-1][0]
    gaps = len(arrivals) - 1
    assert gaps >= 6
    assert last - first >= 0.03 * gaps * 0.8
    assert first < 0.03 * gaps / 2  # the first event is not held back until the end


def test_ttft_delays_only_the_first_content_delta(http: httpx.Client) -> None:
    arrivals = _timed_events(http, anthropic_body("[sandbox:ttft_ms=250]", stream=True))
    kinds = [json.loads(line[6:])["type"] for _, line in arrivals]
    first_delta = kinds.index("content_block_delta")
    assert arrivals[first_delta][0] - arrivals[first_delta - 1][0] >= 0.2
    assert arrivals[-1][0] - arrivals[first_delta][0] < 0.2


def test_cut_after_drops_the_connection_mid_stream(http: httpx.Client, url: str) -> None:
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream(
            "POST", "/v1/messages", json=anthropic_body("[sandbox:cut_after=3]", stream=True)
        ) as response:
            assert response.status_code == 200
            lines.extend(line for line in response.iter_lines() if line.startswith("event: "))
    assert lines == ["event: message_start", "event: content_block_start", "event: ping"]
    record = _wait_for_outcome(url)
    assert (record["outcome"], record["completed"]) == ("cut", False)
    assert "cut_after=3 (directive)" in record["faults"]


def test_stall_after_goes_silent_with_the_connection_open(http: httpx.Client, url: str) -> None:
    lines: list[str] = []
    body = anthropic_body("[sandbox:stall_after=3]", stream=True)
    with pytest.raises(httpx.ReadTimeout):
        with http.stream("POST", "/v1/messages", json=body, timeout=0.5) as response:
            assert response.status_code == 200
            lines.extend(line for line in response.iter_lines() if line.startswith("event: "))
    assert lines == ["event: message_start", "event: content_block_start", "event: ping"]
    record = _wait_for_outcome(url)
    assert (record["outcome"], record["completed"]) == ("disconnected", False)
    assert "stall_after=3 (directive)" in record["faults"]


def test_stream_cut_rate_cuts_midway(http: httpx.Client, url: str) -> None:
    httpx.put(f"{url}/_sandbox/faults", json={"stream_cut_rate": 1}).raise_for_status()
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream("POST", "/v1/chat/completions", json=openai_body(stream=True)) as response:
            received.extend(line for line in response.iter_lines() if line.startswith("data: "))
    assert received and "data: [DONE]" not in received
    assert _wait_for_outcome(url)["outcome"] == "cut"


def test_client_disconnect_is_recorded(http: httpx.Client, url: str) -> None:
    body = anthropic_body("[sandbox:stream_delay_ms=100]", stream=True)
    with http.stream("POST", "/v1/messages", json=body) as response:
        next(response.iter_lines())
    record = _wait_for_outcome(url)
    assert (record["outcome"], record["completed"]) == ("disconnected", False)


def test_latency_comes_before_the_headers(http: httpx.Client, url: str) -> None:
    httpx.put(f"{url}/_sandbox/faults", json={"latency_ms": 200}).raise_for_status()
    started = time.monotonic()
    with http.stream("POST", "/v1/messages", json=anthropic_body(stream=True)) as response:
        headers_at = time.monotonic() - started
        assert response.status_code == 200
    assert headers_at >= 0.2


def test_an_idle_connection_outlives_the_proxys_upstream_pool() -> None:
    """The proxy's upstream pool reuses a connection idle up to KEEPALIVE_SECONDS; the
    sandbox, like a provider's edge, must keep it open longer, or a burst after a pause
    meets connections it is closing ("Cannot write to closing transport", a 503)."""
    from harness.loopback import PROVIDER_KEEP_ALIVE_SECONDS
    from memory_proxy.session import KEEPALIVE_SECONDS

    assert PROVIDER_KEEP_ALIVE_SECONDS > KEEPALIVE_SECONDS


def test_the_sandbox_keeps_a_connection_idle_past_uvicorns_default(
    sandbox_server: LoopbackServer,
) -> None:
    request = (
        f"GET /_sandbox/health HTTP/1.1\r\nhost: 127.0.0.1:{sandbox_server.port}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sandbox_server.port), timeout=10) as conn:
        conn.sendall(request)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(5.5)  # past uvicorn's default keep-alive, 5 s
        conn.sendall(request)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200")
