"""The pass-through paths: bytes relayed unchanged, body sent as written, errors, cookies.

Chat Completions to an openai model and Messages to an anthropic model skip litellm
(``relay``, ``openai_upstream``, ``anthropic_upstream``). A scripted provider on loopback
shows what exactly crosses the proxy; the shared sandbox covers faults and cookies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY

AUTH = {"x-api-key": MASTER_KEY}
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


@dataclass
class ScriptedProvider:
    """Answers each POST with ``reply`` (bytes) or ``chunks`` (a stream); keeps what came."""

    reply: bytes = b"{}"
    chunks: list[bytes] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def answer(request: Request) -> Response:
            self.received.append((request.url.path, dict(request.headers), await request.body()))
            if self.chunks:

                async def stream() -> Any:
                    for chunk in self.chunks:
                        yield chunk

                return StreamingResponse(stream(), media_type="text/event-stream")
            return Response(self.reply, media_type="application/json")

        return Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def scripted_proxy(provider: ScriptedProvider, tmp_path: Path) -> Iterator[LoopbackServer]:
    """The SDK proxy with every model pointed at the scripted provider."""
    with LoopbackServer(provider.app()) as upstream:
        config = write_sandbox_config(
            upstream.url, tmp_path / "c.yaml", extra="litellm_settings:\n  num_retries: 0\n"
        )
        with LoopbackServer(create_app(load_config(config))) as proxy:
            yield proxy


def post(proxy: LoopbackServer, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        proxy.url + path,
        content=content,
        headers={**AUTH, "content-type": "application/json", **headers},
        timeout=10,
    )


ODD_REPLY = (
    b'{ "id": "chatcmpl-odd",  "object": "chat.completion", "created": 1, "model": "gpt-4o",'
    b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\\u00e9"},'
    b' "finish_reason": "stop"}], "x_provider_extra": {"kept": true} }'
)


def test_chat_reply_bytes_are_the_providers(
    scripted_proxy: LoopbackServer, provider: ScriptedProvider
) -> None:
    provider.reply = ODD_REPLY
    body = b'{"messages": [{"role": "user", "content": "hi"}], "model": "gpt-4o"}'
    reply = post(scripted_proxy, CHAT, body)
    assert reply.status_code == 200, reply.text
    assert reply.content == ODD_REPLY  # not re-encoded: spacing, escapes, extra keys kept
    assert reply.headers["content-type"] == "application/json"
    ((path, headers, sent),) = provider.received
    assert path == "/v3/api.openai.com/v1/chat/completions"
    assert sent == body  # the model id needs no change: the client's own bytes
    assert headers["authorization"] == "Bearer sk-openai-sandbox-000000000000"
    assert headers["x-sm-user-id"] == "default-dev"
    assert headers["x-supermemory-api-key"] == "sm-sandbox-0000000000000000"
    assert MASTER_KEY not in json.dumps(headers)


def test_messages_body_re_encoded_only_to_rename_the_model(
    scripted_proxy: LoopbackServer, provider: ScriptedProvider
) -> None:
    provider.reply = b'{"type":"message","content":[]}'
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "é"}],
    }
    reply = post(scripted_proxy, MESSAGES, json.dumps(body).encode())
    assert reply.content == provider.reply
    ((_, headers, sent),) = provider.received
    assert json.loads(sent) == {**body, "model": "claude-sonnet-4-5-20250929"}
    assert headers["anthropic-version"] == "2023-06-01"
    # A wildcard route keeps the id: the bytes go on untouched.
    raw = b'{"max_tokens":5,  "model":"claude-opus-5-5","messages":[{"role":"user","content":"x"}]}'
    post(scripted_proxy, MESSAGES, raw)
    assert provider.received[-1][2] == raw


CHAT_STREAM = [
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],',
    b'"x_extra":1}\n\n: a comment line\n\ndata: {"id":"c1","choices":[{"index":0,"delta":{"con',
    b'tent":"Hi"},"finish_reason":"stop"}]}\n\ndata: [DO',
    b"NE]\n\n",
]


def test_chat_stream_relayed_unchanged_a_whole_event_at_a_time(
    scripted_proxy: LoopbackServer, provider: ScriptedProvider
) -> None:
    provider.chunks = CHAT_STREAM
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    received: list[bytes] = []
    with httpx.stream(
        "POST", scripted_proxy.url + CHAT, json=body, headers=AUTH, timeout=10
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        received = list(reply.iter_raw())
    assert b"".join(received) == b"".join(CHAT_STREAM)
    # Every piece the client got ends at an event boundary, however the provider split it.
    assert all(piece.endswith(b"\n\n") for piece in received)


def test_stream_cut_inside_an_event_ends_with_one_whole_error_event(
    scripted_proxy: LoopbackServer, provider: ScriptedProvider
) -> None:
    first = b'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
    provider.chunks = [first, b'event: content_block_delta\ndata: {"type":"content_bl']
    body = {"model": "claude-opus-5-5", "max_tokens": 5, "stream": True, "messages": []}
    with httpx.stream("POST", scripted_proxy.url + MESSAGES, json=body, headers=AUTH) as reply:
        assert reply.status_code == 200
        text = reply.read()
    assert text.startswith(first)
    rest = text[len(first) :]
    assert rest.startswith(b"event: error\ndata: ") and rest.endswith(b"\n\n")
    assert json.loads(rest.split(b"data: ", 1)[1])["error"]["type"] == "api_error"
    assert b"content_bl" not in text  # the half event never reached the client


@pytest.mark.parametrize(
    ("path", "body", "error_of"),
    [
        (CHAT, {"model": "gpt-4o"}, lambda e: e["error"]["type"] == "api_error"),
        (
            MESSAGES,
            {"model": "claude-sonnet-4.5", "max_tokens": 50},
            lambda e: e["type"] == "error" and e["error"]["type"] == "api_error",
        ),
    ],
    ids=["chat", "messages"],
)
def test_malformed_provider_json_is_a_502(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    path: str,
    body: dict[str, Any],
    error_of: Any,
) -> None:
    message = [{"role": "user", "content": "[sandbox:malformed] hi"}]
    reply = post(sdk_proxy, path, json.dumps({**body, "messages": message}).encode())
    assert reply.status_code == 502, reply.text
    assert error_of(reply.json())


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"model": "gpt-4o"}),
        (MESSAGES, {"model": "claude-sonnet-4.5", "max_tokens": 400}),
    ],
    ids=["chat", "messages"],
)
def test_client_leaving_mid_stream_closes_the_upstream_stream(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, path: str, body: dict[str, Any]
) -> None:
    prompt = "[sandbox:stream_delay_ms=300] a long answer about proxies, please"
    payload = {**body, "stream": True, "messages": [{"role": "user", "content": prompt}]}
    with httpx.stream("POST", sdk_proxy.url + path, json=payload, headers=AUTH) as reply:
        assert reply.status_code == 200
        next(reply.iter_raw())  # one event, then hang up
    deadline = time.monotonic() + 5
    outcome = None
    while time.monotonic() < deadline:
        (upstream,) = sandbox.api_requests()
        outcome = upstream["outcome"]
        if outcome:
            break
        time.sleep(0.05)
    assert outcome == "disconnected"


def test_one_cookie_jar_for_passthrough_and_litellm_paths(
    sandbox_config_path: Path, sandbox: SandboxControl
) -> None:
    # A fresh proxy: its jar starts empty. The cookie comes back on a litellm call
    # (chat to a claude model) and on both pass-through paths, whichever set it.
    message = [{"role": "user", "content": "hi"}]
    calls = [
        (CHAT, {"model": "claude-sonnet-4.5", "messages": message}),
        (CHAT, {"model": "gpt-4o", "messages": message}),
        (MESSAGES, {"model": "claude-sonnet-4.5", "max_tokens": 20, "messages": message}),
        (CHAT, {"model": "claude-sonnet-4.5", "messages": message}),
    ]
    with LoopbackServer(create_app(load_config(sandbox_config_path))) as proxy:
        for path, body in calls:
            assert post(proxy, path, json.dumps(body).encode()).status_code == 200
    captured = sandbox.api_requests()
    assert [r["cookie_issued"] for r in captured] == [True, False, False, False]
    assert all(r["cookie_valid"] for r in captured[1:])


def test_request_ids_are_unique(sdk_proxy: LoopbackServer) -> None:
    ids = {
        httpx.get(sdk_proxy.url + "/v1/models", headers=AUTH).headers["x-request-id"]
        for _ in range(20)
    }
    assert len(ids) == 20
    assert all(len(i) == 28 and i.startswith("req_") for i in ids)


def test_fast_routes_leave_the_rest_to_fastapi(sdk_proxy: LoopbackServer) -> None:
    assert httpx.get(sdk_proxy.url + MESSAGES, headers=AUTH).status_code == 405
    schema = httpx.get(sdk_proxy.url + "/openapi.json").json()
    assert {CHAT, MESSAGES, "/v1/messages/count_tokens"} <= set(schema["paths"])
    assert "/chat/completions" not in schema["paths"]


async def test_a_bug_in_a_fast_route_is_a_500_in_its_format() -> None:
    from memory_proxy.fast_routes import FastRoutes
    from memory_proxy.service_routes import render_error

    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    async def fallback(scope: Any, receive: Any, send: Any) -> None:
        await Response("fallback")(scope, receive, send)

    app = FastRoutes(fallback, routes={("POST", MESSAGES): boom}, render_error=render_error)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        reply = await c.post(MESSAGES, content=b"{}")
        other = await c.post(CHAT, content=b"{}")
    assert reply.status_code == 500
    assert reply.json() == {
        "type": "error",
        "error": {"type": "api_error", "message": "internal error in the proxy"},
    }
    assert other.text == "fallback"


def test_one_app_served_by_two_servers_at_once(
    sandbox_config_path: Path, sandbox: SandboxControl
) -> None:
    # Shadow mode serves the app that also serves directly: each server's event loop
    # gets its own clients, and the last server to stop closes the session.
    app = create_app(load_config(sandbox_config_path))
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    with LoopbackServer(app) as first, LoopbackServer(app) as second:
        for proxy in (first, second, first):
            assert post(proxy, CHAT, body.encode()).status_code == 200
        assert app.state.proxy.session.loops == 2
    assert app.state.proxy.session is None
