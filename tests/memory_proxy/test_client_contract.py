"""What a gateway owes its clients, through the real SDK proxy on loopback: the
provider's response headers on every path (read by the real ``anthropic`` and ``openai``
SDKs), the client's ``anthropic-*`` / ``openai-*`` request headers passed on, and a
provider's error answer passed on byte for byte on a pass-through path.

The paths: Messages to an anthropic model and Chat Completions to an openai model are
pass-through relays; Messages to an openai model and Chat Completions to an anthropic
model go through litellm.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from tests.conftest import MASTER_KEY

ANTHROPIC_LIMITS = (
    "anthropic-ratelimit-unified-status",
    "anthropic-ratelimit-unified-reset",
    "anthropic-ratelimit-requests-remaining",
)
OPENAI_LIMITS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-limit-tokens",
    "openai-processing-ms",
)


def _provider_request_id(sandbox: SandboxControl) -> str:
    (captured,) = sandbox.api_requests()
    return str(captured["request_id"])


def _anthropic_client(proxy: LoopbackServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=proxy.url, api_key=MASTER_KEY, max_retries=0)


def _openai_client(proxy: LoopbackServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.url + "/v1", api_key=MASTER_KEY, max_retries=0)


# (model, the provider's family of headers): the relay and the litellm path of each API.
MESSAGES_MODELS = [("claude-sonnet-4.5", ANTHROPIC_LIMITS), ("gpt-4o", OPENAI_LIMITS)]
CHAT_MODELS = [("gpt-4o", OPENAI_LIMITS), ("claude-sonnet-4.5", ANTHROPIC_LIMITS)]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("model", "limits"), MESSAGES_MODELS, ids=["relay", "litellm"])
def test_anthropic_sdk_reads_the_providers_headers(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    model: str,
    limits: tuple[str, ...],
    stream: bool,
) -> None:
    with _anthropic_client(sdk_proxy) as client:
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "hello"}],
        }
        if stream:
            with client.messages.with_streaming_response.create(**kwargs, stream=True) as raw:
                headers = raw.headers
                assert "message_stop" in raw.read().decode()
        else:
            raw_reply = client.messages.with_raw_response.create(**kwargs)
            headers = raw_reply.headers
            assert raw_reply.parse().content
    for name in limits:
        assert headers.get(name), (name, dict(headers))
    provider_id = _provider_request_id(sandbox)
    id_header = "request-id" if model.startswith("claude") else "x-request-id"
    assert headers[id_header] == provider_id
    assert "set-cookie" not in headers  # the proxy's upstream session's cookie


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("model", "limits"), CHAT_MODELS, ids=["relay", "litellm"])
def test_openai_sdk_reads_the_providers_headers(
    sdk_proxy: LoopbackServer,
    sandbox: SandboxControl,
    model: str,
    limits: tuple[str, ...],
    stream: bool,
) -> None:
    with _openai_client(sdk_proxy) as client:
        messages: Any = [{"role": "user", "content": "hello"}]
        if stream:
            with client.chat.completions.with_streaming_response.create(
                model=model, messages=messages, stream=True
            ) as raw:
                headers = raw.headers
                assert "[DONE]" in raw.read().decode()
        else:
            raw_reply = client.chat.completions.with_raw_response.create(
                model=model, messages=messages
            )
            headers = raw_reply.headers
            reply = raw_reply.parse()
            assert reply.choices
            if model == "gpt-4o":
                # The SDK's own notion of the request id: OpenAI's x-request-id.
                assert reply._request_id == _provider_request_id(sandbox)
    for name in limits:
        assert headers.get(name), (name, dict(headers))
    provider_id = _provider_request_id(sandbox)
    id_header = "request-id" if model.startswith("claude") else "x-request-id"
    assert headers[id_header] == provider_id


def test_anthropic_and_openai_request_headers_reach_the_provider(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    sent = {
        **auth,
        "anthropic-beta": "oauth-2025-04-20,interleaved-thinking-2025-05-14",
        "anthropic-client-hint": "a-new-header-nobody-listed",
        "anthropic-dangerous-direct-browser-access": "true",
    }
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert httpx.post(sdk_proxy.url + "/v1/messages", json=body, headers=sent).status_code == 200
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    openai_sent = {**auth, "openai-beta": "assistants=v2", "openai-organization": "org-caller"}
    reply = httpx.post(sdk_proxy.url + "/v1/chat/completions", json=chat, headers=openai_sent)
    assert reply.status_code == 200
    to_anthropic, to_openai = (r["headers"] for r in sandbox.api_requests())
    # The claude.ai-login beta is kept, and so is a header no list names.
    assert to_anthropic["anthropic-beta"] == sent["anthropic-beta"]
    assert to_anthropic["anthropic-client-hint"] == "a-new-header-nobody-listed"
    assert "anthropic-dangerous-direct-browser-access" not in to_anthropic
    assert to_openai["openai-beta"] == "assistants=v2"
    assert "openai-organization" not in to_openai  # the caller's org, not the deployment's


# A capability rejection as Anthropic words it (Claude Code matches this wording to drop
# the field and try again), with the provider's own layout and request id.
CAPABILITY_REJECTION = (
    b'{"type":"error","error":{"type":"invalid_request_error","message":'
    b'"thinking.display: Extra inputs are not permitted"},'
    b'"request_id":"req_011CRecordedRejection0001"}'
)
OVERLOADED_NO_RETRY = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'


class RecordedProvider:
    """A provider on loopback that answers with recorded bytes, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.app = Starlette(routes=[Route("/{path:path}", self.answer, methods=["POST"])])

    async def answer(self, request: Request) -> Response:
        self.calls += 1
        text = (await request.body()).decode()
        if "overloaded" in text:
            headers = {"x-should-retry": "false", "request-id": "req_overloaded"}
            return Response(OVERLOADED_NO_RETRY, 529, headers, "application/json")
        headers = {"request-id": "req_011CRecordedRejection0001", "x-should-retry": "false"}
        return Response(CAPABILITY_REJECTION, 400, headers, "application/json")


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[RecordedProvider, LoopbackServer]]:
    provider = RecordedProvider()
    with LoopbackServer(provider.app) as server:
        yield provider, server


