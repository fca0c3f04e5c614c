"""The access log reports every request to the app's metrics (one wrapper of ``send`` for
both): in-process ASGI calls, for the edges a live server makes hard to hit on purpose."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from starlette.types import Message, Receive, Scope, Send

from memory_proxy.access_log import AccessLog
from memory_proxy.metrics import ProxyMetrics
from tests.metrics_scrape import Scrape


async def stream_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An event stream of three events."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"Content-Type", b"text/event-stream; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    for _ in range(3):
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def call(app: AccessLog, path: str, *, client_leaves_after: int | None = None) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if client_leaves_after is not None and len(sent) == client_leaves_after:
            raise OSError("client went away")
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"user-agent", b"curl/8.5.0")],
        "state": {},
    }
    try:
        asyncio.run(app(scope, receive, send))
    except OSError:
        pass
    return sent


def test_streams_first_bytes_and_clients_that_leave_reach_the_metrics() -> None:
    metrics = ProxyMetrics("sdk")
    app = AccessLog(stream_app, service="sdk", observer=metrics)

    sent = call(app, "/v1/messages")
    assert len(sent) == 6
    call(app, "/v1/messages", client_leaves_after=3)  # start and two body parts arrive
    call(app, "/metrics")  # a scrape is not a request of the proxy's to count

    m = Scrape.of(generate_latest(metrics.registry).decode())
    total = "memory_proxy_requests_total"
    assert m.value(total) == 2
    assert m.value(total, endpoint="messages", status_class="2xx", client_family="curl") == 2
    assert m.value("memory_proxy_time_to_first_byte_seconds_count", stream="true") == 2
    assert m.value("memory_proxy_request_duration_seconds_count", stream="true") == 2
    assert m.value("memory_proxy_client_disconnects_total", endpoint="messages") == 1
    assert m.value("memory_proxy_streams_in_flight", endpoint="messages") == 0


def test_a_body_never_begun_has_no_first_byte() -> None:
    async def refuses(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the app failed before answering")

    metrics = ProxyMetrics("legacy")
    app = AccessLog(refuses, service="legacy", observer=metrics)
    with pytest.raises(RuntimeError):
        call(app, "/v1/chat/completions")

    m = Scrape.of(generate_latest(metrics.registry).decode())
    assert m.value("memory_proxy_requests_total", endpoint="chat", status_class="none") == 1
    assert m.value("memory_proxy_time_to_first_byte_seconds_count") == 0
    assert m.value("memory_proxy_request_duration_seconds_count", stream="false") == 1
    # No answer begun: an app failure, not a client that left.
    assert m.value("memory_proxy_client_disconnects_total") == 0
