"""Shadow mode's ``GET /metrics``: the mirror's outcomes, breaker, queue, store and live
comparisons, on the serving process's one scrape target, moving by exactly what was sent.

The SDK proxy serves clients (its own request metrics share the scrape); the shadow
target is a fake on loopback, or a port nothing listens on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.loopback import LoopbackServer, free_port
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.dispatch import LocalDispatch
from harness.shadow.engine import MirrorEngine
from harness.shadow.metrics import ShadowCollector, live_summary
from harness.shadow.mirror import ShadowMirror
from harness.shadow.server import build_shadow
from harness.shadow.targets import MirrorTarget, MirrorTargets
from harness.store.capture_store import CaptureStore
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import FakeShadow
from tests.metrics_scrape import Scrape, scrape, wait_for_sample

USER_ID = "user-carol-shadow-3e8d"
CONVERSATION_ID = "conv-shadow-0b9f-secret"
OUTCOMES = "shadow_mirror_requests_total"


async def _ok(request: Request) -> Response:
    await request.body()
    return JSONResponse({"id": "shadow", "object": "chat.completion", "choices": []})


@pytest.fixture
def fake_target() -> Iterator[LoopbackServer]:
    app = Starlette(routes=[Route("/{path:path}", _ok, methods=["GET", "POST"])])
    with LoopbackServer(app) as server:
        yield server


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=url + "/v1",
        api_key=MASTER_KEY,
        max_retries=0,
        default_headers={"x-memory-user-id": USER_ID, "x-sm-conversation-id": CONVERSATION_ID},
    )


def _chat(url: str, model: str = "gpt-4o") -> None:
    _client(url).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def _messages(url: str) -> None:
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    reply = httpx.post(url + "/v1/messages", json=body, headers={"x-api-key": MASTER_KEY})
    assert reply.status_code == 200


def test_sidecar_counts_reach_the_serving_process_scrape(
    sandbox_config_path: Path, sandbox: Any, fake_target: LoopbackServer, tmp_path: Path
) -> None:
    """The default set-up: the mirror in its sidecar, its counters over the status channel."""
    config = load_config(sandbox_config_path)
    settings = HarnessSettings(
        shadow=ShadowSettings(mirror_to=fake_target.url, aa_rate=0.0, endpoints=("chat",)),
        capture=CaptureSettings(store=tmp_path / "shadow.db"),
    )
    run = build_shadow(config, settings)
    try:
        with LoopbackServer(run.app) as shadow:
            for _ in range(3):
                _chat(shadow.url)
            with pytest.raises(openai.NotFoundError):
                _chat(shadow.url, model="no-such-model")  # primary 404, target 200
            for _ in range(2):
                _messages(shadow.url)  # not a mirrored endpoint here

            m = wait_for_sample(
                shadow.url,
                MASTER_KEY,
                lambda s: s.value("shadow_store_rows_total", state="written") == 4,
            )
            refused = httpx.get(shadow.url + "/metrics", timeout=10)
    finally:
        run.close()

    assert m.value("shadow_requests_seen_total") == 6
    assert m.value(OUTCOMES, outcome="mirrored") == 4
    assert m.value(OUTCOMES, outcome="endpoint_filtered") == 2
    assert m.value(OUTCOMES) == 6
    assert m.value("shadow_pairs_total", result="stored") == 4
    comparisons = "shadow_pair_comparisons_total"
    assert m.value(comparisons, result="same_status") == 3
    assert m.value(comparisons, result="status_differs") == 1
    assert m.value("shadow_breaker_state", state="closed") == 1
    assert m.value("shadow_breaker_state", state="open") == 0
    assert m.value("shadow_sidecar_up") == 1
    assert m.value("shadow_queue_depth") == 0
    assert m.value("shadow_store_ok") == 1
    assert m.value("shadow_store_spilled_rows") == 0
    # The primary's own request metrics come on the same scrape.
    assert m.value("memory_proxy_requests_total", proxy="sdk", endpoint="chat") == 4
    assert m.value("memory_proxy_requests_total", proxy="sdk", endpoint="messages") == 2

    assert live_summary(m.text) == (
        "mirrored: 4 of 6 requests seen (2 skipped)",
        "difference rate: 25.0% (1 of 4 pairs differ in status)",
        "store: 4 written, 0 spilled, 0 lost (ok)",
    )
    assert refused.status_code == 401
    for needle in (*config.secrets, USER_ID, CONVERSATION_ID, "no-such-model"):
        assert needle not in m.text, needle


def _in_process(
    config_path: Path, store: CaptureStore, target_url: str, **shadow: Any
) -> tuple[ShadowMirror, Any]:
    """A shadow stack on this event loop (``LocalDispatch``), with ``store`` as its sink."""
    settings = HarnessSettings(
        shadow=ShadowSettings(mirror_to=target_url, aa_rate=0.0, **shadow),
        capture=CaptureSettings(store=Path(store.path)),
    )
    primary = create_app(load_config(config_path))
    engine = MirrorEngine(
        settings=settings,
        sink=store,
        targets=MirrorTargets(primary="sdk", shadow=MirrorTarget("legacy", target_url)),
        store_health=store.health,
    )
    mirror = ShadowMirror(primary, settings=settings, dispatch=LocalDispatch(engine))
    primary.state.metrics.register(ShadowCollector(mirror.stats))
    return mirror, primary


def test_breaker_open_and_target_failures_are_counted(
    sandbox_config_path: Path, sandbox: Any, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every mirror fails
    store = CaptureStore(tmp_path / "s.db")
    mirror, _ = _in_process(
        sandbox_config_path, store, dead, breaker_failures=1, breaker_cooldown_seconds=600
    )
    try:
        with LoopbackServer(mirror) as shadow:
            _chat(shadow.url)
            wait_for_sample(
                shadow.url, MASTER_KEY, lambda s: s.value("shadow_target_failures_total") == 1
            )
            for _ in range(2):
                _chat(shadow.url)
            m = scrape(shadow.url, MASTER_KEY)
    finally:
        store.close()
    assert m.value(OUTCOMES, outcome="mirrored") == 1
    assert m.value(OUTCOMES, outcome="breaker_open") == 2
    assert m.value("shadow_breaker_state", state="open") == 1
    assert m.value("shadow_pair_comparisons_total", result="shadow_failed") == 1


def test_sampled_out_and_rate_capped_are_counted(
    sandbox_config_path: Path, sandbox: Any, fake_target: LoopbackServer, tmp_path: Path
) -> None:
    store = CaptureStore(tmp_path / "s.db")
    # One mirror a minute: the first request takes the bucket's one token.
    capped, _ = _in_process(sandbox_config_path, store, fake_target.url, max_rate=1 / 60)
    sampled, _ = _in_process(sandbox_config_path, store, fake_target.url, sample_rate=0.0)
    try:
        with LoopbackServer(capped) as a, LoopbackServer(sampled) as b:
            for _ in range(3):
                _chat(a.url)
                _chat(b.url)
            wait_for_sample(a.url, MASTER_KEY, lambda s: _stored(s) == 1)
            ma, mb = scrape(a.url, MASTER_KEY), scrape(b.url, MASTER_KEY)
    finally:
        store.close()
    assert (ma.value(OUTCOMES, outcome="mirrored"), ma.value(OUTCOMES, outcome="rate_capped")) == (
        1,
        2,
    )
    assert mb.value(OUTCOMES, outcome="sampled_out") == 3
    assert mb.value(OUTCOMES, outcome="mirrored") == 0


def _stored(s: Scrape) -> float:
    return s.value("shadow_pairs_total", result="stored")


def test_a_store_that_spills_shows_on_the_scrape(
    sandbox_config_path: Path, sandbox: Any, fake_target: LoopbackServer, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    store = CaptureStore(path, busy_timeout_s=0.05, batch_size=1)
    assert store.flush(10)
    # Another connection holds the database's write lock: every write fails and spills.
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    mirror, _ = _in_process(sandbox_config_path, store, fake_target.url)
    try:
        with LoopbackServer(mirror) as shadow:
            for _ in range(2):
                _chat(shadow.url)
            m = wait_for_sample(
                shadow.url, MASTER_KEY, lambda s: s.value("shadow_store_spilled_rows") == 2
            )
            assert m.value("shadow_store_ok") == 0
            assert m.value("shadow_store_failed_writes_total") >= 1
            assert m.value("shadow_store_rows_total", state="written") == 0
            # The lock gone, the next pair's write takes the spilled rows with it.
            locker.execute("ROLLBACK")
            _chat(shadow.url)
            m = wait_for_sample(
                shadow.url,
                MASTER_KEY,
                lambda s: s.value("shadow_store_rows_total", state="written") == 3,
            )
            assert m.value("shadow_store_spilled_rows") == 0
            assert m.value("shadow_store_rows_total", state="lost") == 0
    finally:
        locker.close()
        store.close()


def test_backpressure_and_shutdown_outcomes_are_counted(
    sandbox_config_path: Path, sandbox: Any, tmp_path: Path
) -> None:
    """A throttling target lowers the limit (a gauge) and what is refused meanwhile is
    ``backpressure``; what a stop leaves unsent is the ``shutdown`` outcome, no longer
    ``mirrored``, and the outcomes still add up to the requests seen."""
    fake = FakeShadow(mode="throttle", delay=0.3)
    store = CaptureStore(tmp_path / "s.db")
    try:
        with LoopbackServer(fake.app) as target:
            mirror, _ = _in_process(
                sandbox_config_path,
                store,
                target.url,
                max_in_flight=4,
                queue_size=1,
                breaker_failures=10_000,
                drain_seconds=0.2,
            )
            with LoopbackServer(mirror) as shadow:
                _chat(shadow.url)
                wait_for_sample(
                    shadow.url,
                    MASTER_KEY,
                    lambda s: s.value("shadow_mirror_concurrency_limit") < 4,
                )
                fake.mode = "hang"  # and now it stops answering at all
                for _ in range(12):
                    _chat(shadow.url)
                during = scrape(shadow.url, MASTER_KEY)
            registry = CollectorRegistry()
            registry.register(ShadowCollector(mirror.stats))
            after = Scrape.of(generate_latest(registry).decode())
            fake.released.set()
    finally:
        store.close()
    assert during.value(OUTCOMES, outcome="backpressure") > 0
    assert during.value(OUTCOMES, outcome="queue_full") == 0
    assert during.value("shadow_mirror_concurrency_decreases_total") >= 1
    shutdown = after.value(OUTCOMES, outcome="shutdown")
    assert shutdown >= 1
    assert after.value(OUTCOMES, outcome="mirrored") + shutdown == mirror.stats()["queued"]
    assert after.value(OUTCOMES) == 13 == after.value("shadow_requests_seen_total")
