"""The legacy proxy in front of the real LiteLLM server, driven by the openai and anthropic SDKs.

::

    SDK client -> legacy proxy (in-process, loopback) -> LiteLLM server (child) -> sandbox

The LiteLLM server is the session's one (``litellm_server`` in conftest: ~13 s to start);
what reached the provider is read back from the sandbox's capture.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.loopback import LoopbackServer, free_port
from harness.sandbox.client import SandboxControl
from memory_proxy.config import load_config
from memory_proxy.legacy_proxy import LEGACY_TRIES, create_legacy_app
from tests.conftest import MASTER_KEY

OPENAI_CHAT_PATH = "/v3/api.openai.com/v1/chat/completions"
ANTHROPIC_MESSAGES_PATH = "/v3/api.anthropic.com/v1/messages"


def openai_client(proxy: LoopbackServer, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0, default_headers=headers
    )


def anthropic_client(proxy: LoopbackServer, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=proxy.url, api_key=MASTER_KEY, max_retries=0, default_headers=headers
    )


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def settled_requests(sandbox: SandboxControl, expected: int) -> list[dict[str, Any]]:
    """The captured API requests once ``expected`` of them are answered, and a moment more.

    The capture of a stream is finished just after its last byte leaves the sandbox, and a
    duplicate upstream request (the migrated proxy's defect) would come after the first:
    wait for both before counting.
    """
    deadline = time.monotonic() + 5.0
    while len(sandbox.settled_api_requests(5.0)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    return sandbox.api_requests()


def assert_memory_headers(
    upstream: dict[str, Any], user_id: str, conversation_id: str | None = None
) -> None:
    headers = upstream["headers"]
    assert headers["x-sm-user-id"] == user_id
    assert headers.get("x-sm-conversation-id") == conversation_id
    # The Supermemory key comes from the config's extra_headers, through the LiteLLM server.
    assert upstream["credentials"]["x-supermemory-api-key"]["present"] is True
    # The proxy's key stops at the proxy; the deployment's own key goes to the provider.
    assert MASTER_KEY not in json.dumps(upstream)
    assert upstream["credentials"].keys() & {"authorization", "x-api-key"}


# -- chat and messages, stream and non-stream ----------------------------------------------


@pytest.mark.parametrize(
    ("model", "upstream_path"),
    [("gpt-4o", OPENAI_CHAT_PATH), ("claude-sonnet-4.5", ANTHROPIC_MESSAGES_PATH)],
)
def test_openai_chat_non_stream(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl, model: str, upstream_path: str
) -> None:
    with openai_client(legacy_proxy) as client:
        reply = client.chat.completions.create(model=model, messages=user("Hello legacy"))
    assert "Hello legacy" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"

    (upstream,) = settled_requests(sandbox, 1)  # exactly one upstream request
    assert upstream["path"] == upstream_path
    assert upstream["status"] == 200
    assert_memory_headers(upstream, "openai-sdk")


def test_openai_chat_stream_is_sent_upstream_once(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    with openai_client(legacy_proxy) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=user("Stream through two hops"), stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Stream through two hops" in text
    assert any(c.choices and c.choices[0].finish_reason == "stop" for c in chunks)

    (upstream,) = settled_requests(sandbox, 1)
    assert upstream["path"] == OPENAI_CHAT_PATH
    assert upstream["body"]["stream"] is True
    assert upstream["completed"] is True
    assert_memory_headers(upstream, "openai-sdk")


def test_anthropic_messages_non_stream(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    with anthropic_client(legacy_proxy) as client:
        reply = client.messages.create(
            model="claude-sonnet-4.5", max_tokens=64, messages=user("Hello messages")
        )
        client_version = client.default_headers["anthropic-version"]
    assert reply.content[0].type == "text" and "Hello messages" in reply.content[0].text
    assert reply.stop_reason == "end_turn"

    (upstream,) = settled_requests(sandbox, 1)
    assert upstream["path"] == ANTHROPIC_MESSAGES_PATH
    assert_memory_headers(upstream, "anthropic-sdk")
    # Measured: the client's anthropic-version (the legacy proxy forwards it) wins over
    # litellm's own 2023-06-01 at the LiteLLM server; the SDK proxy sends litellm's.
    assert upstream["headers"]["anthropic-version"] == client_version
    assert upstream["headers"]["user-agent"].startswith("litellm/")


def test_anthropic_messages_stream_is_sent_upstream_once(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    with (
        anthropic_client(legacy_proxy, **{"x-claude-code-session-id": "sess-9"}) as client,
        client.messages.stream(
            model="claude-sonnet-4.5", max_tokens=64, messages=user("Stream the messages")
        ) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "Stream the messages" in text
    assert final.stop_reason == "end_turn"

    (upstream,) = settled_requests(sandbox, 1)  # the migrated proxy sent streams twice
    assert upstream["body"]["stream"] is True
    assert upstream["completed"] is True
    assert_memory_headers(upstream, "anthropic-sdk", conversation_id="sess-9")


def test_custom_header_wins_and_conversation_id_passes(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    headers = {"x-memory-user-id": "alice", "x-sm-conversation-id": "conv-42"}
    with openai_client(legacy_proxy, **headers) as client:
        client.chat.completions.create(model="gpt-4o", messages=user("who am I"))
    with anthropic_client(legacy_proxy, **headers) as client:
        client.messages.create(model="claude-sonnet-4.5", max_tokens=16, messages=user("again"))

    captured = settled_requests(sandbox, 2)
    assert [r["path"] for r in captured] == [OPENAI_CHAT_PATH, ANTHROPIC_MESSAGES_PATH]
    for upstream in captured:
        assert_memory_headers(upstream, "alice", conversation_id="conv-42")


# -- errors ----------------------------------------------------------------------------------


def test_wrong_key_is_401_in_each_api_format(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    wrong = openai.OpenAI(base_url=legacy_proxy.url + "/v1", api_key="sk-wrong", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError) as openai_error:
        wrong.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert openai_error.value.status_code == 401
    assert openai_error.value.response.json()["error"]["type"] == "authentication_error"
    assert openai_error.value.response.json()["error"]["code"] == "invalid_api_key"

    missing = httpx.post(
        legacy_proxy.url + "/v1/messages",
        json={"model": "claude-sonnet-4.5", "max_tokens": 8, "messages": user("hi")},
    )
    assert missing.status_code == 401
    body = missing.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert "missing API key" in body["error"]["message"]

    assert sandbox.api_requests() == []  # refused before anything went upstream


def test_health_and_routing_info(legacy_proxy: LoopbackServer) -> None:
    health = httpx.get(legacy_proxy.url + "/health").json()
    assert health["status"] == "healthy"
    assert health["service"] == "memory-proxy-legacy"
    assert "claude-sonnet-4.5" in health["models"]
    assert health["auth"] is True

    info = httpx.get(
        legacy_proxy.url + "/memory-routing/info",
        headers={"user-agent": "claude-cli/2.1.332 (external, cli)", "x-sm-conversation-id": "c"},
    ).json()
    assert info["user_id"] == "claude-code"
    assert info["rule"] == "header_pattern"
    assert info["conversation_id"] == "c"
    assert info["rules"]


def test_429_is_retried_by_both_hops(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl, sandbox_config_path: Path
) -> None:
    with openai_client(legacy_proxy) as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=user("[sandbox:status=429]"))
    assert caught.value.status_code == 429
    # The body is the LiteLLM server's own OpenAI-style error, passed through unchanged;
    # unlike the SDK proxy's 429 it carries no Retry-After (the server sends none).
    assert "RateLimitError" in caught.value.response.json()["error"]["message"]
    assert "retry-after" not in caught.value.response.headers

    # Measured: 9 upstream requests, not 3. The LiteLLM server retries on its own
    # (litellm_settings.num_retries: 2, so 3 tries per call, 1.2-2 s apart: it waits out
    # the sandbox's Retry-After: 1) and then answers 429 without a Retry-After; the legacy
    # proxy tries that call LEGACY_TRIES times: 3 x 3 tries, ~13 s before the client hears
    # back. The SDK proxy reaches the sandbox 3 times for the same request.
    server_tries = load_config(sandbox_config_path).litellm.num_retries + 1
    captured = settled_requests(sandbox, LEGACY_TRIES * server_tries)
    assert len(captured) == LEGACY_TRIES * server_tries == 9
    assert {r["status"] for r in captured} == {429}
    assert all(r["headers"]["x-sm-user-id"] == "openai-sdk" for r in captured)


@pytest.fixture(scope="module")
def orphan_legacy_proxy(sandbox_config_path: Path) -> Iterator[LoopbackServer]:
    """A legacy proxy whose LiteLLM server is not running (nothing listens on its port)."""
    app = create_legacy_app(load_config(sandbox_config_path), f"http://127.0.0.1:{free_port()}")
    with LoopbackServer(app) as server:
        yield server


def test_litellm_server_down_is_503_in_each_api_format(
    orphan_legacy_proxy: LoopbackServer,
) -> None:
    with (
        openai_client(orphan_legacy_proxy) as client,
        pytest.raises(openai.InternalServerError) as openai_error,
    ):
        client.chat.completions.create(model="gpt-4o", messages=user("hi"))
    assert openai_error.value.status_code == 503
    error = openai_error.value.response.json()["error"]
    assert error["type"] == "service_unavailable_error"
    assert "LiteLLM server unreachable" in error["message"]

    with (
        anthropic_client(orphan_legacy_proxy) as a_client,
        pytest.raises(anthropic.APIStatusError) as anthropic_error,
    ):
        a_client.messages.create(model="claude-sonnet-4.5", max_tokens=8, messages=user("hi"))
    assert anthropic_error.value.status_code == 503
    body = anthropic_error.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error"


def test_messages_with_an_openai_model_goes_through_the_responses_api(
    legacy_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    """The LiteLLM server answers /v1/messages for gpt-4o by calling the provider's
    Responses API: the sandbox serves it, so the legacy stack's answer is its own."""
    with anthropic_client(legacy_proxy) as client:
        message = client.messages.create(
            model="gpt-4o", max_tokens=100, messages=user("Hello via responses")
        )
        with client.messages.stream(
            model="gpt-4o", max_tokens=100, messages=user("Stream via responses")
        ) as stream:
            streamed = "".join(stream.text_stream)
    assert message.role == "assistant"
    assert 'You said: "Hello via responses"' in "".join(
        b.text for b in message.content if b.type == "text"
    )
    assert 'You said: "Stream via responses"' in streamed
    captured = settled_requests(sandbox, 2)
    assert [r["endpoint"] for r in captured] == ["openai.responses", "openai.responses"]
    assert all(r["status"] == 200 for r in captured)
