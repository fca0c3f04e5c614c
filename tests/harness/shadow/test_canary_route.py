"""The canary front door: who answers, and an automatic rollback through real servers.

The first end-to-end test runs the front door on loopback in live mirror mode with the
real SDK proxy (its own sandbox, faulted) and the real legacy stack (LiteLLM server +
legacy proxy, on the session's healthy sandbox): the SDK slice fails, the controller rolls
it back, and the slice's users are then answered by legacy, with no stream cut.

The second runs it under replay with the real legacy stack on the recording relay's
config: both slices are mirrored, and the provider sees each client request once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.cutover.canary.controller import CanaryController, CanaryPlan
from harness.cutover.canary.judge import WindowJudgement, judge_window
from harness.loopback import LoopbackServer, free_port
from harness.observation import last_user_text
from harness.report.evidence import comparator_for, run_info
from harness.report.model import Status
from harness.sandbox import SandboxSettings, create_app
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import HarnessSettings
from harness.shadow.canary_route import build_canary, on_sdk
from harness.shadow.mirror_stack import derive_replay_config
from harness.shadow.sampling import percent_bucket
from harness.store.canary_store import CanaryState, CanaryStore
from harness.store.capture_store import CaptureStore, StoredPair, UnreadableRow
from memory_proxy.config import load_config
from memory_proxy.legacy_proxy import create_legacy_app
from memory_proxy.litellm_server import LiteLLMServer
from tests.conftest import MASTER_KEY

USERS = [f"user-{n}" for n in range(400)]


def test_a_users_side_is_stable_and_slices_only_grow() -> None:
    # The same answer on every call (and in every process: a hash, not a random draw)...
    assert [on_sdk(u, 25) for u in USERS] == [on_sdk(u, 25) for u in USERS]
    assert all(on_sdk(u, 25) == (percent_bucket(u) < 25) for u in USERS)
    # ... and a user moved to the SDK at 5 % is still on it at every later step.
    steps = (5, 25, 50, 100)
    for user in USERS:
        sides = [on_sdk(user, p) for p in steps]
        assert sides == sorted(sides), user
    share = {p: sum(on_sdk(u, p) for u in USERS) / len(USERS) for p in steps}
    assert share[100] == 1.0 and 0 < share[5] < share[25] < share[50] < 1.0
    assert not any(on_sdk(u, 0) for u in USERS)


@dataclass
class _Answer:
    user: str
    started: float
    ended: float
    status: int | None
    complete: bool  # a 200 stream that ended with [DONE]; an error answer counts whole
    error: str | None = None


def _ask(
    url: str, user: str, text: str = "", on_first: Callable[[], None] | None = None
) -> _Answer:
    """One stream; ``on_first`` is called once a 200 stream's first bytes arrived."""
    started = time.time()
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": text or f"canary check for {user}"}],
    }
    headers = {"x-api-key": MASTER_KEY, "x-memory-user-id": user}
    try:
        with httpx.stream(
            "POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=60
        ) as reply:
            pieces: list[str] = []
            for piece in reply.iter_text():
                if not pieces and on_first is not None and reply.status_code == 200:
                    on_first()
                pieces.append(piece)
            text = "".join(pieces)
            complete = reply.status_code != 200 or "data: [DONE]" in text
            return _Answer(user, started, time.time(), reply.status_code, complete)
    except httpx.HTTPError as exc:
        return _Answer(user, started, time.time(), None, False, type(exc).__name__)


@pytest.fixture
def faulty_sdk_sandbox() -> Iterator[LoopbackServer]:
    with LoopbackServer(create_app(SandboxSettings())) as server:
        with SandboxControl(server.url) as control:
            # Half the SDK's provider calls fail; the rest stream slowly.
            control.set_faults(error_rate_500=0.5, chunk_delay_ms=60)
        yield server


