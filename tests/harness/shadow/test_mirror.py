"""Shadow mirroring over real loopback servers: the client's answer never changes."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.loopback import LoopbackServer, free_port
from harness.observation import CapturedPair
from harness.settings import HarnessSettings, ShadowSettings
from harness.shadow.dispatch import LocalDispatch
from harness.shadow.engine import MirrorEngine
from harness.shadow.mirror import SHADOW_HEADER, ShadowMirror
from harness.shadow.targets import MirrorTarget, MirrorTargets
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY

AUTH = {"x-api-key": MASTER_KEY}


class ListSink:
    def __init__(self) -> None:
        self.pairs: list[CapturedPair] = []
        self.unattached: list[tuple[str, dict[str, Any]]] = []

    def put(self, pair: CapturedPair) -> bool:
        self.pairs.append(pair)
        return True

    def add_unattached(self, target: str, calls: Iterable[dict[str, Any]]) -> int:
        kept = list(calls)
        self.unattached.extend((target, call) for call in kept)
        return len(kept)


class FakeShadow:
    """A shadow target whose behaviour a test picks (and may change mid-test): ok, slow,
    failing (500), throttling (429, as the LiteLLM server in cooldown does) or hung (no
    answer until ``release``). It counts the requests it holds at once."""

    def __init__(self, mode: str = "ok", delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.seen: list[dict[str, Any]] = []
        self.active = 0
        self.peak = 0
        self.released = threading.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])

    async def handle(self, request: Request) -> Response:
        self.seen.append(
            {
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": await request.body(),
            }
        )
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            while self.mode == "hang" and not self.released.is_set():
                await asyncio.sleep(0.05)
        finally:
            self.active -= 1
        if self.mode == "error":
            return JSONResponse(
                {"error": {"message": "boom", "type": "api_error"}}, status_code=500
            )
        if self.mode == "throttle":
            return JSONResponse(
                {"error": {"message": "No deployments available", "type": "rate_limit"}},
                status_code=429,
            )
        return JSONResponse({"id": "shadow", "choices": []})


def settings(**shadow: Any) -> HarnessSettings:
    base = {"aa_rate": 0.0, "timeout_seconds": 10.0, **shadow}
    return HarnessSettings(shadow=ShadowSettings(**base))


@pytest.fixture(scope="module")
def primary_app(sandbox_config_path: Path) -> Any:
    return create_app(load_config(sandbox_config_path))


@pytest.fixture
def fake_shadow() -> Iterator[tuple[FakeShadow, LoopbackServer]]:
    fake = FakeShadow()
    with LoopbackServer(fake.app) as server:
        yield fake, server


def mirrored(primary_app: Any, shadow_url: str, sink: ListSink, **shadow: Any) -> ShadowMirror:
    legacy = MirrorTarget("legacy", shadow_url)
    engine = MirrorEngine(
        settings=settings(**shadow),
        sink=sink,
        targets=MirrorTargets(primary="sdk", shadow=legacy, repeat=legacy),
    )
    return ShadowMirror(primary_app, settings=engine.settings, dispatch=LocalDispatch(engine))


def chat(text: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": stream}


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_both_answers_captured_for_every_mirrored_endpoint(
    primary_app: Any, fake_shadow: tuple[FakeShadow, LoopbackServer], sandbox: Any
) -> None:
    fake, shadow = fake_shadow
    sink = ListSink()
    with (
        LoopbackServer(mirrored(primary_app, shadow.url, sink)) as server,
        httpx.Client(base_url=server.url, headers=AUTH) as client,
    ):
        assert client.post("/v1/chat/completions", json=chat("one")).status_code == 200
        with client.stream("POST", "/v1/chat/completions", json=chat("two", True)) as r:
            list(r.iter_lines())
        messages = {
            "model": "claude-sonnet-4.5",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "three"}],
        }
        with client.stream(
            "POST",
            "/v1/messages?beta=true",
            json=messages,
            headers={
                "user-agent": "claude-cli/2.1.332 (external, cli)",
                "x-claude-code-session-id": "sess-1",
            },
        ) as r:
            list(r.iter_lines())
        assert client.get("/v1/models").status_code == 200
        # Health checks: one in ten mirrored (shadow.health_rate), the first included.
        for _ in range(10):
            assert client.get("/health").status_code == 200
        wait_for(lambda: len(sink.pairs) == 5)
        stats = client.get("/_shadow/stats").json()
    assert stats["completed"] == 5 and stats["seen"] == 14
    assert stats["skipped"] == {"health_sample": 9}
    by_endpoint = {p.request.endpoint + ("+s" if p.request.stream else ""): p for p in sink.pairs}
    assert set(by_endpoint) == {"chat", "chat+s", "messages+s", "models", "health"}
    health = by_endpoint["health"]
    assert health.primary.body["service"] == "memory-proxy-sdk" and health.shadow is not None
    chat_pair = by_endpoint["chat"]
    assert chat_pair.primary.status == 200 and chat_pair.primary.body["object"] == "chat.completion"
    assert chat_pair.shadow is not None and chat_pair.shadow.body["id"] == "shadow"
    stream_pair = by_endpoint["messages+s"]
    assert stream_pair.primary.events is not None
    assert stream_pair.primary.events[0].event == "message_start"
    assert stream_pair.primary.ttft_ms is not None
    assert stream_pair.primary.time_to_headers_ms is not None
    assert stream_pair.request.client_family == "claude-code"
    assert stream_pair.request.conversation_id == "sess-1"
    assert stream_pair.request.model == "claude-sonnet-4.5"
    # What the shadow received: the same body, the query string, and the marker header.
    mirrored_messages = next(s for s in fake.seen if s["path"] == "/v1/messages")
    assert json.loads(mirrored_messages["body"]) == messages
    assert mirrored_messages["headers"][SHADOW_HEADER] == stream_pair.request.request_id
    assert all(SHADOW_HEADER in s["headers"] for s in fake.seen)


@pytest.mark.parametrize("mode", ["down", "slow", "error"])
def test_a_bad_shadow_changes_nothing_the_client_sees(
    primary_app: Any, sandbox: Any, mode: str
) -> None:
    fake = FakeShadow(
        mode="error" if mode == "error" else "ok", delay=1.0 if mode == "slow" else 0.0
    )
    sink = ListSink()
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 40,
        "messages": [{"role": "user", "content": "same bytes please"}],
    }
    with LoopbackServer(fake.app) as shadow:
        shadow_url = f"http://127.0.0.1:{free_port()}" if mode == "down" else shadow.url
        with (
            LoopbackServer(primary_app) as plain,
            LoopbackServer(mirrored(primary_app, shadow_url, sink, breaker_failures=3)) as wrapped,
        ):
            direct = httpx.post(plain.url + "/v1/messages", json=body, headers=AUTH)
            through = [
                httpx.post(wrapped.url + "/v1/messages", json=body, headers=AUTH) for _ in range(5)
            ]
            stats = httpx.get(wrapped.url + "/_shadow/stats").json()
    for reply in through:
        assert reply.status_code == direct.status_code == 200
        assert reply.content == direct.content  # byte for byte
    if mode == "down":
        # Three connection failures open the breaker; the rest are not even tried.
        assert stats["shadow_failed"] == 3
        assert stats["skipped"].get("breaker_open") == 2
        assert stats["breaker"] == "open"
        assert all(p.mirror_outcome == "failed:connect" for p in sink.pairs)
    if mode == "error":
        assert all(p.shadow is not None and p.shadow.status == 500 for p in sink.pairs)


def test_latency_with_a_slow_shadow_stays_close_to_mirror_off(
    primary_app: Any, sandbox: Any
) -> None:
    """Loose check (the benchmark measures it): a shadow 10x slower than the primary
    must not slow the primary's answers."""
    fake = FakeShadow(delay=0.25)
    sink = ListSink()
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 40,
        "messages": [{"role": "user", "content": "[sandbox:delay_ms=25] timing"}],
    }
    with (
        LoopbackServer(fake.app) as shadow,
        LoopbackServer(primary_app) as plain,
        LoopbackServer(mirrored(primary_app, shadow.url, sink, max_in_flight=64)) as wrapped,
    ):

        def median_ms(url: str) -> float:
            times = []
            with httpx.Client(headers=AUTH) as client:
                for _ in range(15):
                    began = time.perf_counter()
                    assert client.post(url + "/v1/messages", json=body).status_code == 200
                    times.append((time.perf_counter() - began) * 1000)
            return statistics.median(times)

        median_ms(plain.url)  # warm-up
        off = median_ms(plain.url)
        on = median_ms(wrapped.url)
    assert on < off * 1.5 + 15, (on, off)


