"""Slow and idle clients are bounded: the request head and body on a clock, idle and
kept-alive connections closed, a head too large refused, too many connections refused,
the server's memory flat, and the server still serving after all of it.

The proxies run as users run them, ``memory-proxy serve`` and ``memory-proxy legacy`` in
their own processes (uvicorn's httptools protocol), with second-scale limits. The SDK app
also runs under uvicorn's h11 protocol, in a thread, since the clock follows each parser
its own way. Clients are raw sockets: a trickle is a trickle, not an HTTP library's guess.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import uvicorn

from harness.loopback import LoopbackServer, free_port
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from memory_proxy.config import load_config
from memory_proxy.connection_limits import uvicorn_settings
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.processes import ChildProcess
from tests.conftest import MASTER_KEY

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1.5  # longer than the head's: a close at ~1.5 s is the keep-alive's doing
MAX_HEADER_BYTES = 16384
LEGACY_MAX_CONNECTIONS = 20
# Hang guard only: the limits above are what the timings are checked against.
GUARD = 10.0
TRICKLE_SECONDS = 0.3

LIMITS = f"""\
memory_proxy:
  max_body_bytes: 65536
  shutdown_grace_seconds: 5
  retry_backoff_seconds: 0.05
  header_timeout_seconds: {HEADER_TIMEOUT}
  body_timeout_seconds: {BODY_TIMEOUT}
  keep_alive_timeout_seconds: {KEEP_ALIVE}
  max_header_bytes: {MAX_HEADER_BYTES}
  max_connections: {{max_connections}}
