"""The SDK proxy's OpenAI endpoint, driven by the openai SDK over real loopback servers."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from tests.conftest import MASTER_KEY


@pytest.fixture
def client(sdk_proxy: LoopbackServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=sdk_proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def hello(text: str = "Hello there, sandbox") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_chat_non_stream_reaches_sandbox_with_memory_headers(
    client: openai.OpenAI, sandbox: SandboxControl
) -> None:
    reply = client.chat.completions.create(model="gpt-4o", messages=hello(), temperature=0.3)
    assert reply.choices[0].message.content
    assert "Hello" in reply.choices[0].message.content  # the sandbox echoes the prompt
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0

    (upstream,) = sandbox.api_requests()
    assert upstream["path"] == "/v3/api.openai.com/v1/chat/completions"
    headers = upstream["headers"]
    assert headers["x-sm-user-id"] == "openai-sdk"  # the openai SDK's User-Agent rule
    assert "x-supermemory-api-key" in upstream["credentials"]
    assert upstream["body"]["model"] == "gpt-4o"
    assert upstream["body"]["temperature"] == 0.3
    # The proxy's own key never goes upstream; the deployment's does.
    assert MASTER_KEY not in json.dumps(upstream)


def test_chat_stream_events_and_done(client: openai.OpenAI, sandbox: SandboxControl) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=hello("Stream me a few words"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Stream" in text
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    (upstream,) = sandbox.settled_api_requests()
    assert upstream["body"]["stream"] is True
    assert upstream["completed"] is True


def test_raw_stream_ends_with_done(sdk_proxy: LoopbackServer, sandbox: SandboxControl) -> None:
    body = {"model": "gpt-4o", "messages": hello(), "stream": True}
    with httpx.stream(
        "POST",
        sdk_proxy.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [line for line in reply.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in events)


def test_tools_round_trip(client: openai.OpenAI, sandbox: SandboxControl) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=hello("Use get_weather for Paris"),
        tools=tools,
        tool_choice="required",
    )
    call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    follow_up = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            *hello("Use get_weather for Paris"),
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
        tools=tools,
    )
    assert follow_up.choices[0].message.content
    sent = sandbox.api_requests()[-1]["body"]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["messages"][-1]["role"] == "tool"


def test_cookie_persists_across_calls(client: openai.OpenAI, sandbox: SandboxControl) -> None:
    for i in range(4):
        client.chat.completions.create(model="gpt-4o", messages=hello(f"call {i}"))
    for i in range(2):
        list(
            client.chat.completions.create(
                model="claude-sonnet-4.5", messages=hello(f"s{i}"), stream=True
            )
        )
    captured = sandbox.api_requests()
    assert len(captured) == 6
    # The first call is answered with a cookie; every later call sends it back, whichever
    # provider path (openai client or litellm's handler) the call took.
    later = captured[1:]
    assert all("__cf_bm" in r["cookies"] for r in later), later
    assert all(r["cookie_valid"] for r in later)


def test_memory_routing_custom_header_and_conversation(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    client = openai.OpenAI(
        base_url=sdk_proxy.url + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"x-memory-user-id": "alice", "x-sm-conversation-id": "conv-42"},
    )
    client.chat.completions.create(model="claude-sonnet-4.5", messages=hello())
    (upstream,) = sandbox.api_requests()
    assert upstream["path"] == "/v3/api.anthropic.com/v1/messages"
    assert upstream["headers"]["x-sm-user-id"] == "alice"
    assert upstream["headers"]["x-sm-conversation-id"] == "conv-42"
    info = httpx.get(
        sdk_proxy.url + "/memory-routing/info",
        headers={"x-memory-user-id": "alice", "authorization": f"Bearer {MASTER_KEY}"},
    ).json()
    assert info["user_id"] == "alice" and info["rule"] == "custom_header"
    assert MASTER_KEY not in json.dumps(info)


def test_models_health_and_request_id(sdk_proxy: LoopbackServer) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    models = httpx.get(sdk_proxy.url + "/v1/models", headers=auth)
    assert models.status_code == 200
    # OpenAI's shape (no anthropic-version, no x-api-key); the wildcard route is no model.
    assert models.json()["object"] == "list"
    assert [m["id"] for m in models.json()["data"]] == ["claude-sonnet-4.5", "gpt-4o"]
    assert models.headers["x-request-id"].startswith("req_")
    health = httpx.get(sdk_proxy.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    text = health.text
    assert "sk-" not in text and "sandbox-0000" not in text and "127.0.0.1" not in text
    for path in ("/health/liveliness", "/health/readiness"):
        assert httpx.get(sdk_proxy.url + path).status_code == 200


def test_health_reads_the_installed_litellm_version_once(
    sdk_proxy: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``importlib.metadata.version`` scans every installed distribution (1.5 ms of CPU):
    on each ``GET /health`` it made the SDK proxy's health checks slower than legacy's."""
    import importlib.metadata

    from memory_proxy import app

    app._litellm_version.cache_clear()
    reads: list[str] = []
    real = importlib.metadata.version

    def counted(name: str) -> str:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", counted)
    versions = {httpx.get(sdk_proxy.url + "/health").json()["litellm_version"] for _ in range(3)}
    assert versions == {real("litellm")} and reads == ["litellm"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"x-api-key": "wrong"}, 401),
        ({"authorization": f"Bearer {MASTER_KEY}"}, 200),
        ({"x-api-key": MASTER_KEY}, 200),
    ],
)
def test_auth(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, headers: dict[str, str], status: int
) -> None:
    reply = httpx.post(
        sdk_proxy.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": hello()},
        headers=headers,
    )
    assert reply.status_code == status
    if status == 401:
        assert reply.json()["error"]["type"] == "authentication_error"
        assert sandbox.api_requests() == []
    assert httpx.get(sdk_proxy.url + "/v1/models", headers=headers).status_code == status