def test_queue_full_requests_are_counted_not_mirrored(primary_app: Any, sandbox: Any) -> None:
    fake = FakeShadow(delay=0.5)
    sink = ListSink()
    with (
        LoopbackServer(fake.app) as shadow,
        LoopbackServer(
            mirrored(primary_app, shadow.url, sink, max_in_flight=1, queue_size=2)
        ) as wrapped,
    ):
        with httpx.Client(base_url=wrapped.url, headers=AUTH) as client:
            for i in range(12):
                assert client.post("/v1/chat/completions", json=chat(f"q{i}")).status_code == 200
            stats = client.get("/_shadow/stats").json()
    assert stats["skipped"]["queue_full"] >= 8
    assert stats["queued"] + stats["skipped"]["queue_full"] == 12
    assert stats["queued"] <= 4


def test_rate_cap_bounds_what_the_shadow_is_sent(primary_app: Any, sandbox: Any) -> None:
    fake = FakeShadow()
    sink = ListSink()
    with (
        LoopbackServer(fake.app) as shadow,
        LoopbackServer(mirrored(primary_app, shadow.url, sink, max_rate=2)) as wrapped,
    ):
        with httpx.Client(base_url=wrapped.url, headers=AUTH) as client:
            began = time.monotonic()
            for i in range(20):
                assert client.post("/v1/chat/completions", json=chat(f"r{i}")).status_code == 200
            elapsed = time.monotonic() - began
            wait_for(lambda: len(sink.pairs) == len(fake.seen))
            stats = client.get("/_shadow/stats").json()
    # A burst of 2, then 2 per second of the time the 20 requests took.
    assert 2 <= len(fake.seen) <= 2 + 2 * elapsed + 1
    assert stats["skipped"]["rate_limited"] == 20 - len(fake.seen)
    assert stats["queued"] == len(fake.seen) == len(sink.pairs)