@pytest.fixture(scope="module")
def recorded_proxy(
    recorded: tuple[RecordedProvider, LoopbackServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackServer]:
    from harness.sandbox.config_file import write_sandbox_config
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    path: Path = tmp_path_factory.mktemp("recorded") / "config.yaml"
    extra = "memory_proxy:\n  retry_backoff_seconds: 0.01\n"
    write_sandbox_config(recorded[1].url, path, extra=extra)
    with LoopbackServer(create_app(load_config(path))) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_capability_rejection_reaches_the_client_byte_for_byte(
    recorded_proxy: LoopbackServer, stream: bool
) -> None:
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 5,
        "stream": stream,
        "thinking": {"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
        "messages": [{"role": "user", "content": "hi"}],
    }
    reply = httpx.post(
        recorded_proxy.url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}
    )
    assert reply.status_code == 400
    assert reply.content == CAPABILITY_REJECTION
    assert reply.headers["request-id"] == "req_011CRecordedRejection0001"
    assert reply.headers["content-type"] == "application/json"


def test_529_with_x_should_retry_false_is_not_retried_and_kept(
    recorded: tuple[RecordedProvider, LoopbackServer], recorded_proxy: LoopbackServer
) -> None:
    provider, _ = recorded
    before = provider.calls
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "overloaded"}],
    }
    reply = httpx.post(
        recorded_proxy.url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY}
    )
    # 529 stays 529 (not the proxy's 503), and the provider said a retry cannot help.
    assert reply.status_code == 529
    assert reply.content == OVERLOADED_NO_RETRY
    assert provider.calls - before == 1