def test_a_5xx_slice_is_rolled_back_and_its_users_answered_by_legacy_uncut(
    tmp_path: Path, legacy_proxy: LoopbackServer, faulty_sdk_sandbox: LoopbackServer
) -> None:
    sdk_config = write_sandbox_config(
        faulty_sdk_sandbox.url,
        tmp_path / "sdk.yaml",
        extra="memory_proxy:\n  retry_backoff_seconds: 0.05\n",
    )
    store_path = tmp_path / "shadow.db"
    settings = (
        HarnessSettings()
        .with_overrides("shadow", upstream="live", mirror_process=False, aa_rate=0.0)
        .with_overrides("shadow", mirror_to=legacy_proxy.url)
        .with_overrides("capture", store=store_path)
        .with_overrides("report", min_samples=5)
    )
    run = build_canary(
        load_config(sdk_config), settings, legacy_url=legacy_proxy.url, store=store_path
    )
    slice_users = [u for u in USERS[:40] if on_sdk(u, 50)]
    others = [u for u in USERS[:40] if not on_sdk(u, 50)]
    comparator, redactor = comparator_for(settings, sdk_config)

    # One slice stream is certain to be in flight at the rollback: when the window first
    # fails, the judge starts a stream that goes quiet for 4 s after its first event, and
    # gives its decision once that event arrived. (Streams of the client threads below
    # are in flight at the rollback most of the time, not always.)
    held_text = "a held canary stream [sandbox:silence_after=1,silence_ms=4000]"
    held: list[_Answer] = []
    held_in_flight = threading.Event()

    def hold_one_stream(url: str) -> None:
        for _ in range(50):  # the faulty sandbox fails half its calls: ask until one streams
            answer = _ask(url, slice_users[0], held_text, on_first=held_in_flight.set)
            if answer.status == 200:
                held.append(answer)
                return

    def judge(rows: list[StoredPair | UnreadableRow]) -> WindowJudgement:
        judgement = judge_window(
            rows, settings, comparator, run_info(sdk_config, store_path), redactor
        )
        if judgement.status is Status.FAIL and not held_in_flight.is_set():
            holding.start()
            assert held_in_flight.wait(60), "the held stream never started"
        return judgement

    cutovers: list[object] = []
    controller = CanaryController(
        CanaryStore(store_path),
        CanaryPlan((50, 100), interval_s=30, window_s=30, check_every_s=0.2, max_wait_s=60),
        judge,
        cutover=lambda evidence: cutovers.append(evidence) or 0,
        record=lambda record: None,
        say=lambda line: None,
    )
    answers: list[_Answer] = []
    stop = threading.Event()
    try:
        with LoopbackServer(run.app) as front:
            result: list[int] = []
            controlling = threading.Thread(target=lambda: result.append(controller.run()))
            holding = threading.Thread(target=hold_one_stream, args=(front.url,))
            controlling.start()
            _wait_for_percent(front.url, 50)

            def client(users: list[str]) -> None:
                n = 0
                while not stop.is_set():
                    answers.append(_ask(front.url, users[n % len(users)]))
                    n += 1

            clients = [
                threading.Thread(target=client, args=(users,))
                for users in (slice_users, slice_users, others)
            ]
            for thread in clients:
                thread.start()
            controlling.join(timeout=120)
            assert result == [1], "the controller did not roll back"
            _wait_for_percent(front.url, 0)
            rollback_seen = time.time()
            served_sdk = _stats(front.url)["canary"]["sdk"]
            after = [_ask(front.url, u) for u in slice_users[:6]]
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
            holding.join(timeout=60)
            assert _stats(front.url)["canary"]["sdk"] == served_sdk
    finally:
        stop.set()
        run.close()

    state = CanaryStore(store_path).state()
    assert state is not None and state.status == "rolled_back" and state.percent == 0
    assert cutovers == []
    rolled = CanaryStore(store_path).history()[-1]
    assert rolled.event == "rolled_back" and rolled.evidence["from_percent"] == 50
    gates = {g["name"]: g for g in rolled.evidence["window"]["gates"]}
    assert gates["canary: error rate"]["status"] == "FAIL"
    # The slice's users are answered by legacy now: healthy, whole streams.
    assert all(a.status == 200 and a.complete for a in after), after
    # Nothing was cut: every answer arrived whole, including the SDK's streams that were
    # still going when the rollback came.
    assert all(a.error is None and a.complete for a in answers), [
        a for a in answers if a.error or not a.complete
    ]
    # The held stream was answered by the SDK side (its provider call reached the faulty
    # sandbox), was going when the front door had switched the slice to legacy, and ended
    # whole.
    assert len(held) == 1 and held[0].complete and held[0].error is None, held
    assert held[0].ended > rollback_seen
    with SandboxControl(faulty_sdk_sandbox.url) as faulty:
        assert any(last_user_text(r["body"]) == held_text for r in faulty.api_requests())