def test_sampling_mirrors_whole_conversations(primary_app: Any, sandbox: Any) -> None:
    fake = FakeShadow()
    sink = ListSink()
    with (
        LoopbackServer(fake.app) as shadow,
        LoopbackServer(mirrored(primary_app, shadow.url, sink, sample_rate=50)) as wrapped,
    ):
        with httpx.Client(base_url=wrapped.url, headers=AUTH) as client:
            for conversation in range(12):
                for turn in range(3):
                    client.post(
                        "/v1/chat/completions",
                        json=chat(f"c{conversation} t{turn}"),
                        headers={"x-sm-conversation-id": f"conv-{conversation}"},
                    )
            wait_for(lambda: len(sink.pairs) == len(fake.seen))
            stats = client.get("/_shadow/stats").json()
    per_conversation: dict[str, int] = {}
    for pair in sink.pairs:
        key = pair.request.conversation_id or ""
        per_conversation[key] = per_conversation.get(key, 0) + 1
    assert set(per_conversation.values()) <= {3}  # all turns of a conversation, or none
    assert 0 < len(per_conversation) < 12
    assert stats["skipped"]["sample"] == (12 - len(per_conversation)) * 3


def test_unauthorized_requests_are_mirrored_too(primary_app: Any, sandbox: Any) -> None:
    fake = FakeShadow()
    sink = ListSink()
    with (
        LoopbackServer(fake.app) as shadow,
        LoopbackServer(mirrored(primary_app, shadow.url, sink)) as wrapped,
    ):
        reply = httpx.post(wrapped.url + "/v1/chat/completions", json=chat("no key"))
        assert reply.status_code == 401
        wait_for(lambda: len(sink.pairs) == 1)
    assert json.loads(fake.seen[0]["body"]) == chat("no key")
    assert sink.pairs[0].primary.status == 401
