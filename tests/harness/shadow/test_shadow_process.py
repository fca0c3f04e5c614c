"""`harness shadow` as users run it: --primary legacy, and SIGTERM with traffic in flight."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.loopback import LoopbackServer
from harness.runs.coverage import Coverage, coverage_of
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.engine import SHUTDOWN_OUTCOME
from harness.shadow.server import build_shadow
from harness.stack import Stack
from harness.store.capture_store import CaptureStore
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import FakeShadow

AUTH = {"x-api-key": MASTER_KEY}
HARNESS_YAML = Path(__file__).resolve().parents[3] / "config" / "harness.yaml"


def test_primary_legacy_forwards_clients_and_shadows_the_sdk(
    sdk_proxy: LoopbackServer, sandbox_config_path: Path, tmp_path: Path, sandbox: Any
) -> None:
    # Any proxy URL can play "legacy" here: what matters is who answers and who shadows.
    settings = HarnessSettings(
        shadow=ShadowSettings(
            primary="legacy", mirror_to=sdk_proxy.url, aa_rate=0.0, upstream="live"
        ),
        capture=CaptureSettings(store=tmp_path / "shadow.db"),
    )
    run = build_shadow(load_config(sandbox_config_path), settings)
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 30,
        "messages": [{"role": "user", "content": "primary legacy"}],
    }
    try:
        with LoopbackServer(run.app) as shadow:
            direct = httpx.post(sdk_proxy.url + "/v1/messages", json=body, headers=AUTH)
            through = httpx.post(shadow.url + "/v1/messages", json=body, headers=AUTH)
            assert through.status_code == 200 and through.content == direct.content
            deadline = time.monotonic() + 20
            while httpx.get(shadow.url + "/_shadow/stats").json()["completed"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        run.close()
    (stored,) = list(CaptureStore(tmp_path / "shadow.db").iter_pairs())
    pair = stored.pair
    assert (pair.primary.target, pair.shadow and pair.shadow.target) == ("legacy", "sdk")
    assert pair.primary.status == 200 and pair.shadow is not None and pair.shadow.status == 200


@pytest.mark.slow
def test_sigterm_during_traffic_loses_no_captured_pair(
    sdk_proxy: LoopbackServer, sandbox_config_path: Path, tmp_path: Path, sandbox: Any
) -> None:
    store_path = tmp_path / "shadow.db"
    with Stack(tmp_path / "run") as stack:
        shadow = stack.shadow(sandbox_config_path, HARNESS_YAML, sdk_proxy.url, store_path)
        assert shadow.pid is not None
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            futures = [pool.submit(_stream, shadow.url, i) for i in range(24)]
            # SIGTERM once streams are in flight (each takes ~1 s): on a busy machine the
            # first ones may take longer than any fixed sleep to arrive.
            deadline = time.monotonic() + 30
            while _seen(shadow.url) < 6 and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(shadow.pid, signal.SIGTERM)
            answered = sum(f.result() for f in futures)
        deadline = time.monotonic() + 30
        while shadow.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert shadow.poll() is not None
    assert answered > 0
    # Every request that got a whole answer has its pair in the store.
    assert CaptureStore(store_path).count() >= answered
    # The start opened a run, and the stop closed it with its counters: every request
    # seen is mirrored or skipped with its reason (a shutdown cut included).
    (run,) = CaptureStore(store_path).runs()
    coverage = coverage_of(run.counters)
    assert not run.open and run.mode == "replay" and run.pairs >= answered
    assert coverage is not None and coverage.complete and coverage.seen >= answered
    assert coverage.seen == coverage.mirrored + coverage.skipped_total


def _seen(url: str) -> int:
    """Requests the shadow process has begun to serve."""
    try:
        return int(httpx.get(url + "/_shadow/stats", headers=AUTH, timeout=5).json()["seen"])
    except (httpx.HTTPError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_without_mirror_to_replay_starts_the_legacy_stack_on_the_replay_upstream(
    sandbox_config_path: Path, tmp_path: Path, sandbox: Any
) -> None:
    store_path = tmp_path / "shadow.db"
    with Stack(tmp_path / "run") as stack:
        shadow = stack.shadow(sandbox_config_path, HARNESS_YAML, None, store_path)
        log = (tmp_path / "run" / "shadow.log").read_text()
        (mirror,) = re.findall(r"mirror: legacy proxy (http://127\.0\.0\.1:\d+)", log)
        for i in range(3):
            body = {
                "model": "claude-sonnet-4.5",
                "max_tokens": 20,
                "messages": [{"role": "user", "content": f"started mirror {i}"}],
            }
            reply = httpx.post(shadow.url + "/v1/messages", json=body, headers=AUTH, timeout=60)
            assert reply.status_code == 200
        deadline = time.monotonic() + 60
        while _completed(shadow.url) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    # The provider saw the SDK proxy's three calls; the mirror's were answered by replay.
    assert len(sandbox.api_requests()) == 3
    pairs = [stored.pair for stored in CaptureStore(store_path).iter_pairs()]
    assert len(pairs) == 3
    (run,) = CaptureStore(store_path).runs()
    assert (run.mode, run.primary_role, run.pairs, run.open) == ("replay", "sdk", 3, False)
    assert run.versions["sdk"].startswith("memory_proxy ")
    assert "LiteLLM server" in run.versions["legacy"]
    assert run.configs["config"]["sha256"] and run.configs["harness"]["sha256"]
    assert coverage_of(run.counters) == Coverage(3, 3, (), complete=True)
    for pair in pairs:
        assert pair.legacy is not None and pair.legacy.status == 200
        assert pair.upstream["legacy"][0]["path"] == "/v3/api.anthropic.com/v1/messages"
    # The mirror stack stopped with shadow mode.
    with pytest.raises(httpx.ConnectError):
        httpx.get(mirror + "/health/liveliness", timeout=2)


def _completed(url: str) -> int:
    try:
        return int(httpx.get(url + "/_shadow/stats", timeout=5).json()["completed"])
    except (httpx.HTTPError, ValueError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("upstream", ["replay", "live"])
def test_sigterm_with_a_hung_mirror_target_stops_promptly_and_loses_no_pair(
    sandbox_config_path: Path, tmp_path: Path, sandbox: Any, upstream: str
) -> None:
    """Streams in flight, a mirror target that never answers (a legacy stack in its
    cooldown cascade), more mirrors than ``max_in_flight``: SIGTERM ends the process once
    the streams are answered and ``drain_seconds`` has passed, not ``timeout_seconds``
    (120 s) later, and every answered stream has its pair, stored primary-only as
    ``not mirrored: shutdown``."""
    harness_yaml = tmp_path / "harness.yaml"
    harness_yaml.write_text(
        f"shadow:\n  upstream: {upstream}\n  max_in_flight: 2\n  aa_rate: 0\n"
        "  timeout_seconds: 120\n  drain_seconds: 1\n",
        encoding="utf-8",
    )
    store_path = tmp_path / "shadow.db"
    hung = FakeShadow(mode="hang")
    with LoopbackServer(hung.app) as target, Stack(tmp_path / "run") as stack:
        try:
            shadow = stack.shadow(sandbox_config_path, harness_yaml, target.url, store_path)
            assert shadow.pid is not None
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                futures = [pool.submit(_stream, shadow.url, i) for i in range(8)]
                deadline = time.monotonic() + 30
                while _seen(shadow.url) < 4 and time.monotonic() < deadline:
                    time.sleep(0.02)
                os.kill(shadow.pid, signal.SIGTERM)
                answered = sum(f.result() for f in futures)
            # Far less than the 120 s a mirror may take: the drain does not wait on it.
            deadline = time.monotonic() + 40
            while shadow.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert shadow.poll() is not None
        finally:
            hung.released.set()
    assert answered > 0
    pairs = [p.pair for p in CaptureStore(store_path).iter_pairs()]
    assert len(pairs) >= answered
    for pair in pairs:
        assert pair.shadow is None and pair.mirror_outcome == SHUTDOWN_OUTCOME
    ended = [p for p in pairs if p.primary.events and p.primary.events[-1].event == "message_stop"]
    assert len(ended) >= answered  # the primary's whole stream, kept


def _stream(url: str, i: int) -> bool:
    """One streamed Messages turn of ~1 s; True when the whole answer arrived."""
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": f"[sandbox:stream_delay_ms=40] turn {i}"}],
    }
    try:
        with httpx.stream("POST", url + "/v1/messages", json=body, headers=AUTH, timeout=30) as r:
            text = "".join(r.iter_text())
        return r.status_code == 200 and "message_stop" in text
    except httpx.HTTPError:
        return False
