"""Clients that hang up mid-stream: the proxy cancels the upstream stream every time and
keeps no task or connection behind.

Each round opens a stream on a fresh socket, reads up to the first SSE event, and closes
the socket. The sandbox slows its stream (``stream_delay_ms``), so an upstream the proxy
forgot to cancel would run to ``completed``; a cancelled one ends ``disconnected``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from urllib.parse import urlsplit

import psutil
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from tests.conftest import MASTER_KEY

PROMPT = "tell me a long story [sandbox:stream_delay_ms=50]"
# path, body, rounds. The issue asks for 1,000 rounds: a pass-through round takes ~2 ms.
# A translated stream's first chunk is the first text delta, three delayed sandbox events
# in (~160 ms a round), so its 1,000 would take ~160 s; 60 still show a per-round leak as
# 60 of it.
# HARDENING_DISCONNECT_ROUNDS overrides all three.
_OVERRIDE = os.environ.get("HARDENING_DISCONNECT_ROUNDS")
ENDPOINTS = {
    "messages-anthropic": (
        "/v1/messages",
        {"model": "claude-sonnet-4.5", "max_tokens": 512, "stream": True},
        int(_OVERRIDE or 1000),
    ),
    "chat-translated": (
        "/v1/chat/completions",
        {"model": "claude-sonnet-4.5", "stream": True},
        int(_OVERRIDE or 60),
    ),
    "messages-translated": (
        "/v1/messages",
        {"model": "gpt-4o", "max_tokens": 512, "stream": True},
        int(_OVERRIDE or 60),
    ),
    "chat-openai": (
        "/v1/chat/completions",
        {"model": "gpt-4o", "stream": True},
        int(_OVERRIDE or 1000),
    ),
}


def _request(url: str, path: str, body: dict[str, object]) -> bytes:
    payload = json.dumps({**body, "messages": [{"role": "user", "content": PROMPT}]}).encode()
    host = urlsplit(url).netloc
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {MASTER_KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _open_read_first_event_and_hang_up(url: str, request: bytes) -> None:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    try:
        sock.sendall(request)
        received = b""
        # Headers, then the first whole event of the (chunked) body.
        while b"\r\n\r\n" not in received or b"\n\n" not in received.split(b"\r\n\r\n", 1)[1]:
            chunk = sock.recv(65536)
            assert chunk, f"stream ended before its first event: {received[:300]!r}"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200"), received[:300]
        assert b"text/event-stream" in received.split(b"\r\n\r\n", 1)[0]
    finally:
        # RST, not FIN: the abrupt hang-up of a killed client.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()


def _open_connections() -> int:
    """TCP connections of this process (client, proxy and sandbox all live here)."""
    return sum(
        1 for c in psutil.Process().net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN
    )


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _wait_for_outcomes(sandbox: SandboxControl, since: int, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 15
    while True:
        captured = sandbox.api_requests(since)
        if len(captured) >= count and all(r["outcome"] for r in captured):
            return captured
        if time.monotonic() > deadline:
            pending = [r["seq"] for r in captured if not r["outcome"]]
            pytest.fail(f"{len(captured)}/{count} upstream requests; unfinished: {pending[:10]}")
        time.sleep(0.05)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_hanging_up_mid_stream_cancels_upstream_and_leaks_nothing(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, endpoint: str
) -> None:
    path, body, rounds = ENDPOINTS[endpoint]
    request = _request(sdk_proxy.url, path, body)
    # Warm up (first litellm call, pooled upstream connections), then measure.
    for _ in range(3):
        _open_read_first_event_and_hang_up(sdk_proxy.url, request)
    _wait_for_outcomes(sandbox, 0, 3)
    time.sleep(0.2)
    before, fds_before = _open_connections(), _open_fds()
    since = sandbox.latest_seq()

    started = time.monotonic()
    for _ in range(rounds):
        _open_read_first_event_and_hang_up(sdk_proxy.url, request)
    elapsed = time.monotonic() - started

    captured = _wait_for_outcomes(sandbox, since, rounds)
    outcomes = [r["outcome"] for r in captured]
    assert len(captured) == rounds, "each client request made exactly one upstream request"
    assert outcomes.count("completed") == 0, {o: outcomes.count(o) for o in set(outcomes)}
    assert set(outcomes) <= {"disconnected", "cut"}, set(outcomes)

    deadline = time.monotonic() + 5
    while (after := _open_connections()) - before >= 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after - before < 10, f"{after - before} more open connections after {rounds} rounds"
    fds = _open_fds()
    assert fds - fds_before < 10, f"{fds - fds_before} more open descriptors after {rounds} rounds"
    print(
        f"{endpoint}: {rounds} hang-ups in {elapsed:.2f}s, "
        f"connections {before} -> {after}, fds {fds_before} -> {fds}"
    )


def test_the_connection_count_sees_open_sockets(sdk_proxy: LoopbackServer) -> None:
    before = _open_connections()
    parts = urlsplit(sdk_proxy.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10):
        time.sleep(0.05)
        assert _open_connections() >= before + 1


def test_the_proxy_serves_a_whole_stream_after_the_hang_ups(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    import httpx

    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "whole"}],
    }
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    with httpx.stream(
        "POST", sdk_proxy.url + "/v1/messages", json=body, headers=headers, timeout=30
    ) as reply:
        text = "".join(reply.iter_text())
    assert reply.status_code == 200
    assert "event: message_stop" in text
    (captured,) = _wait_for_outcomes(sandbox, 0, 1)
    assert captured["outcome"] == "completed"
