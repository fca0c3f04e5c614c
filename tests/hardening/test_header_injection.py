"""Hostile memory headers: CR/LF, 8 KB, non-ASCII bytes. Never a 500, never forwarded raw.

httpx refuses CR/LF and non-ASCII in header values, so those requests are written to a
raw socket, byte for byte.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from tests.conftest import MASTER_KEY

MEMORY_HEADERS = (b"x-memory-user-id", b"x-sm-conversation-id", b"x-claude-code-session-id")
FORWARDED = ("x-sm-user-id", "x-sm-conversation-id")
ENDPOINTS = {
    # path -> body: the Anthropic pass-through, the OpenAI pass-through, litellm's path.
    "messages": (
        "/v1/messages",
        {
            "model": "claude-sonnet-4.5",
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    "chat-openai": (
        "/v1/chat/completions",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "chat-translated": (
        "/v1/chat/completions",
        {"model": "claude-sonnet-4.5", "messages": [{"role": "user", "content": "hi"}]},
    ),
    "messages-translated": (
        "/v1/messages",
        {"model": "gpt-4o", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
    ),
}
# Raw header values (the bytes after "name: ", before the request's own CRLF).
HOSTILE_VALUES = {
    "bare_cr_injection": b"alice\rx-injected: 1",
    "bare_lf_injection": b"alice\nx-injected: 1",
    "crlf_injection": b"alice\r\nx-injected: 1",
    "obs_fold": b"alice\r\n  folded-evil",
    "latin1": b"caf\xe9-\xff\xfe-user",
    "utf8": "jos\u00e9-\u2603-\U0001f600".encode(),
    "controls": b"a\x01b\x7fc\x1bd\te",
    "nul": b"a\x00b",
    "long_8k": b"u" * 8192,
    "long_8k_latin1": b"\xe9" * 8192,
    "only_junk": b"\xe9\xe9\x01\x02",
}


def _raw_request(url: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """Send one HTTP/1.1 request as written; the reply's status (0: connection dropped)."""
    parts = urlsplit(url)
    head = [f"POST {path} HTTP/1.1".encode(), f"host: {parts.netloc}".encode()]
    head += [name + b": " + value for name, value in headers]
    head += [b"content-type: application/json", f"content-length: {len(body)}".encode()]
    head += [b"connection: close"]
    payload = b"\r\n".join(head) + b"\r\n\r\n" + body
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 30) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    reply = b"".join(chunks)
    if not reply:
        return 0
    status_line = reply.split(b"\r\n", 1)[0].split()
    return int(status_line[1])


def _assert_clean_upstream(sandbox: SandboxControl, since: int) -> None:
    for captured in sandbox.api_requests(since):
        headers = {k.lower(): v for k, v in captured["headers"].items()}
        assert "x-injected" not in headers, headers
        for name in FORWARDED:
            value = headers.get(name)
            if value is None:
                continue
            assert len(value) <= 128, (name, len(value))
            assert all(0x20 <= ord(ch) < 0x7F for ch in value), (name, value)
            assert "\r" not in value and "\n" not in value
        assert headers.get("x-sm-user-id"), "every forwarded request names a memory user"


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("case", sorted(HOSTILE_VALUES))
def test_hostile_memory_headers_are_refused_or_sanitized(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl, endpoint: str, case: str
) -> None:
    path, body = ENDPOINTS[endpoint]
    since = sandbox.latest_seq()
    value = HOSTILE_VALUES[case]
    headers = [(b"authorization", f"Bearer {MASTER_KEY}".encode())]
    headers += [(name, value) for name in MEMORY_HEADERS]
    status = _raw_request(sdk_proxy.url, path, headers, json.dumps(body).encode())
    assert status not in (0, 500), status
    assert status in (200, 400), status
    _assert_clean_upstream(sandbox, since)
    if status == 200 and case.startswith("long_8k"):
        forwarded = sandbox.api_requests(since)[-1]["headers"]
        assert len(forwarded["x-sm-user-id"]) == 128 or case.endswith("latin1")


def test_an_8k_ascii_user_id_is_capped(sdk_proxy: LoopbackServer, sandbox: SandboxControl) -> None:
    path, body = ENDPOINTS["messages"]
    since = sandbox.latest_seq()
    reply = httpx.post(
        sdk_proxy.url + path,
        json=body,
        headers={"authorization": f"Bearer {MASTER_KEY}", "x-memory-user-id": "v" * 8192},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    (captured,) = sandbox.api_requests(since)
    assert captured["headers"]["x-sm-user-id"] == "v" * 128


def test_memory_routing_info_never_echoes_raw_values(sdk_proxy: LoopbackServer) -> None:
    for case, value in HOSTILE_VALUES.items():
        headers = [(b"x-memory-user-id", value)]
        parts = urlsplit(sdk_proxy.url)
        head = [b"GET /memory-routing/info HTTP/1.1", f"host: {parts.netloc}".encode()]
        head += [name + b": " + v for name, v in headers] + [b"connection: close"]
        with socket.create_connection((parts.hostname, parts.port), 30) as sock:
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        status = int(reply.split(b"\r\n", 1)[0].split()[1])
        assert status in (200, 400), (case, status)
        if status == 200:
            info = json.loads(reply.split(b"\r\n\r\n", 1)[1])
            user_id = info["user_id"]
            assert len(user_id) <= 128 and all(0x20 <= ord(c) < 0x7F for c in user_id), case
