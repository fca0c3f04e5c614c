"""Shadow mode in replay, end to end: the real LiteLLM server and legacy proxy as the mirror,
a provider whose answers vary per call, and nothing reaching it from the mirror side.

The provider (the sandbox, with nondeterministic replies) serves only the SDK proxy. The
legacy stack's provider base URLs point at the replay upstream: every answer it gets is
the one the provider gave the primary. So the provider counts exactly the primary's
calls, both sides' calls are in the store, and the two proxies' answers agree exactly on
content, tool calls, finish reason and usage, though no two provider answers are alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.compare import Comparator, Verdict
from harness.loopback import LoopbackServer, free_port
from harness.sandbox import SandboxSettings
from harness.sandbox import create_app as create_sandbox
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.server import build_shadow, replay_url
from harness.store.capture_store import CaptureStore
from memory_proxy.config import load_config
from memory_proxy.legacy_proxy import create_legacy_app
from memory_proxy.litellm_server import LiteLLMServer
from tests.conftest import MASTER_KEY

pytestmark = pytest.mark.slow

AUTH = {"x-api-key": MASTER_KEY, "user-agent": "claude-cli/2.1.0 (external, cli)"}
# The proxies' answers must agree exactly in these under replay: no model randomness.
EXACT = {"content", "tool_calls", "finish_reason", "usage", "stream_sequence", "stream_ending"}
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/chat/completions", {"model": "gpt-4o", "stream": False}),
    ("/v1/chat/completions", {"model": "gpt-4o", "stream": True}),
    ("/v1/messages", {"model": "claude-sonnet-4.5", "stream": False}),
    ("/v1/messages", {"model": "claude-sonnet-4.5", "stream": True}),
    ("/v1/chat/completions", {"model": "claude-sonnet-4.5", "stream": False}),
    ("/v1/chat/completions", {"model": "claude-sonnet-4.5", "stream": True}),
]


@pytest.fixture
def provider() -> Iterator[SandboxControl]:
    settings = SandboxSettings(nondeterministic=True, seed=7)
    with LoopbackServer(create_sandbox(settings)) as server, SandboxControl(server.url) as control:
        yield control


def test_replay_sends_the_provider_nothing_from_the_mirror_and_leaves_no_model_noise(
    provider: SandboxControl, tmp_path: Path
) -> None:
    fast = "memory_proxy:\n  retry_backoff_seconds: 0.05\n"
    sdk_config = write_sandbox_config(provider.url, tmp_path / "sdk.yaml", extra=fast)
    port = free_port()
    legacy_config = write_sandbox_config(f"http://127.0.0.1:{port}", tmp_path / "legacy.yaml")
    store_path = tmp_path / "shadow.db"
    settings = HarnessSettings(
        shadow=ShadowSettings(upstream="replay", replay_listen=f"127.0.0.1:{port}", aa_rate=100),
        capture=CaptureSettings(store=store_path, store_prompts="full"),
    )
    with (
        LiteLLMServer(
            legacy_config, port=free_port(), log_path=tmp_path / "litellm.log", ready_timeout=180
        ) as llm,
        LoopbackServer(create_legacy_app(load_config(legacy_config), llm.url)) as legacy,
    ):
        settings = settings.with_overrides("shadow", mirror_to=legacy.url)
        run = build_shadow(load_config(sdk_config), settings)
        assert run.settings is not None and replay_url(run.settings) == f"http://127.0.0.1:{port}"
        try:
            with (
                LoopbackServer(run.app) as shadow,
                httpx.Client(base_url=shadow.url, headers=AUTH, timeout=60) as client,
            ):
                for i, (path, extra) in enumerate(REQUESTS):
                    body = {
                        "max_tokens": 40,
                        "messages": [{"role": "user", "content": f"replay turn {i}"}],
                        **extra,
                    }
                    assert client.post(path, json=body).status_code == 200
                _wait_for(lambda: CaptureStore(store_path).count() == len(REQUESTS))
                # The sidecar reports its counters every 100 ms: read a report made after
                # the last pair was done.
                _wait_for(lambda: client.get("/_shadow/stats").json()["completed"] == len(REQUESTS))
                stats = client.get("/_shadow/stats").json()
                metrics = client.get("/metrics").text
        finally:
            run.close()

    pairs = [stored.pair for stored in CaptureStore(store_path).iter_pairs()]
    assert len(pairs) == len(REQUESTS)
    assert {pair.upstream_mode for pair in pairs} == {"replay"}  # as stored, for the report
    assert f'shadow_replay_calls_total{{result="replayed"}} {2 * len(REQUESTS)}.0' in metrics
    assert 'shadow_replay_calls_total{result="miss"} 0.0' in metrics
    assert stats["replay"]["misses"] == 0 and stats["primary_unrecorded"] == 0
    assert stats["replay"]["served"] == 2 * len(REQUESTS)  # the mirror and its A/A repeat
    # The provider saw the SDK proxy's calls and nothing else.
    sdk_calls = [call for pair in pairs for call in pair.upstream["sdk"]]
    assert len(provider.api_requests()) == len(sdk_calls) == len(REQUESTS)
    # The tap sees calls as sent: the provider's cookie, once set, is on the later ones.
    by_time = sorted(sdk_calls, key=lambda call: call["time"])
    assert by_time[0]["cookie_issued"] and all(call["cookies"] for call in by_time[1:])
    comparator = Comparator()
    for pair in pairs:
        (sdk_call,) = pair.upstream["sdk"]
        legacy_calls = pair.upstream["legacy"]
        assert legacy_calls, "the mirror side's provider call reached the replay upstream"
        # The A/A repeat's call is kept apart: no duplicate of the mirror's.
        assert len(legacy_calls) == len(pair.upstream["legacy:repeat"]) == 1
        # Memory routing is evidenced without a sandbox behind the mirror.
        for name in ("x-sm-user-id", "x-sm-conversation-id"):
            assert legacy_calls[0]["headers"].get(name) == sdk_call["headers"].get(name)
        assert not EXACT & _differing(comparator.compare(pair)), pair.request.path
        assert pair.legacy_repeat is not None
        assert not EXACT & _differing(comparator.compare_repeat(pair))


def test_replay_with_a_legacy_primary_sends_the_provider_nothing_from_the_mirror(
    provider: SandboxControl, tmp_path: Path
) -> None:
    """``--primary legacy``: the legacy stack answers clients, its LiteLLM server calls the
    provider through the recording relay, and the SDK proxy (the mirror) is answered by
    replay with what the relay recorded."""
    config_path = write_sandbox_config(
        provider.url, tmp_path / "config.yaml", extra="litellm_settings:\n  num_retries: 0\n"
    )
    config = load_config(config_path)
    store_path = tmp_path / "shadow.db"
    legacy_port = free_port()
    settings = HarnessSettings(
        shadow=ShadowSettings(
            primary="legacy",
            mirror_to=f"http://127.0.0.1:{legacy_port}",
            upstream="replay",
            aa_rate=100,  # asked for, and not sent: it would reach the provider
            mirror_process=False,
        ),
        capture=CaptureSettings(store=store_path, store_prompts="full"),
    )
    run = build_shadow(config, settings)
    try:
        assert run.relay_config is not None
        with (
            LiteLLMServer(
                run.relay_config,
                port=free_port(),
                log_path=tmp_path / "litellm.log",
                ready_timeout=180,
            ) as llm,
            LoopbackServer(create_legacy_app(config, llm.url), legacy_port),
            LoopbackServer(run.app) as shadow,
            httpx.Client(base_url=shadow.url, headers=AUTH, timeout=60) as client,
        ):
            before = _generations(provider)
            for i, (path, extra) in enumerate(REQUESTS[:4]):
                body = {
                    "max_tokens": 40,
                    "messages": [{"role": "user", "content": f"legacy primary turn {i}"}],
                    **extra,
                }
                assert client.post(path, json=body).status_code == 200
            _wait_for(lambda: run.store is not None and _flushed(run.store) == 4)
            stats = client.get("/_shadow/stats").json()
            generations = _generations(provider) - before
    finally:
        run.close()

    pairs = [stored.pair for stored in CaptureStore(store_path).iter_pairs()]
    assert len(pairs) == 4 and {p.primary.target for p in pairs} == {"legacy"}
    # The provider saw the legacy stack's calls, one per request, and nothing else.
    assert generations == 4
    assert stats["replay"]["misses"] == 0 and stats["primary_unrecorded"] == 0
    assert stats["replay"]["served"] == 4
    comparator = Comparator()
    for pair in pairs:
        (legacy_call,) = pair.upstream["legacy"]  # recorded by the relay
        (sdk_call,) = pair.upstream["sdk"]  # as it reached the replay upstream
        assert legacy_call["status"] == sdk_call["status"] == 200
        assert pair.shadow is not None and pair.shadow.status == 200
        assert pair.shadow_repeat is None
        verdict = comparator.compare(pair)
        assert verdict is not None
        differing = [d for d in verdict.differences if not d.ignored and d.category in EXACT]
        if pair.request.endpoint == "chat" and pair.request.stream:
            # A replay artifact, not a proxy defect: the LiteLLM server asks the provider
            # for a usage chunk (stream_options.include_usage) and keeps it from the
            # client; the SDK proxy, answered with that same recorded stream, passes it on.
            assert [(d.category, d.primary, d.candidate) for d in differing] == [
                (
                    "stream_sequence",
                    ["role", "content", "finish", "usage", "[DONE]"],
                    ["role", "content", "finish", "[DONE]"],
                )
            ]
            continue
        assert not differing, (pair.request.path, pair.request.stream, differing)


def _generations(provider: SandboxControl) -> int:
    return sum(1 for r in provider.api_requests() if r["method"] == "POST")


def test_live_mirroring_pays_twice_and_sees_the_model_s_noise(
    provider: SandboxControl, tmp_path: Path
) -> None:
    """The contrast: the mirror calls the provider itself, which answers it differently."""
    config = write_sandbox_config(provider.url, tmp_path / "live.yaml")
    store_path = tmp_path / "shadow.db"
    settings = HarnessSettings(
        shadow=ShadowSettings(upstream="live", aa_rate=0, mirror_process=False),
        capture=CaptureSettings(store=store_path, store_prompts="full"),
    )
    with (
        LiteLLMServer(
            config, port=free_port(), log_path=tmp_path / "litellm.log", ready_timeout=180
        ) as llm,
        LoopbackServer(create_legacy_app(load_config(config), llm.url)) as legacy,
    ):
        run = build_shadow(
            load_config(config), settings.with_overrides("shadow", mirror_to=legacy.url)
        )
        try:
            with (
                LoopbackServer(run.app) as shadow,
                httpx.Client(base_url=shadow.url, headers=AUTH, timeout=60) as client,
            ):
                for i, (path, extra) in enumerate(REQUESTS[:4]):
                    body = {
                        "max_tokens": 40,
                        "messages": [{"role": "user", "content": f"live {i}"}],
                    }
                    assert client.post(path, json={**body, **extra}).status_code == 200
                _wait_for(lambda: run.store is not None and _flushed(run.store) == 4)
        finally:
            run.close()
    pairs = [stored.pair for stored in CaptureStore(store_path).iter_pairs()]
    assert {pair.upstream_mode for pair in pairs} == {"live"}
    # Every request paid twice (the LiteLLM server's own model-list probe aside).
    generations = [r for r in provider.api_requests() if r["method"] == "POST"]
    assert len(generations) == 2 * len(pairs)
    assert all("content" in _differing(Comparator().compare(pair)) for pair in pairs)


def _flushed(store: CaptureStore) -> int:
    store.flush(5)
    return store.count()


def _differing(verdict: Verdict | None) -> set[str]:
    assert verdict is not None
    return {category for category, differs in verdict.categories.items() if differs}


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