@pytest.fixture(scope="module")
def listing_proxy(
    sandbox_server: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackServer]:
    """The sandbox config, with concrete ids named for its ``claude-*`` route."""
    from harness.sandbox.config_file import write_sandbox_config
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    extra = (
        "memory_proxy:\n  wildcard_models:\n"
        '    "claude-*": [claude-opus-4-1, claude-haiku-4-5, claude-sonnet-4.5]\n'
    )
    path: Path = tmp_path_factory.mktemp("listing") / "config.yaml"
    write_sandbox_config(sandbox_server.url, path, extra=extra)
    with LoopbackServer(create_app(load_config(path))) as server:
        yield server


def test_models_page_in_anthropics_shape_without_wildcards(listing_proxy: LoopbackServer) -> None:
    url = listing_proxy.url + "/v1/models"
    # Claude Code's discovery: x-api-key alone, no redirect followed.
    headers = {"x-api-key": MASTER_KEY}
    pages, after = [], None
    while True:
        params = {"limit": "2", **({"after_id": after} if after else {})}
        reply = httpx.get(url, params=params, headers=headers, follow_redirects=False)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert len(page["data"]) <= 2
        assert page["first_id"] == page["data"][0]["id"]
        assert page["last_id"] == page["data"][-1]["id"]
        pages.append(page)
        if not page["has_more"]:
            break
        after = page["last_id"]
    ids = [m["id"] for page in pages for m in page["data"]]
    # Configured names once each (claude-sonnet-4.5 is also named under the wildcard).
    assert ids == ["claude-sonnet-4.5", "gpt-4o", "claude-opus-4-1", "claude-haiku-4-5"]
    assert not any("*" in model_id for model_id in ids)
    assert [len(p["data"]) for p in pages] == [2, 2]
    entry = pages[0]["data"][0]
    assert entry["type"] == "model" and entry["display_name"] and entry["created_at"]

    before = httpx.get(
        url, params={"before_id": "claude-haiku-4-5", "limit": "2"}, headers=headers
    ).json()
    assert [m["id"] for m in before["data"]] == ["gpt-4o", "claude-opus-4-1"]
    assert before["has_more"] is True

    # The same list, in OpenAI's shape, for a Bearer client without anthropic-version.
    bearer = {"authorization": f"Bearer {MASTER_KEY}"}
    openai_list = httpx.get(url, headers=bearer).json()
    assert openai_list["object"] == "list"
    assert [m["id"] for m in openai_list["data"]] == ids
    # And with the real anthropic SDK's pager.
    with anthropic.Anthropic(base_url=listing_proxy.url, api_key=MASTER_KEY) as client:
        assert [m.id for m in client.models.list(limit=2)] == ids

    bad = httpx.get(url, params={"limit": "0"}, headers=headers)
    assert bad.status_code == 400


@pytest.fixture(scope="module")
def keepalive_proxy(
    sandbox_server: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoopbackServer]:
    """The sandbox config with a 1 s keep-alive interval."""
    from harness.sandbox.config_file import write_sandbox_config
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    extra = "memory_proxy:\n  stream_keepalive_seconds: 1\n"
    path: Path = tmp_path_factory.mktemp("keepalive") / "config.yaml"
    write_sandbox_config(sandbox_server.url, path, extra=extra)
    with LoopbackServer(create_app(load_config(path))) as server:
        yield server


def _stream(proxy: LoopbackServer, path: str, body: dict[str, Any]) -> str:
    headers = {"x-api-key": MASTER_KEY}
    with httpx.stream("POST", proxy.url + path, json=body, headers=headers, timeout=30) as reply:
        assert reply.status_code == 200
        return reply.read().decode()


def _blocks(text: str) -> list[str]:
    return [block for block in text.replace("\r\n", "\n").split("\n\n") if block]


# Silent after the first content delta: litellm yields nothing for a stream's opening
# events, and before its first item the proxy holds the response head back (a failure
# there is still an HTTP status, and retried), so keep-alive starts after it.
SILENT = "[sandbox:silence_ms=3000,silence_after=4] tell me a story"