def post_raw(proxy: LoopbackServer, content: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(
        proxy.url + "/v1/chat/completions",
        content=content,
        headers={
            "authorization": f"Bearer {MASTER_KEY}",
            "content-type": "application/json",
            **headers,
        },
    )


@pytest.mark.parametrize(
    ("content", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"[1, 2]", 400, "JSON object"),
        (b"\xff\xfe{}", 400, "UTF-8"),
        (json.dumps({"messages": hello()}), 400, "model: field required"),
        (json.dumps({"model": "gpt-4o"}), 400, "messages: field required"),
        (json.dumps({"model": 7, "messages": hello()}), 400, "model: expected a string"),
        (json.dumps({"model": "gpt-4o", "messages": "hi"}), 400, "messages: expected an array"),
        (json.dumps({"model": "gpt-4o", "messages": []}), 400, "at least one"),
        (json.dumps({"model": "gpt-4o", "messages": [1]}), 400, "messages[0]"),
        (json.dumps({"model": "gpt-4o", "messages": hello(), "stream": "yes"}), 400, "stream"),
        (json.dumps({"model": "gpt-4o", "messages": hello(), "api_key": "x"}), 400, "api_key"),
        (
            json.dumps({"model": "gpt-4o", "messages": hello(), "api_base": "http://evil"}),
            400,
            "api_base",
        ),
        (
            json.dumps({"model": "gpt-4o", "messages": hello(), "base_url": "http://evil"}),
            400,
            "base_url",
        ),
        (json.dumps({"model": "nope-1", "messages": hello()}), 404, "claude-sonnet-4.5"),
        (json.dumps({"model": "gpt-4o", "messages": hello("x" * 70_000)}), 413, "limit"),
    ],
)
def test_bad_input_is_a_clean_openai_error(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    content: bytes | str,
    status: int,
    fragment: str,
) -> None:
    reply = post_raw(sdk_proxy, content)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert fragment in error["message"]
    assert sandbox.api_requests() == []  # nothing bad went upstream
    assert (
        post_raw(sdk_proxy, json.dumps({"model": "gpt-4o", "messages": hello()})).status_code == 200
    )  # and the process keeps serving


def test_oversized_body_by_content_length(sdk_proxy: LoopbackServer) -> None:
    reply = post_raw(sdk_proxy, b"{" + b" " * 70_000 + b"}")
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "request_too_large"


