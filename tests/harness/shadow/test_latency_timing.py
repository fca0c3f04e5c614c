"""Latency, timed alike: the same build on both sides is not flagged; a seeded slowdown on
the SDK side is, by the latency gates.

Real servers on loopback: the SDK proxy as primary (on the sandbox), a second SDK proxy
as the mirror and a third as the latency twin, both on the replay upstream. The twin is
wrapped in a seeded defect (test code):

* every answer held by 3 ms, the issue's "+3 ms per call";
* a stream's first token held by a fifth of the time it took (+20 % TTFT), from a
  provider whose first token takes 200 ms (replayed to both sides at that pace).

Each request is sent once the previous one's pair is stored: the servers share this one
process (one interpreter lock), and a twin and mirror timed while the primary serves the
next request time mostly that request's work (with the next request sent at once, +3 ms
on every call was lost in it).

The tests assert the gates' decision, never a wall-clock value.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.loopback import LoopbackServer, free_port
from harness.report.evidence import collect_evidence
from harness.report.latency_gates import latency_gates, latency_summaries
from harness.report.model import GateResult, Status
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.replay_upstream import TWIN_PREFIX
from harness.shadow.server import build_shadow
from harness.store.capture_store import CaptureStore
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.conftest import MASTER_KEY
from tests.harness.report.factories import RUN

AUTH = {"x-api-key": MASTER_KEY}
# A chat stream's first text: the role chunk before it carries an empty "content".
_FIRST_TOKEN = re.compile(rb'"content":\s*"[^"]')
PER_SLICE = 30  # >= report.min_samples (20) per side; p95 stays INCONCLUSIVE below 50


class SeededDelay:
    """A defect on one side: ``call`` holds every answer by 3 ms; ``ttft`` holds a
    stream's first token (and so everything after it) by 20 % of the time it took."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mode = "none"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.mode == "none":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        held = False
        streaming = False

        async def delayed(message: Message) -> None:
            nonlocal held, streaming
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
                if self.mode == "call":
                    await asyncio.sleep(0.003)
            elif (
                self.mode == "ttft"
                and streaming
                and not held
                and _FIRST_TOKEN.search(message.get("body", b""))
            ):
                held = True
                await asyncio.sleep(0.2 * (time.perf_counter() - began))
            await send(message)

        await self.app(scope, receive, delayed)


@dataclass
class Sides:
    primary_config: Path
    mirror: LoopbackServer
    twin: LoopbackServer
    defect: SeededDelay
    replay_port: int


@pytest.fixture(scope="module")
def sides(sandbox_config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sides]:
    folder = tmp_path_factory.mktemp("latency")
    port = free_port()
    replay = f"http://127.0.0.1:{port}"
    fast = "memory_proxy:\n  retry_backoff_seconds: 0.05\n"
    mirror_config = write_sandbox_config(replay, folder / "mirror.yaml", extra=fast)
    twin_config = write_sandbox_config(replay + TWIN_PREFIX, folder / "twin.yaml", extra=fast)
    defect = SeededDelay(create_app(load_config(twin_config)))
    with (
        LoopbackServer(create_app(load_config(mirror_config))) as mirror,
        LoopbackServer(defect) as twin,
    ):
        yield Sides(sandbox_config_path, mirror, twin, defect, port)


def _run(sides: Sides, store: Path, mode: str) -> dict[str, GateResult]:
    """Shadow mode (in-process mirror) over PER_SLICE chat requests, stream and not; the
    latency gates on what it stored."""
    sides.defect.mode = mode
    settings = HarnessSettings(
        shadow=ShadowSettings(
            upstream="replay",
            replay_listen=f"127.0.0.1:{sides.replay_port}",
            mirror_to=sides.mirror.url,
            twin_to=sides.twin.url,
            mirror_process=False,
            aa_rate=0,
        ),
        capture=CaptureSettings(store=store),
    )
    run = build_shadow(load_config(sides.primary_config), settings)
    try:
        with (
            LoopbackServer(run.app) as shadow,
            httpx.Client(base_url=shadow.url, headers=AUTH, timeout=30) as client,
        ):
            for i in range(PER_SLICE):
                for stream in (False, True):
                    body = {
                        "model": "gpt-4o",
                        "stream": stream,
                        "messages": [{"role": "user", "content": f"{mode} turn {i}"}],
                    }
                    assert client.post("/v1/chat/completions", json=body).status_code == 200
                    sent = 2 * i + stream + 1
                    _wait_for(lambda n=sent: client.get("/_shadow/stats").json()["completed"] == n)
    finally:
        run.close()
    pairs = [stored.pair for stored in CaptureStore(store).iter_pairs()]
    assert len(pairs) == 2 * PER_SLICE and all(p.latency_twin is not None for p in pairs)
    evidence = collect_evidence(store, settings, RUN, workers=1)
    assert evidence.latency_timing == {"alike": 2 * PER_SLICE}
    return {g.name: g for g in latency_gates(latency_summaries(evidence), settings)}


def _check(gate: GateResult, name: str) -> Status:
    return next(c.status for c in gate.checks if c.name == name)


def test_the_same_build_on_both_sides_is_not_flagged(
    sides: Sides, sandbox: SandboxControl, tmp_path: Path
) -> None:
    gates = _run(sides, tmp_path / "aa.db", "none")
    for gate in gates.values():
        assert gate.status is not Status.FAIL, gate


def test_three_ms_more_on_every_sdk_call_fails_p50(
    sides: Sides, sandbox: SandboxControl, tmp_path: Path
) -> None:
    gates = _run(sides, tmp_path / "call.db", "call")
    non_stream = gates["latency: chat non-stream"]
    assert non_stream.status is Status.FAIL, non_stream
    assert _check(non_stream, "p50") is Status.FAIL
    assert _check(non_stream, "p95") is Status.INCONCLUSIVE  # 30 samples: never FAIL


def test_a_fifth_more_ttft_on_the_sdk_side_fails_ttft(
    sides: Sides, sandbox: SandboxControl, tmp_path: Path
) -> None:
    # A provider whose first token takes 200 ms, replayed to both sides at that pace: the
    # defect's fifth is then well above scheduling jitter on a loaded host.
    sandbox.set_faults(ttft_ms=200)
    gates = _run(sides, tmp_path / "ttft.db", "ttft")
    stream = gates["latency: chat stream"]
    assert stream.status is Status.FAIL, stream
    assert _check(stream, "TTFT p50") is Status.FAIL
    assert gates["latency: chat non-stream"].status is not Status.FAIL  # streams only


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