def test_translated_anthropic_stream_gets_pings_in_a_silent_gap(
    keepalive_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    body = {
        "model": "gpt-4o",  # Messages to an openai model: litellm translates
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": SILENT}],
    }
    blocks = _blocks(_stream(keepalive_proxy, "/v1/messages", body))
    pings = [b for b in blocks if b.startswith("event: ping")]
    assert len(pings) >= 2, blocks
    # Whole events around them, and the rest of the stream intact to its end.
    names = [b.split("\n", 1)[0] for b in blocks if b not in pings]
    assert names[0] == "event: message_start" and names[-1] == "event: message_stop"
    assert "event: content_block_delta" in names
    assert all(b.startswith("event: ") for b in blocks), blocks


def test_translated_openai_stream_gets_comments_in_a_silent_gap(
    keepalive_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    body = {
        "model": "claude-sonnet-4.5",  # Chat Completions to an anthropic model: litellm
        "stream": True,
        "messages": [{"role": "user", "content": SILENT}],
    }
    blocks = _blocks(_stream(keepalive_proxy, "/v1/chat/completions", body))
    comments = [b for b in blocks if b.startswith(":")]
    assert len(comments) >= 2, blocks
    data = [b for b in blocks if not b.startswith(":")]
    assert all(b.startswith("data: ") for b in data), blocks
    assert data[-1] == "data: [DONE]"
    # The real SDK reads through the comments.
    with _openai_client(keepalive_proxy) as client:
        chunks = client.chat.completions.create(
            model="claude-sonnet-4.5",
            messages=[{"role": "user", "content": "[sandbox:silence_ms=1500,silence_after=4] hi"}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text


def test_passthrough_pings_are_not_doubled(
    keepalive_proxy: LoopbackServer, sandbox_server: LoopbackServer, sandbox: SandboxControl
) -> None:
    body = {
        "model": "claude-sonnet-4.5",  # a relay: the provider's own events, pings included
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "tell me a story"}],
    }
    through_proxy = _blocks(_stream(keepalive_proxy, "/v1/messages", body))
    direct = httpx.post(
        sandbox_server.url + "/v3/api.anthropic.com/v1/messages",
        json={**body, "model": "claude-sonnet-4-5-20250929"},
        headers={"x-api-key": "sk-ant-sandbox-0000000000000000"},
    )
    upstream = _blocks(direct.text)
    count = sum(b.startswith("event: ping") for b in upstream)
    assert count >= 1  # the provider pinged
    assert sum(b.startswith("event: ping") for b in through_proxy) == count


def test_two_subagents_under_one_session_are_two_conversations(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    session = "5b1f7a0e-0000-4000-8000-000000000001"
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    for agent in ("agent-a", "agent-b", None):
        headers = {"x-api-key": MASTER_KEY, "x-claude-code-session-id": session}
        if agent:
            headers["x-claude-code-agent-id"] = agent
            headers["x-claude-code-parent-agent-id"] = "main"
        reply = httpx.post(sdk_proxy.url + "/v1/messages", json=body, headers=headers)
        assert reply.status_code == 200
    ids = [r["headers"]["x-sm-conversation-id"] for r in sandbox.api_requests()]
    assert ids == [f"{session}:agent-a", f"{session}:agent-b", session]


def test_request_class_reaches_the_access_log(
    sdk_proxy: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import time

    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": MASTER_KEY, "x-claude-code-request-class": "compaction"}
    with caplog.at_level("INFO", logger="memory_proxy.access"):
        reply = httpx.post(sdk_proxy.url + "/v1/messages", json=body, headers=headers)
        assert reply.status_code == 200
        deadline = time.monotonic() + 5
        lines: list[dict[str, Any]] = []
        while not lines:
            assert time.monotonic() < deadline, "no access-log line"
            lines = [
                json.loads(r.getMessage())
                for r in caplog.records
                if r.name == "memory_proxy.access" and "compaction" in r.getMessage()
            ]
            time.sleep(0.01)
    assert lines[0]["request_class"] == "compaction"


@pytest.mark.parametrize("path", ["/", "/api/hello"])
def test_start_up_probes_answer_200_without_a_body(sdk_proxy: LoopbackServer, path: str) -> None:
    reply = httpx.head(sdk_proxy.url + path)
    assert reply.status_code == 200
    assert reply.content == b""
