"""Live mirroring (``shadow.upstream: live``): the mirror side calls the provider itself,
with its memory ids suffixed, and within a daily budget.

Real loopback servers: the SDK proxy app in front of the shared sandbox is the primary;
a second SDK proxy in front of its own sandbox is the mirror target, so each sandbox's
captures say exactly what one side sent the provider.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.compare import Comparator
from harness.loopback import LoopbackServer
from harness.report.collect import EvidenceCollector
from harness.report.tally import RunInfo
from harness.sandbox import SandboxSettings
from harness.sandbox import create_app as create_sandbox
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.shadow.live_budget import LiveBudget
from harness.upstream.join import attach_upstream
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import ListSink, chat, mirrored, wait_for

AUTH = {"x-api-key": MASTER_KEY}
SUFFIX = "-shadow"


@pytest.fixture(scope="module")
def primary_app(sandbox_config_path: Path) -> Any:
    return create_app(load_config(sandbox_config_path))


@pytest.fixture(scope="module")
def mirror_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the mirror proxy's URL, its own sandbox's URL)."""
    with LoopbackServer(create_sandbox(SandboxSettings())) as sandbox:
        config = write_sandbox_config(
            sandbox.url, tmp_path_factory.mktemp("mirror") / "sandbox.yaml"
        )
        with LoopbackServer(create_app(load_config(config))) as proxy:
            yield proxy.url, sandbox.url


def _calls(sandbox_url: str, user_prefix: str) -> list[dict[str, Any]]:
    with SandboxControl(sandbox_url) as control:
        return [
            c
            for c in control.requests()
            if c.get("endpoint")
            and str((c.get("headers") or {}).get("x-sm-user-id", "")).startswith(user_prefix)
        ]


def _run() -> RunInfo:
    return RunInfo(0.0, "test", "test", "config.yaml", None, "store.db")


def test_the_suffix_reaches_the_provider_on_the_mirror_side_only(
    primary_app: Any, sandbox: SandboxControl, mirror_side: tuple[str, str]
) -> None:
    mirror_url, mirror_sandbox = mirror_side
    sink = ListSink()
    user = "live-iso"
    with LoopbackServer(mirrored(primary_app, mirror_url, sink, upstream="live")) as server:
        oai = openai.OpenAI(base_url=server.url + "/v1", api_key=MASTER_KEY, max_retries=0)
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "isolated one"}],
            extra_headers={"x-memory-user-id": user, "x-sm-conversation-id": "conv-1"},
        )
        ant = anthropic.Anthropic(base_url=server.url, api_key=MASTER_KEY, max_retries=0)
        with ant.messages.stream(
            model="claude-sonnet-4.5",
            max_tokens=50,
            messages=[{"role": "user", "content": "isolated two"}],
            extra_headers={"x-memory-user-id": user, "x-claude-code-session-id": "sess-2"},
        ) as stream:
            stream.get_final_message()
        wait_for(lambda: len(sink.pairs) == 2, 20)

    primary_calls = _calls(sandbox.url, user)
    mirror_calls = _calls(mirror_sandbox, user)
    assert len(primary_calls) == len(mirror_calls) == 2
    primary_ids = {
        (c["headers"]["x-sm-user-id"], c["headers"]["x-sm-conversation-id"]) for c in primary_calls
    }
    mirror_ids = {
        (c["headers"]["x-sm-user-id"], c["headers"]["x-sm-conversation-id"]) for c in mirror_calls
    }
    assert primary_ids == {(user, "conv-1"), (user, "sess-2")}
    assert mirror_ids == {(user + SUFFIX, "conv-1" + SUFFIX), (user + SUFFIX, "sess-2" + SUFFIX)}

    # The upstream join keys calls by content, never by memory ids: the suffixed mirror
    # calls are attached to their pairs like the primary's.
    windows = [
        (i, p.request.correlation_key, p.request.received_at, 10.0)
        for i, p in enumerate(sink.pairs)
    ]
    captures = {"sdk": primary_calls, "legacy": mirror_calls}
    joined = attach_upstream(windows, captures).calls
    assert all(len(joined[i]["sdk"]) == len(joined[i]["legacy"]) == 1 for i in range(2))
    pairs = [type(p)(**{**p.__dict__, "upstream": joined[i]}) for i, p in enumerate(sink.pairs)]

    # The routing gate takes it off too: both proxies routed alike; the isolation is seen.
    collector = EvidenceCollector(Comparator(), _run(), live_suffix=SUFFIX)
    for pair in pairs:
        collector.add(pair)
    routing = collector.evidence.routing
    assert sum(t.compared for t in routing.values()) == 2
    assert sum(t.mismatched for t in routing.values()) == 0
    live = collector.evidence.live
    assert (live.pairs, live.requests, live.checked, live.isolated) == (2, 2, 2, 2)
    assert live.tokens > 0
    # Without the suffix accounted for, every pair would read as routed differently.
    blind = EvidenceCollector(Comparator(), _run())
    for pair in pairs:
        blind.add(pair)
    assert sum(t.mismatched for t in blind.evidence.routing.values()) == 2


