"""The mirror sidecar: the primary ships what it saw, the sidecar mirrors and stores it.

Real processes on loopback: the shadow target is a Starlette app under uvicorn, the
sidecar is the real ``python -m harness.shadow.sidecar`` child, the store real SQLite.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from harness.loopback import LoopbackServer
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.mirror import ShadowMirror
from harness.shadow.sidecar import SidecarDispatch, SidecarSpec
from harness.shadow.targets import MirrorTarget, MirrorTargets
from harness.stack import Stack
from harness.store.capture_store import CaptureStore
from memory_proxy.config import load_config
from memory_proxy.memory_router import UserIdMappings
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import FakeShadow, chat, wait_for

AUTH = {"x-api-key": MASTER_KEY}
HARNESS_YAML = Path(__file__).resolve().parents[3] / "config" / "harness.yaml"


def sidecar_settings(store: Path, **shadow: Any) -> HarnessSettings:
    base = {"aa_rate": 0.0, "timeout_seconds": 10.0, "mirror_nice": 7, **shadow}
    return HarnessSettings(
        shadow=ShadowSettings(**base), capture=CaptureSettings(store=store, store_prompts="full")
    )


@pytest.fixture
def fake_shadow() -> Iterator[tuple[FakeShadow, LoopbackServer]]:
    fake = FakeShadow()
    with LoopbackServer(fake.app) as server:
        yield fake, server


def sidecar_mirror(
    primary_app: Any,
    settings: HarnessSettings,
    shadow_url: str,
    secrets: frozenset[str] = frozenset(),
) -> tuple[ShadowMirror, SidecarDispatch]:
    dispatch = SidecarDispatch(
        SidecarSpec(
            settings=settings,
            secrets=secrets,
            user_id_mappings=UserIdMappings(),
            targets=MirrorTargets(primary="sdk", shadow=MirrorTarget("legacy", shadow_url)),
            nice=settings.shadow.mirror_nice,
        )
    )
    return ShadowMirror(primary_app, settings=settings, dispatch=dispatch), dispatch


@pytest.fixture(scope="module")
def primary_app(sandbox_config_path: Path) -> Any:
    from memory_proxy.app import create_app

    return create_app(load_config(sandbox_config_path))


def test_pairs_are_mirrored_and_stored_by_the_sidecar_not_the_primary(
    primary_app: Any, fake_shadow: tuple[FakeShadow, LoopbackServer], sandbox: Any, tmp_path: Path
) -> None:
    fake, shadow = fake_shadow
    store = tmp_path / "shadow.db"
    settings = sidecar_settings(store)
    app, dispatch = sidecar_mirror(primary_app, settings, shadow.url, frozenset({MASTER_KEY}))
    threads_before = {t.name for t in threading.enumerate()}
    try:
        with (
            LoopbackServer(app) as server,
            httpx.Client(base_url=server.url, headers=AUTH) as client,
        ):
            assert client.post("/v1/chat/completions", json=chat("one")).status_code == 200
            with client.stream("POST", "/v1/chat/completions", json=chat("two", True)) as r:
                streamed = b"".join(r.iter_bytes())
            wait_for(lambda: client.get("/_shadow/stats").json()["completed"] == 2, 20)
            wait_for(lambda: client.get("/_shadow/stats").json()["store"]["written"] == 2, 20)
            stats = client.get("/_shadow/stats").json()
            sidecar = psutil.Process(stats["sidecar_pid"])
            # It yields the CPU to the primary: every thread niced and under SCHED_IDLE.
            for thread in sidecar.threads():
                assert os.getpriority(os.PRIO_PROCESS, thread.id) == 7
                assert os.sched_getscheduler(thread.id) == os.SCHED_IDLE
            assert sidecar.pid != os.getpid() and os.getpgid(sidecar.pid) != os.getpgid(0)
            # No store writer and no mirror worker in the serving process.
            assert "capture-store" not in {t.name for t in threading.enumerate()} - threads_before
    finally:
        assert dispatch.wait() == 0
    assert stats["seen"] == 2 and stats["queued"] == 2 and stats["sidecar_running"]
    assert stats["store"]["ok"] and stats["store"]["lost"] == 0
    assert len(fake.seen) == 2
    pairs = {p.pair.request.stream: p.pair for p in CaptureStore(store).iter_pairs()}
    assert set(pairs) == {False, True}
    assert pairs[False].primary.body["object"] == "chat.completion"
    shadow_side = pairs[False].shadow
    assert shadow_side is not None and shadow_side.body["id"] == "shadow"
    events = pairs[True].primary.events
    assert events is not None and events[-1].data == "[DONE]"
    assert pairs[True].primary.ttft_ms is not None
    # The master key (a configured secret) reached the sidecar only to be redacted.
    assert MASTER_KEY.encode() not in store.read_bytes()
    assert b"[DONE]" in streamed


def test_a_full_sidecar_queue_stops_the_primary_shipping(
    primary_app: Any, sandbox: Any, tmp_path: Path
) -> None:
    fake = FakeShadow(delay=0.5)
    settings = sidecar_settings(tmp_path / "shadow.db", max_in_flight=1, queue_size=2)
    with LoopbackServer(fake.app) as shadow:
        app, dispatch = sidecar_mirror(primary_app, settings, shadow.url)
        try:
            with (
                LoopbackServer(app) as server,
                httpx.Client(base_url=server.url, headers=AUTH) as client,
            ):
                # Give the sidecar time to start and report that it has room.
                wait_for(lambda: client.get("/_shadow/stats").json()["breaker"] == "closed", 20)
                wait_for(lambda: dispatch.remote != {}, 20)
                for i in range(30):
                    assert (
                        client.post("/v1/chat/completions", json=chat(f"q{i}")).status_code == 200
                    )
                    time.sleep(0.02)

                # The sidecar reports its counts over the status channel, a moment after
                # it sheds: wait until every request is accounted for, then read them.
                def accounted() -> int:
                    stats = client.get("/_shadow/stats").json()
                    return int(stats["queued"] + stats["skipped"].get("queue_full", 0))

                wait_for(lambda: accounted() == 30, 20)
                stats = client.get("/_shadow/stats").json()
        finally:
            dispatch.wait()
    shed = stats["skipped"]["queue_full"]
    # Most requests were shed, some by the primary itself without shipping them.
    assert shed >= 20 and dispatch.skipped["queue_full"] > 0
    assert stats["queued"] + shed == 30
    assert CaptureStore(tmp_path / "shadow.db").count() == stats["queued"]


def test_the_primary_applies_the_rate_cap_before_shipping(
    primary_app: Any, fake_shadow: tuple[FakeShadow, LoopbackServer], sandbox: Any, tmp_path: Path
) -> None:
    fake, shadow = fake_shadow
    settings = sidecar_settings(tmp_path / "shadow.db", max_rate=1)
    app, dispatch = sidecar_mirror(primary_app, settings, shadow.url)
    try:
        with (
            LoopbackServer(app) as server,
            httpx.Client(base_url=server.url, headers=AUTH) as client,
        ):
            wait_for(lambda: dispatch.remote != {}, 20)
            began = time.monotonic()
            for i in range(10):
                assert client.post("/v1/chat/completions", json=chat(f"c{i}")).status_code == 200
            elapsed = time.monotonic() - began
            queued = dispatch._next_token  # frames shipped to the sidecar
            wait_for(lambda: client.get("/_shadow/stats").json()["completed"] == queued, 20)
            stats = client.get("/_shadow/stats").json()
    finally:
        dispatch.wait()
    # Decided in the primary: what the cap refused was never shipped.
    assert 1 <= queued <= 1 + elapsed + 1
    assert dispatch.skipped["rate_limited"] == 10 - queued
    # The sidecar did not apply the cap a second time to what it was sent.
    assert stats["queued"] == queued == len(fake.seen)


def test_a_dead_sidecar_is_reported_and_the_primary_keeps_serving(
    primary_app: Any, fake_shadow: tuple[FakeShadow, LoopbackServer], sandbox: Any, tmp_path: Path
) -> None:
    _, shadow = fake_shadow
    settings = sidecar_settings(tmp_path / "shadow.db")
    app, dispatch = sidecar_mirror(primary_app, settings, shadow.url)
    try:
        with (
            LoopbackServer(app) as server,
            httpx.Client(base_url=server.url, headers=AUTH) as client,
        ):
            assert client.post("/v1/chat/completions", json=chat("before")).status_code == 200
            wait_for(lambda: client.get("/_shadow/stats").json()["completed"] == 1, 20)
            os.kill(dispatch.process.pid, signal.SIGKILL)
            dispatch.process.wait(10)
            wait_for(lambda: not dispatch.accepting, 10)
            replies = [
                client.post("/v1/chat/completions", json=chat(f"after {i}")) for i in range(5)
            ]
            stats = client.get("/_shadow/stats").json()
    finally:
        dispatch.wait()
    assert all(r.status_code == 200 for r in replies)
    assert stats["sidecar_running"] is False
    # Not mirrored, and said so: nothing is lost silently.
    assert stats["skipped"].get("sidecar_down", 0) + stats["skipped"].get("queue_full", 0) == 5
    assert CaptureStore(tmp_path / "shadow.db").count() == 1


@pytest.mark.slow
def test_a_killed_primary_leaves_its_sidecar_to_finish_and_store_every_pair(
    sdk_proxy: LoopbackServer, sandbox_config_path: Path, tmp_path: Path, sandbox: Any
) -> None:
    store = tmp_path / "shadow.db"
    with Stack(tmp_path / "run") as stack:
        shadow = stack.shadow(sandbox_config_path, HARNESS_YAML, sdk_proxy.url, store)
        body = {
            "model": "claude-sonnet-4.5",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "[sandbox:delay_ms=300] slow mirror"}],
        }
        with httpx.Client(base_url=shadow.url, headers=AUTH, timeout=30) as client:
            for _ in range(6):
                assert client.post("/v1/messages", json=body).status_code == 200
            stats = client.get("/_shadow/stats").json()
        assert stats["seen"] == 6
        sidecar = psutil.Process(stats["sidecar_pid"])
        assert shadow.pid is not None
        # What the killed process started besides its sidecar (the latency twin) outlives
        # it: this test stops those itself, by PID.
        orphans = [
            child for child in psutil.Process(shadow.pid).children() if child.pid != sidecar.pid
        ]
        os.kill(shadow.pid, signal.SIGKILL)  # no clean shutdown, no lifespan
        try:
            sidecar.wait(60)  # it sees the socket close, finishes its mirrors and exits
        finally:
            for orphan in orphans:
                with contextlib.suppress(psutil.NoSuchProcess):
                    orphan.terminate()
                    orphan.wait(10)
    assert CaptureStore(store).count() == 6
