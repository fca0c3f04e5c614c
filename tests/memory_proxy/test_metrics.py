"""``GET /metrics`` on the SDK proxy: exact counts per label set, histograms, streams,
retries, disconnects, auth, and no secret or user id in what it shows.

Each test builds its own proxy app (its own registry), serves it on loopback against the
shared sandbox provider and drives it with the real openai and anthropic SDKs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.metrics_scrape import scrape, wait_for_sample

USER_ID = "user-alice-5d2f9e"
CONVERSATION_ID = "conv-7c1b33aa-secret"
PROMPT = "the launch code is tangerine-4471"
UNKNOWN_MODEL = "gpt-private-finetune-ab12"


@pytest.fixture
def proxy(sandbox_config_path: Path, sandbox: SandboxControl) -> Iterator[LoopbackServer]:
    with LoopbackServer(create_app(load_config(sandbox_config_path))) as server:
        yield server


def openai_client(proxy: LoopbackServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=proxy.url + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"x-memory-user-id": USER_ID, "x-sm-conversation-id": CONVERSATION_ID},
    )


def anthropic_client(proxy: LoopbackServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=proxy.url,
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"x-memory-user-id": USER_ID},
    )


def test_requests_are_counted_per_label_set(proxy: LoopbackServer) -> None:
    chat = openai_client(proxy)
    for _ in range(3):
        chat.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    with pytest.raises(openai.NotFoundError):
        chat.chat.completions.create(
            model=UNKNOWN_MODEL, messages=[{"role": "user", "content": PROMPT}]
        )
    messages = anthropic_client(proxy)
    for _ in range(2):
        messages.messages.create(
            model="claude-sonnet-4.5",
            max_tokens=32,
            messages=[{"role": "user", "content": PROMPT}],
        )
    # A model the wildcard route takes is counted under the route's name, not the model's.
    messages.messages.create(
        model="claude-opus-9-9", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )

    m = scrape(proxy.url, MASTER_KEY)
    total = "memory_proxy_requests_total"
    assert m.value(total, proxy="sdk", endpoint="chat", route="gpt-4o", status_class="2xx",
                   client_family="openai-sdk") == 3  # fmt: skip
    assert m.value(total, endpoint="chat", route="unrouted", status_class="4xx") == 1
    assert m.value(total, endpoint="messages", route="claude-sonnet-4.5", status_class="2xx",
                   client_family="anthropic-sdk") == 2  # fmt: skip
    assert m.value(total, endpoint="messages", route="claude-*", status_class="2xx") == 1
    assert m.value(total, endpoint="chat") == 4
    assert m.value(total, endpoint="messages") == 3
    # The raw model strings never become label values.
    assert m.label_values(total, "route") == {"gpt-4o", "unrouted", "claude-sonnet-4.5", "claude-*"}
    # One upstream attempt per routed request, none for the unknown model.
    assert m.value("memory_proxy_upstream_attempts_total", endpoint="chat") == 3
    assert m.value("memory_proxy_upstream_attempts_total", endpoint="messages") == 3
    assert m.value("memory_proxy_upstream_retries_total") == 0

    # The latency histogram's buckets add up to the requests, per label set.
    for endpoint, sent in (("chat", 4), ("messages", 3)):
        duration = "memory_proxy_request_duration_seconds"
        assert m.value(duration + "_count", endpoint=endpoint, stream="false") == sent
        assert m.value(duration + "_bucket", endpoint=endpoint, stream="false", le="+Inf") == sent
        assert m.value(duration + "_sum", endpoint=endpoint) > 0


def test_retries_are_counted_by_reason(proxy: LoopbackServer) -> None:
    client = anthropic_client(proxy)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="claude-sonnet-4.5",
            max_tokens=32,
            messages=[{"role": "user", "content": "[sandbox:status=429]"}],
        )
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(
            model="claude-sonnet-4.5",
            max_tokens=32,
            messages=[{"role": "user", "content": "[sandbox:status=503]"}],
        )

    m = scrape(proxy.url, MASTER_KEY)
    # litellm_settings.num_retries is 2: three attempts each.
    assert m.value("memory_proxy_upstream_attempts_total", endpoint="messages") == 6
    retries = "memory_proxy_upstream_retries_total"
    assert m.value(retries, endpoint="messages", reason="rate_limited") == 2
    assert m.value(retries, endpoint="messages", reason="overloaded") == 2
    assert m.value("memory_proxy_requests_total", status_class="4xx") == 1
    assert m.value("memory_proxy_requests_total", status_class="5xx") == 1


def test_streams_in_flight_ttft_and_client_disconnects(proxy: LoopbackServer) -> None:
    client = openai_client(proxy)
    for _ in range(2):
        with client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        ) as stream:
            assert list(stream)

    m = scrape(proxy.url, MASTER_KEY)
    ttft = "memory_proxy_time_to_first_byte_seconds"
    assert m.value(ttft + "_count", endpoint="chat", stream="true") == 2
    assert m.value(ttft + "_bucket", endpoint="chat", stream="true", le="+Inf") == 2
    assert m.value("memory_proxy_streams_in_flight", endpoint="chat") == 0
    assert m.value("memory_proxy_client_disconnects_total") == 0

    # A stream the provider leaves silent after its first event: in flight until the
    # client gives up, then counted as a disconnect.
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": "[sandbox:stall_after=1]"}],
    }
    headers = {"x-api-key": MASTER_KEY}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", proxy.url + "/v1/messages", json=body, headers=headers) as reply:
            assert reply.status_code == 200
            # Held, not dropped: a dropped iterator would close the response at once.
            chunks = reply.iter_raw()
            assert next(chunks).startswith(b"event: message_start")
            wait_for_sample(
                proxy.url,
                MASTER_KEY,
                lambda s: s.value("memory_proxy_streams_in_flight", endpoint="messages") == 1,
            )
    m = wait_for_sample(
        proxy.url,
        MASTER_KEY,
        lambda s: s.value("memory_proxy_client_disconnects_total", endpoint="messages") == 1,
    )
    assert m.value("memory_proxy_streams_in_flight", endpoint="messages") == 0
    assert m.value("memory_proxy_requests_total", endpoint="messages", status_class="2xx") == 1


def test_metrics_need_the_master_key_and_show_no_secret(
    proxy: LoopbackServer, sandbox_config_path: Path
) -> None:
    client = openai_client(proxy)
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": PROMPT}])
    anthropic_client(proxy).messages.create(
        model="claude-sonnet-4.5", max_tokens=32, messages=[{"role": "user", "content": PROMPT}]
    )

    refused = httpx.get(proxy.url + "/metrics", timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    wrong = httpx.get(proxy.url + "/metrics", headers={"x-api-key": "sk-wrong"}, timeout=10)
    assert wrong.status_code == 401

    reply = httpx.get(proxy.url + "/metrics", headers={"x-api-key": MASTER_KEY}, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert "memory_proxy_requests_total" in reply.text
    secrets = load_config(sandbox_config_path).secrets
    assert MASTER_KEY in secrets
    for needle in (*secrets, USER_ID, CONVERSATION_ID, PROMPT, "tangerine"):
        assert needle not in reply.text, needle


def test_metrics_can_be_turned_off(sandbox_server: LoopbackServer, tmp_path: Path) -> None:
    path = write_sandbox_config(
        sandbox_server.url, tmp_path / "c.yaml", extra="memory_proxy:\n  metrics: false\n"
    )
    with LoopbackServer(create_app(load_config(path))) as server:
        reply = httpx.get(server.url + "/metrics", headers={"x-api-key": MASTER_KEY}, timeout=10)
    assert reply.status_code == 404
    assert reply.json()["error"]["type"] == "invalid_request_error"
