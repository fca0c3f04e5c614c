"""The upstream observer sees every provider call, on every path, as the provider saw it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from memory_proxy.upstream_observer import observe_all
from tests.conftest import MASTER_KEY

AUTH = {"x-api-key": MASTER_KEY}


@dataclass
class Watched:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    chunks: list[bytes] = field(default_factory=list)
    ends: list[str | None] = field(default_factory=list)

    def response(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.status = status

    def chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    def end(self, error: str | None = None) -> None:
        self.ends.append(error)


@dataclass
class Recorder:
    calls: list[Watched] = field(default_factory=list)

    def call(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Watched:
        watched = Watched(method, url, {k.lower(): v for k, v in headers}, body)
        self.calls.append(watched)
        return watched


@pytest.fixture(scope="module")
def observed(sandbox_config_path: Path) -> Iterator[tuple[Recorder, LoopbackServer]]:
    recorder = Recorder()
    app = create_app(load_config(sandbox_config_path), upstream_observer=recorder)
    with LoopbackServer(app) as server:
        yield recorder, server


# (path, model): passed through, passed through, translated
CASES = [
    ("/v1/chat/completions", "gpt-4o"),
    ("/v1/messages", "claude-sonnet-4.5"),
    ("/v1/chat/completions", "claude-sonnet-4.5"),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("path", "model"), CASES, ids=["chat", "messages", "translated"])
def test_every_path_reports_the_call_as_the_provider_saw_it(
    observed: tuple[Recorder, LoopbackServer],
    sandbox: SandboxControl,
    path: str,
    model: str,
    stream: bool,
) -> None:
    recorder, server = observed
    recorder.calls.clear()
    body = {
        "model": model,
        "max_tokens": 20,
        "stream": stream,
        "messages": [{"role": "user", "content": f"observe {path} {stream}"}],
    }
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        reply = client.post(path, json=body)
    assert reply.status_code == 200

    (call,) = recorder.calls
    (seen,) = sandbox.api_requests()
    assert call.method == "POST" and call.status == 200
    assert call.url.endswith(seen["path"])
    assert call.headers["x-sm-user-id"] == seen["headers"]["x-sm-user-id"]
    # What the observer saw sent is what the provider received.
    assert json.loads(call.body) == seen["body"]
    # The body came in the chunks the observer saw, and the call ended once, cleanly.
    received = b"".join(call.chunks)
    assert received
    if stream:
        assert (b"[DONE]" in received) or (b"message_stop" in received)
    else:
        assert json.loads(received)
    # The translated stream too is read to its end (over the relay, as a pass-through).
    assert call.ends[0] is None


def test_an_app_without_an_observer_is_unchanged(
    sdk_proxy: LoopbackServer, sandbox: SandboxControl
) -> None:
    with httpx.Client(base_url=sdk_proxy.url, headers=AUTH, timeout=30) as client:
        reply = client.post(
            "/v1/messages",
            json={
                "model": "claude-sonnet-4.5",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "unobserved"}],
            },
        )
    assert reply.status_code == 200
    assert len(sandbox.api_requests()) == 1


def test_observe_all_reports_each_call_to_every_observer() -> None:
    """A shadow tap and the tracer watch the same calls; one absent observer costs nothing."""
    tap, tracer = Recorder(), Recorder()
    assert observe_all(None, None) is None
    assert observe_all(tap, None) is tap
    both = observe_all(tap, tracer)
    assert both is not None
    watch = both.call("POST", "http://127.0.0.1:1/v1/messages", iter([("X-A", "1")]), b"{}")
    assert watch is not None
    watch.response(200, iter([("content-type", "text/event-stream")]))
    watch.chunk(b"event: a\n\n")
    watch.end()
    for recorder in (tap, tracer):
        (call,) = recorder.calls
        # Headers given as a one-shot iterator still reach both.
        assert call.headers == {"x-a": "1"} and call.status == 200
        assert call.chunks == [b"event: a\n\n"] and call.ends == [None]
