"""The mirror engine against a struggling target: backpressure, and a stop that keeps every
pair without waiting on the target.

Real loopback servers: the SDK proxy app (against the sandbox) is the primary, a fake on
loopback is the mirror target (throttling like the LiteLLM server in cooldown, or hung).
Both shadow modes: in replay the engine waits for the primary's answer before it sends
the mirror; in live mode the mirror leaves at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.loopback import LoopbackServer
from harness.shadow.engine import SHUTDOWN_OUTCOME
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import FakeShadow, ListSink, chat, mirrored, wait_for

AUTH = {"x-api-key": MASTER_KEY}
MODES = ["live", "replay"]


@pytest.fixture(scope="module")
def primary_app(sandbox_config_path: Path) -> Any:
    return create_app(load_config(sandbox_config_path))


@pytest.mark.parametrize("upstream", MODES)
def test_a_throttling_target_gets_fewer_mirrors_then_recovers(
    primary_app: Any, sandbox: Any, upstream: str
) -> None:
    fake = FakeShadow(mode="throttle", delay=0.5)
    sink = ListSink()
    with LoopbackServer(fake.app) as target:
        # The breaker would stop mirroring altogether: here only backpressure acts.
        mirror = mirrored(
            primary_app,
            target.url,
            sink,
            max_in_flight=8,
            queue_size=4,
            breaker_failures=10_000,
            upstream=upstream,
        )
        with (
            LoopbackServer(mirror) as wrapped,
            httpx.Client(base_url=wrapped.url, headers=AUTH) as client,
        ):

            def stats() -> dict[str, Any]:
                return dict(client.get("/_shadow/stats").json())

            # Throttled: the limit comes down from max_in_flight.
            for i in range(8):
                assert client.post("/v1/chat/completions", json=chat(f"a{i}")).status_code == 200
            wait_for(lambda: len(sink.pairs) == 8, 20)
            lowered = stats()["backpressure"]["limit"]
            assert lowered < 8

            # Still throttled: the target never holds more than the lowered limit, and what
            # the engine cannot take while it spares the target is counted as backpressure.
            fake.peak = 0
            for i in range(20):
                assert client.post("/v1/chat/completions", json=chat(f"b{i}")).status_code == 200
            during = stats()
            assert fake.peak <= lowered
            skipped = during["skipped"]
            assert skipped.get("backpressure", 0) > 0 and "queue_full" not in skipped
            assert during["queued"] - 8 + skipped["backpressure"] == 20
            wait_for(lambda: len(sink.pairs) == stats()["queued"], 30)

            # The target recovers: good answers bring the limit back to max_in_flight.
            fake.mode, fake.delay = "ok", 0.0
            for i in range(60):
                assert client.post("/v1/chat/completions", json=chat(f"c{i}")).status_code == 200
                wait_for(lambda: len(sink.pairs) == stats()["queued"], 20)
                if stats()["backpressure"]["limit"] == 8:
                    break
            after = stats()
    assert after["backpressure"]["limit"] == 8 and after["backpressure"]["decreases"] >= 1
    statuses = {p.shadow.status for p in sink.pairs if p.shadow is not None}
    assert statuses == {429, 200}
    assert all(p.primary.status == 200 for p in sink.pairs)


@pytest.mark.parametrize("upstream", MODES)
def test_a_stop_keeps_every_pair_and_does_not_wait_on_a_hung_target(
    primary_app: Any, sandbox: Any, upstream: str
) -> None:
    """Two mirrors out to a target that never answers, four queued behind them: the stop
    gives the two ``drain_seconds``, sends none of the four, and stores all six
    primary-only. Without the deadline it would wait ``timeout_seconds`` (120 s here)."""
    fake = FakeShadow(mode="hang")
    sink = ListSink()
    with LoopbackServer(fake.app) as target:
        mirror = mirrored(
            primary_app,
            target.url,
            sink,
            max_in_flight=2,
            queue_size=50,
            timeout_seconds=120.0,
            drain_seconds=0.5,
            upstream=upstream,
        )
        try:
            with (
                LoopbackServer(mirror) as wrapped,
                httpx.Client(base_url=wrapped.url, headers=AUTH) as client,
            ):
                replies = [
                    client.post("/v1/chat/completions", json=chat(f"d{i}")) for i in range(6)
                ]
                wait_for(
                    lambda: (
                        len(fake.seen) == 2
                        and client.get("/_shadow/stats").json()["queue_depth"] == 4
                    ),
                    20,
                )
            # The server has stopped: its lifespan drained the mirror.
        finally:
            fake.released.set()
    stats = mirror.stats()
    assert len(fake.seen) == 2  # the queued four were never sent
    assert len(sink.pairs) == 6 == stats["completed"]
    assert stats["not_mirrored"] == {"shutdown": 6}
    for pair in sink.pairs:
        assert pair.shadow is None and pair.mirror_outcome == SHUTDOWN_OUTCOME
        assert pair.upstream_mode == upstream
    # Each pair still holds the primary's answer, as the client got it.
    assert sorted(p.primary.body["id"] for p in sink.pairs) == sorted(
        r.json()["id"] for r in replies
    )