"""

CHAT = ("/v1/chat/completions", {"model": "gpt-4o"})
MESSAGES = ("/v1/messages", {"model": "claude-sonnet-4.5", "max_tokens": 16})


class _Reply:
    """What a raw socket got: ``seconds`` to the first byte (or to the close, if none)."""

    def __init__(self, raw: bytes, closed: bool, seconds: float) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/1.1 ") else 0
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        self.closed = closed
        self.seconds = seconds

    def json(self) -> Any:
        return json.loads(self.body)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=GUARD)


def _read_until_closed(sock: socket.socket, started: float, trickle: bytes = b"") -> _Reply:
    """Everything the server sends until it closes, sending ``trickle`` a byte at a time."""
    received = b""
    first: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() - started < GUARD:
            if selector.select(timeout=TRICKLE_SECONDS):
                chunk = sock.recv(65536)
                now = time.monotonic() - started
                if not chunk:
                    return _Reply(received, True, now if first is None else first)
                first = now if first is None else first
                received += chunk
            elif trickle and not received:
                sock.sendall(trickle[:1])
                trickle = trickle[1:]
    return _Reply(received, False, GUARD if first is None else first)


def _head(path: str, *, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {MASTER_KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {length}\r\n{extra}\r\n"
    ).encode()


def _config(sandbox_url: str, dest: Path, max_connections: int) -> Path:
    extra = LIMITS.format(max_connections=max_connections)
    return write_sandbox_config(sandbox_url, dest, extra=extra)


class _ThreadServer:
    """uvicorn in a thread with ``settings`` (the proxy's limits) in its config."""

    def __init__(self, app: Any, settings: dict[str, Any]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **settings
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> _ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "no start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


@dataclass(frozen=True)
class _Servers:
    urls: dict[str, str]
    processes: dict[str, ChildProcess]


@pytest.fixture(scope="module")
def servers(
    sandbox_server: LoopbackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Servers]:
    """The SDK proxy and the legacy proxy as processes, and the SDK app on h11 in a thread."""
    tmp = tmp_path_factory.mktemp("connection-limits")
    sdk_config = _config(sandbox_server.url, tmp / "sdk.yaml", 1000)
    legacy_config = _config(sandbox_server.url, tmp / "legacy.yaml", LEGACY_MAX_CONNECTIONS)

    def child(name: str, *args: str) -> ChildProcess:
        port = free_port()
        argv = [sys.executable, "-m", "memory_proxy.cli", *args, "--port", str(port)]
        return ChildProcess(
            name,
            argv,
            port=port,
            log_path=tmp / f"{name}.log",
            env=LITELLM_OFFLINE_ENV,
            ready_timeout=90,
        )

    sdk = child("sdk", "serve", "--config", str(sdk_config))
    # Nothing listens at the LiteLLM URL: these requests are refused before forwarding.
    nowhere = f"http://127.0.0.1:{free_port()}"
    legacy = child("legacy", "legacy", "--config", str(legacy_config), "--litellm-url", nowhere)
    with contextlib.ExitStack() as stack:
        # The SDK proxy's start and create_app here both import litellm (seconds of CPU):
        # side by side, not one after the other.
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(process.start) for process in (sdk, legacy)]
            stack.callback(legacy.stop)
            stack.callback(sdk.stop)
            from memory_proxy.app import create_app

            config = load_config(sdk_config)
            h11 = _ThreadServer(create_app(config), uvicorn_settings(config.options, http="h11"))
            for future in starting:
                future.result()
        stack.enter_context(h11)
        yield _Servers(
            urls={"sdk": sdk.url, "legacy": legacy.url, "sdk-h11": h11.url},
            processes={"sdk": sdk, "legacy": legacy},
        )


SERVERS = ["sdk", "legacy", "sdk-h11"]
# The legacy proxy runs the same protocol as the SDK proxy: its own app matters only once
# the head is read (the body's error format, the refusal past max_connections).
PARSERS = ["sdk", "sdk-h11"]


@pytest.mark.parametrize("server", SERVERS)
def test_a_head_trickled_a_byte_at_a_time_gets_408_and_a_close(
    servers: _Servers, server: str
) -> None:
    request = _head(CHAT[0], length=2) + b"{}"
    with _connect(servers.urls[server]) as sock:
        reply = _read_until_closed(sock, time.monotonic(), trickle=request)
    assert reply.status == 408, reply.body
    assert reply.closed and reply.headers["connection"] == "close"
    error = reply.json()["error"]
    assert (error["type"], error["code"]) == ("request_timeout", "request_timeout")
    assert "head" in error["message"]
    # The head stalls 0.3 s a byte: the whole would take ~40 s; the clock says ~1 s.
    assert HEADER_TIMEOUT * 0.9 <= reply.seconds < HEADER_TIMEOUT + 3, reply.seconds
    print(f"{server}: 408 for a trickled head after {reply.seconds:.2f} s")


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(("path", "fields"), [CHAT, MESSAGES], ids=["openai", "anthropic"])
def test_a_body_trickled_gets_408_in_the_endpoints_format(
    servers: _Servers, server: str, path: str, fields: dict[str, Any]
) -> None:
    body = json.dumps({**fields, "messages": [{"role": "user", "content": "slow"}]}).encode()
    with _connect(servers.urls[server]) as sock:
        sock.sendall(_head(path, length=len(body)) + body[:10])
        # A byte every 0.3 s keeps each gap short: the body's clock is for the whole body.
        reply = _read_until_closed(sock, time.monotonic(), trickle=body[10:])
    assert reply.status == 408, reply.body
    assert reply.closed
    if path == "/v1/messages":
        assert reply.json()["type"] == "error"
        assert reply.json()["error"]["type"] == "invalid_request_error"
    else:
        assert reply.json()["error"]["type"] == "request_timeout"
    assert "body" in reply.json()["error"]["message"]
    assert BODY_TIMEOUT * 0.9 <= reply.seconds < BODY_TIMEOUT + 3, reply.seconds
    print(f"{server} {path}: 408 for a trickled body after {reply.seconds:.2f} s")


@pytest.mark.parametrize("server", SERVERS)
def test_a_head_past_max_header_bytes_gets_431(servers: _Servers, server: str) -> None:
    started = time.monotonic()
    with _connect(servers.urls[server]) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        try:
            for _ in range(4 * MAX_HEADER_BYTES // 1000):
                sock.sendall(b"x-pad: " + b"a" * 991 + b"\r\n")
        except OSError:
            pass  # refused midway: the answer is waiting
        reply = _read_until_closed(sock, started)
    assert reply.status == 431, reply.body
    assert reply.json()["error"]["code"] == "request_too_large"
    # Refused as soon as the cap was passed, not when the head clock ran out.
    assert reply.seconds < HEADER_TIMEOUT, reply.seconds


def test_idle_connections_are_closed_and_memory_stays_flat(
    servers: _Servers, sandbox: SandboxControl
) -> None:
    server = psutil.Process(servers.processes["sdk"].pid)
    rss_before = server.memory_info().rss
    opened = time.monotonic()
    idle = [_connect(servers.urls["sdk"]) for _ in range(300)]
    try:
        time.sleep(0.3)
        rss_open = server.memory_info().rss
        with_idle = _count_connections(server)
        # A real request is served while the 300 wait.
        reply = httpx.post(
            servers.urls["sdk"] + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            timeout=GUARD,
        )
        assert reply.status_code == 200, reply.text
        closed_after = _wait_all_closed(idle, opened)
    finally:
        for sock in idle:
            sock.close()
    assert with_idle >= 300
    assert len(closed_after) == 300, f"{300 - len(closed_after)} idle connections left open"
    assert HEADER_TIMEOUT * 0.9 <= min(closed_after), min(closed_after)
    assert max(closed_after) < HEADER_TIMEOUT + 4, max(closed_after)
    grown = (rss_open - rss_before) / 2**20
    assert grown < 50, f"RSS grew {grown:.1f} MB with 300 idle connections"
    print(
        f"300 idle: RSS {rss_before / 2**20:.1f} -> {rss_open / 2**20:.1f} MB, "
        f"closed after {min(closed_after):.2f}-{max(closed_after):.2f} s"
    )


def test_a_kept_alive_connection_is_closed_when_idle(servers: _Servers) -> None:
    # uvicorn's own timer, given keep_alive_timeout_seconds: one server shows the wiring.
    with _connect(servers.urls["sdk"]) as sock:
        sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        answered = _read_one_response(sock)
        reply = _read_until_closed(sock, answered)
    assert reply.closed and reply.body == b"", reply.body
    # uvicorn's keep-alive, not the head clock (which waits for a first byte here).
    assert KEEP_ALIVE * 0.9 <= reply.seconds < KEEP_ALIVE + 3, reply.seconds


@pytest.mark.parametrize("server", PARSERS)
def test_a_reused_connection_times_its_next_head(servers: _Servers, server: str) -> None:
    with _connect(servers.urls[server]) as sock:
        sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        _read_one_response(sock)
        # Each byte would reset a keep-alive timer: only the head clock ends this.
        started = time.monotonic()
        reply = _read_until_closed(
            sock, started, trickle=b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
        )
    assert reply.status == 408 and reply.closed
    assert HEADER_TIMEOUT * 0.9 <= reply.seconds < HEADER_TIMEOUT + 3, reply.seconds


@pytest.mark.parametrize("server", PARSERS)
def test_a_head_pipelined_behind_a_stream_is_timed_after_it(
    servers: _Servers, server: str, sandbox: SandboxControl
) -> None:
    """A head begun mid-response is never answered inside that response."""
    body = json.dumps(
        {
            **MESSAGES[1],
            "stream": True,
            "messages": [{"role": "user", "content": "[sandbox:stream_delay_ms=150] go on"}],
        }
    ).encode()
    with _connect(servers.urls[server]) as sock:
        started = time.monotonic()
        sock.sendall(_head(MESSAGES[0], length=len(body)) + body + b"GET /health HTTP/1.1\r\n")
        reply = _read_until_closed(sock, started)
        raw = reply.body
    stream_end = raw.index(b"\r\n0\r\n\r\n")
    assert b"event: message_stop" in raw[:stream_end], raw[:300]
    assert raw[stream_end:].startswith(b"\r\n0\r\n\r\nHTTP/1.1 408 "), raw[stream_end:]
    assert reply.closed
    # The stream outlasts the head clock (~1.4 s), and the 408 waited for its end.
    closed = time.monotonic() - started
    assert closed >= 2 * HEADER_TIMEOUT * 0.9, closed
    print(f"{server}: stream then 408, closed after {closed:.2f} s")


def test_connections_past_max_connections_get_503(servers: _Servers) -> None:
    idle = [_connect(servers.urls["legacy"]) for _ in range(LEGACY_MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        refused = httpx.get(servers.urls["legacy"] + "/health/liveliness", timeout=GUARD)
    finally:
        for sock in idle:
            sock.close()
    assert refused.status_code == 503
    deadline = time.monotonic() + GUARD
    while (served := httpx.get(servers.urls["legacy"] + "/health/liveliness")).status_code == 503:
        assert time.monotonic() < deadline, "still refusing after the connections closed"
        time.sleep(0.1)
    assert served.status_code == 200


def test_the_servers_keep_serving_after_all_of_it(
    servers: _Servers, sandbox: SandboxControl
) -> None:
    for name, process in servers.processes.items():
        assert process.poll() is None, f"{name} exited: {process.log_tail()}"
        # Not one traceback for all the clients refused.
        assert "Traceback" not in process.log_path.read_text(), process.log_tail()
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    for name in ("sdk", "sdk-h11"):
        for path, fields in (CHAT, MESSAGES):
            body = {**fields, "messages": [{"role": "user", "content": "still there?"}]}
            reply = httpx.post(servers.urls[name] + path, json=body, headers=headers, timeout=GUARD)
            assert reply.status_code == 200, (name, path, reply.text)
    assert httpx.get(servers.urls["legacy"] + "/health", timeout=GUARD).status_code == 200


def _read_one_response(sock: socket.socket) -> float:
    """Read one response with a content-length; the time it was complete."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return time.monotonic()


def _wait_all_closed(socks: list[socket.socket], opened: float) -> list[float]:
    """Seconds from ``opened`` to the server's close, for each socket it closed in time."""
    closed: list[float] = []
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() - opened < GUARD:
            for key, _ in selector.select(timeout=0.5):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                assert ready.recv(1) == b"", "an idle connection was sent something"
                closed.append(time.monotonic() - opened)
                selector.unregister(ready)
    return closed


def _count_connections(process: psutil.Process) -> int:
    return sum(
        1 for c in process.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED
    )