def test_upstream_429_passed_on_with_retry_after(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    reply = post_raw(
        sdk_proxy, json.dumps({"model": "gpt-4o", "messages": hello("[sandbox:status=429] please")})
    )
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "1"
    # A pass-through path: the provider's own body (OpenAI calls this type "requests").
    assert reply.json()["error"]["type"] == "requests"
    # num_retries: 2 in the config: three tries in all, before the first byte.
    assert len(sandbox.api_requests()) == 3


def test_upstream_503_and_cloudflare_retried_then_503(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    for directive in ("[sandbox:status=503]", "[sandbox:cloudflare=1200]"):
        before = len(sandbox.api_requests())
        reply = post_raw(
            sdk_proxy, json.dumps({"model": "claude-sonnet-4.5", "messages": hello(directive)})
        )
        assert reply.status_code == 503, reply.text
        assert len(sandbox.api_requests()) - before == 3


def test_retry_recovers_from_transient_429(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    sandbox.set_faults(error_rate_429=0.4)
    statuses = [
        post_raw(sdk_proxy, json.dumps({"model": "gpt-4o", "messages": hello(f"n{i}")})).status_code
        for i in range(8)
    ]
    captured = sandbox.api_requests()
    assert any(r["status"] == 429 for r in captured)
    assert statuses.count(200) >= 6  # a 429 followed by a success is invisible to the client


def test_upstream_500_passed_on_as_the_provider_sent_it(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    reply = post_raw(
        sdk_proxy, json.dumps({"model": "gpt-4o", "messages": hello("[sandbox:status=500]")})
    )
    # A pass-through path: the provider's status and body, not the proxy's 502.
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "server_error"
    assert len(sandbox.api_requests()) == 1  # not retried


def test_upstream_timeout_is_504(
    tmp_path, sandbox_server: LoopbackServer, sandbox: SandboxControl
) -> None:
    from harness.sandbox.config_file import write_sandbox_config
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    path = write_sandbox_config(
        sandbox_server.url,
        tmp_path / "c.yaml",
        extra="litellm_settings:\n  num_retries: 0\n  request_timeout: 0.5\n",
    )
    with LoopbackServer(create_app(load_config(path))) as proxy:
        reply = post_raw(
            proxy, json.dumps({"model": "gpt-4o", "messages": hello("[sandbox:delay_ms=3000]")})
        )
    assert reply.status_code == 504, reply.text
    assert reply.json()["error"]["code"] == "timeout"


def test_upstream_unreachable_is_503(tmp_path) -> None:
    from harness.loopback import free_port
    from harness.sandbox.config_file import write_sandbox_config
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    path = write_sandbox_config(
        f"http://127.0.0.1:{free_port()}",
        tmp_path / "c.yaml",
        extra="litellm_settings:\n  num_retries: 0\n",
    )
    with LoopbackServer(create_app(load_config(path))) as proxy:
        reply = post_raw(proxy, json.dumps({"model": "gpt-4o", "messages": hello()}))
    assert reply.status_code in (502, 503), reply.text
    assert "sk-" not in reply.text


def test_stream_cut_by_upstream_ends_with_one_error_event(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    body = {
        "model": "gpt-4o",
        "messages": hello("[sandbox:cut_after=3] long answer please"),
        "stream": True,
    }
    with httpx.stream(
        "POST",
        sdk_proxy.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    ) as reply:
        assert reply.status_code == 200
        events = [line for line in reply.iter_lines() if line]
    assert "data: [DONE]" not in events
    last = json.loads(events[-1].removeprefix("data: "))
    assert last["error"]["type"] in ("api_error", "service_unavailable_error")
    assert sum("error" in e for e in events) == 1


def test_stream_upstream_429_before_first_byte_is_a_status(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    body = {"model": "claude-sonnet-4.5", "messages": hello("[sandbox:status=429]"), "stream": True}
    reply = httpx.post(
        sdk_proxy.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert reply.status_code == 429
    assert reply.json()["error"]["type"] == "rate_limit_error"