def test_replay_mode_adds_no_suffix(
    primary_app: Any, sandbox: SandboxControl, mirror_side: tuple[str, str]
) -> None:
    """The suffix is live mode's: a replayed mirror writes no memory, it keeps the ids.
    (Here the mirror proxy's provider is its own sandbox, not the replay upstream, so
    what it was sent shows.)"""
    mirror_url, mirror_sandbox = mirror_side
    sink = ListSink()
    user = "replay-ids"
    with LoopbackServer(mirrored(primary_app, mirror_url, sink, upstream="replay")) as server:
        httpx.post(
            server.url + "/v1/chat/completions",
            json=chat("replayed"),
            headers={**AUTH, "x-memory-user-id": user},
        )
        wait_for(lambda: len(sink.pairs) == 1, 20)
    (call,) = _calls(mirror_sandbox, user)
    assert call["headers"]["x-sm-user-id"] == user


@pytest.mark.parametrize("cap", ["requests", "tokens"])
def test_the_budget_stops_mirroring_at_the_cap(
    primary_app: Any, sandbox: SandboxControl, mirror_side: tuple[str, str], cap: str
) -> None:
    mirror_url, mirror_sandbox = mirror_side
    sink = ListSink()
    user = f"live-budget-{cap}"
    # Two requests' worth, or one token: the first answer's usage passes it.
    budget = {"live_budget_requests": 2} if cap == "requests" else {"live_budget_tokens": 1}
    allowed = 2 if cap == "requests" else 1
    engine_app = mirrored(primary_app, mirror_url, sink, upstream="live", **budget)
    with (
        LoopbackServer(engine_app) as server,
        httpx.Client(base_url=server.url, headers={**AUTH, "x-memory-user-id": user}) as client,
    ):
        for i in range(5):
            reply = client.post("/v1/chat/completions", json=chat(f"budget {i}", stream=i % 2 == 1))
            assert reply.status_code == 200  # the client is served whatever the budget
            # One at a time: the token count is known before the next request is admitted.
            wait_for(lambda n=i: len(sink.pairs) == min(n + 1, allowed), 20)
        stats = client.get("/_shadow/stats").json()
    assert len(sink.pairs) == allowed
    assert stats["skipped"] == {"live_budget": 5 - allowed}
    assert stats["live"]["suffix"] == SUFFIX
    assert stats["live"]["requests"] == allowed
    if cap == "tokens":
        assert stats["live"]["tokens"] > 1
    assert len(_calls(mirror_sandbox, user)) == allowed
    assert len(_calls(sandbox.url, user)) == 5


def test_the_budget_counts_per_utc_day() -> None:
    day = 86_400.0
    budget = LiveBudget(max_requests=2, max_tokens=100)
    assert budget.admit(now=day + 1) and budget.admit(now=day + 2)
    assert not budget.admit(now=day + 3)
    assert budget.admit(now=2 * day + 1)  # a new UTC day: the counts start again
    budget.spend(150, now=2 * day + 2)
    assert not budget.admit(now=2 * day + 3)  # past the token cap
    assert budget.as_dict() == {
        "requests": 1,
        "tokens": 150,
        "max_requests": 2,
        "max_tokens": 100,
    }
    unlimited = LiveBudget()
    assert all(unlimited.admit(now=day) for _ in range(1000))
