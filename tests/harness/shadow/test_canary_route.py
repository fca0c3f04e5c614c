"""The canary front door: who answers, and an automatic rollback through real servers.

The end-to-end test runs the front door on loopback in live mirror mode with the real
SDK proxy (its own sandbox, faulted) and the real legacy stack (LiteLLM server + legacy
proxy, on the session's healthy sandbox): the SDK slice fails, the controller rolls it
back, and the slice's users are then answered by legacy, with no stream cut.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.cutover.canary.controller import CanaryController, CanaryPlan
from harness.cutover.canary.judge import WindowJudgement, judge_window
from harness.loopback import LoopbackServer
from harness.report.evidence import comparator_for, run_info
from harness.sandbox import SandboxSettings, create_app
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import HarnessSettings
from harness.shadow.canary_route import build_canary, on_sdk
from harness.shadow.sampling import percent_bucket
from harness.store.canary_store import CanaryStore
from harness.store.capture_store import StoredPair, UnreadableRow
from memory_proxy.config import load_config
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


def _ask(url: str, user: str) -> _Answer:
    started = time.time()
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 32,
        "stream": True,
        "messages": [{"role": "user", "content": f"canary check for {user}"}],
    }
    headers = {"x-api-key": MASTER_KEY, "x-memory-user-id": user}
    try:
        with httpx.stream(
            "POST", url + "/v1/chat/completions", json=body, headers=headers, timeout=60
        ) as reply:
            text = "".join(reply.iter_text())
            complete = reply.status_code != 200 or "data: [DONE]" in text
            return _Answer(user, started, time.time(), reply.status_code, complete)
    except httpx.HTTPError as exc:
        return _Answer(user, started, time.time(), None, False, type(exc).__name__)


@pytest.fixture
def faulty_sdk_sandbox() -> Iterator[LoopbackServer]:
    with LoopbackServer(create_app(SandboxSettings())) as server:
        with SandboxControl(server.url) as control:
            # Half the SDK's provider calls fail; the rest stream slowly, so some are in
            # flight when the rollback comes.
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

    def judge(rows: list[StoredPair | UnreadableRow]) -> WindowJudgement:
        return judge_window(rows, settings, comparator, run_info(sdk_config, store_path), redactor)

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
            served_sdk = _stats(front.url)["canary"]["sdk"]
            after = [_ask(front.url, u) for u in slice_users[:6]]
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
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
    in_flight = [
        a
        for a in answers
        if a.user in slice_users and a.status == 200 and a.started < rolled.at < a.ended
    ]
    assert in_flight, "no SDK stream was in flight at the rollback"


def _stats(url: str) -> dict[str, object]:
    return json.loads(httpx.get(url + "/_shadow/stats", timeout=10).text)


def _wait_for_percent(url: str, percent: float, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _stats(url)["canary"]["percent"] != percent:  # type: ignore[index]
        assert time.monotonic() < deadline, f"the front door never read {percent} %"
        time.sleep(0.05)