@pytest.mark.slow
def test_under_replay_both_slices_are_mirrored_and_the_provider_sees_each_call_once(
    tmp_path: Path, sandbox: SandboxControl, sandbox_config_path: Path
) -> None:
    """At 50 %, users of both slices get pairs, each labelled with the side that answered;
    the legacy slice's provider calls go through the recording relay, every mirror is
    answered by replay, and the provider (the sandbox) gets each request's call once."""
    config = load_config(sandbox_config_path)
    store_path = tmp_path / "shadow.db"
    replay_port, legacy_port = free_port(), free_port()
    legacy_url = f"http://127.0.0.1:{legacy_port}"
    settings = (
        HarnessSettings()
        .with_overrides("shadow", upstream="replay", mirror_process=False, aa_rate=0.0)
        .with_overrides("shadow", replay_listen=f"127.0.0.1:{replay_port}", mirror_to=legacy_url)
        .with_overrides("capture", store=store_path)
    )
    CanaryStore(store_path).save(
        CanaryState((50, 100), 60, 60, 0, 50, "running", time.time(), time.time()), "step"
    )
    run = build_canary(config, settings, legacy_url=legacy_url, store=store_path)
    assert run.relay_config is not None
    # One legacy stack plays both legacy roles, split by model, to start one LiteLLM
    # server instead of two (the suite is CPU-bound): gpt-4o as the SDK slice's mirror
    # (its provider answered by the SDK side's replay upstream, as the mirror stack
    # shadow mode starts), claude-sonnet-4.5 as the stack serving the legacy slice (its
    # provider reached through the recording relay, as the relay config says).
    replayed = derive_replay_config(
        sandbox_config_path, f"http://127.0.0.1:{replay_port}", tmp_path / "replay.yaml"
    )
    models = [
        *(m for m in _models(replayed) if m["model_name"] == "gpt-4o"),
        *(m for m in _models(run.relay_config) if m["model_name"] != "gpt-4o"),
    ]
    legacy_config = tmp_path / "legacy.yaml"
    raw = yaml.safe_load(run.relay_config.read_text(encoding="utf-8"))
    legacy_config.write_text(yaml.safe_dump({**raw, "model_list": models}), encoding="utf-8")
    slice_users = [u for u in USERS if on_sdk(u, 50)][:3]
    others = [u for u in USERS if not on_sdk(u, 50)][:3]
    sent: dict[str, str] = {}  # client request text -> its user
    try:
        with (
            LiteLLMServer(
                legacy_config, port=free_port(), log_path=tmp_path / "llm.log", ready_timeout=180
            ) as llm,
            LoopbackServer(create_legacy_app(load_config(legacy_config), llm.url), legacy_port),
            LoopbackServer(run.app) as front,
        ):
            since = sandbox.latest_seq()
            for user in slice_users + others:
                model = "gpt-4o" if user in slice_users else "claude-sonnet-4.5"
                for stream in (False, True):
                    text = f"replayed canary turn for {user}, stream {stream}"
                    sent[text] = user
                    body = {
                        "model": model,
                        "max_tokens": 32,
                        "stream": stream,
                        "messages": [{"role": "user", "content": text}],
                    }
                    headers = {"x-api-key": MASTER_KEY, "x-memory-user-id": user}
                    reply = httpx.post(
                        front.url + "/v1/chat/completions", json=body, headers=headers, timeout=60
                    )
                    assert reply.status_code == 200, reply.text
            _wait_for(lambda: _stats(front.url)["completed"] == len(sent))
            stats = _stats(front.url)
            provider_calls = [r for r in sandbox.api_requests(since) if r["method"] == "POST"]
    finally:
        run.close()

    assert stats["canary"] == {"percent": 50, "sdk": 6, "legacy": 6}
    # Every mirror's provider call, on either side's replay upstream, was answered by replay.
    assert stats["replay"]["served"] == len(sent)
    assert stats["replay"]["misses"] == 0 and stats["primary_unrecorded"] == 0
    pairs = [
        row.pair
        for row in CaptureStore(store_path, spill=False).iter_pairs()
        if isinstance(row, StoredPair)
    ]
    assert len(pairs) == len(sent)
    for pair in pairs:
        # Labelled with who answered the client: the SDK for its slice, else legacy.
        expected = "sdk" if pair.request.user_id in slice_users else "legacy"
        assert pair.primary.target == expected, pair.request.user_id
        assert pair.upstream_mode == "replay"
        assert pair.primary.status == 200
        assert pair.shadow is not None and pair.shadow.status == 200
        # Both sides' provider calls are stored: the primary's as made (tapped in the
        # SDK proxy or recorded by the relay), the mirror's as replay answered them.
        assert len(pair.upstream["sdk"]) == len(pair.upstream["legacy"]) == 1
    assert {p.request.user_id for p in pairs} == set(slice_users + others)
    # The provider got each client request's call exactly once, and nothing else.
    texts = [last_user_text(r["body"]) for r in provider_calls]
    assert sorted(texts) == sorted(sent)


def _models(config_path: Path) -> list[dict[str, object]]:
    return list(yaml.safe_load(config_path.read_text(encoding="utf-8"))["model_list"])


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _stats(url: str) -> dict[str, Any]:
    return json.loads(httpx.get(url + "/_shadow/stats", timeout=10).text)


def _wait_for_percent(url: str, percent: float, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _stats(url)["canary"]["percent"] != percent:
        assert time.monotonic() < deadline, f"the front door never read {percent} %"
        time.sleep(0.05)
