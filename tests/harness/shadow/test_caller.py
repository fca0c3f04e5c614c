"""The mirror caller keeps what verdict and live mode need: the A/A repeat's provider calls
apart from the mirror's, the unattached calls handed back (with each outcome, and the
last ones on close), and all of it across the process boundary."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.loopback import LoopbackServer
from harness.settings import HarnessSettings, ShadowSettings
from harness.shadow.caller import CallerProcess, MirrorCaller, MirrorOutcome, MirrorPlan
from harness.shadow.engine import MirrorEngine
from harness.shadow.frames import frame, read_frame
from harness.shadow.recorder import RawExchange
from harness.shadow.replay_upstream import MISS_STATUS, ReceivedCall
from harness.shadow.targets import MirrorTarget, MirrorTargets
from tests.harness.shadow.test_mirror import ListSink
from tests.harness.shadow.test_replay_upstream import _body, _recorded

ANSWER = b'{"id": "msg_1", "content": [{"type": "text", "text": "recorded"}]}'


class _Proxy:
    """A proxy in miniature: each request's body goes once to the provider (the replay
    upstream), and the provider's answer back."""

    def __init__(self) -> None:
        self.provider = ""
        self.app = Starlette(routes=[Route("/v1/messages", self._relay, methods=["POST"])])

    async def _relay(self, request: Request) -> Response:
        body = await request.body()
        async with httpx.AsyncClient(trust_env=False) as client:
            reply = await client.post(self.provider + "/v1/messages", content=body)
        return Response(reply.content, reply.status_code)


def _call(index: int) -> ReceivedCall:
    return ReceivedCall(
        float(index), "POST", "/v1/messages", "", [("x-sm-user-id", "u")], b"{}", 200, 1.5
    )


def test_the_repeat_s_calls_are_kept_apart_and_unattached_calls_handed_back() -> None:
    settings = HarnessSettings(
        shadow=ShadowSettings(upstream="replay", replay_listen="127.0.0.1:0", aa_rate=1.0)
    )
    proxy = _Proxy()
    body = _body("one turn")

    async def scenario(url: str) -> tuple[MirrorOutcome, int, list[ReceivedCall]]:
        legacy = MirrorTarget("legacy", url)
        caller = MirrorCaller(settings, MirrorTargets(primary="sdk", shadow=legacy, repeat=legacy))
        caller.start()
        assert caller.replay_url is not None
        proxy.provider = caller.replay_url
        request = ("messages", "POST", "/v1/messages", "", [], body, time.time())
        plan = MirrorPlan(request, "req-1", (_recorded(body, 200, [(0.01, ANSWER)]),), True)
        outcome = await caller.mirror(plan)
        # A call no mirrored request claims (here: no registration for its turn).
        async with httpx.AsyncClient(trust_env=False) as client:
            stray = await client.post(caller.replay_url + "/v1/messages", content=_body("stray"))
        return outcome, stray.status_code, await caller.close()

    with LoopbackServer(proxy.app) as server:
        outcome, stray_status, kept = asyncio.run(scenario(server.url))

    assert outcome.registered and outcome.shadow.status == 200
    assert outcome.repeat is not None and outcome.repeat.status == 200
    # One provider call each: the mirror's, then the repeat's, not two for the mirror.
    assert len(outcome.received) == 1 and len(outcome.repeat_received) == 1
    assert outcome.received[0].time <= outcome.repeat_received[0].time
    assert outcome.unattached == []
    assert stray_status == MISS_STATUS
    assert [_turn(c.body) for c in kept] == ["stray"]


def _turn(body: bytes) -> str:
    return str(json.loads(body)["messages"][-1]["content"])


def test_an_outcome_crosses_the_process_boundary_whole() -> None:
    outcome = MirrorOutcome(
        RawExchange(status=200, headers=[("content-type", "application/json")], total_ms=3.0),
        repeat=RawExchange(status=200, total_ms=4.0),
        received=[_call(1)],
        registered=True,
        repeat_received=[_call(2)],
        unattached=[_call(3), _call(4)],
    )

    async def through_a_socket() -> MirrorOutcome:
        reader = asyncio.StreamReader()
        reader.feed_data(frame(outcome.to_wire()))
        reader.feed_eof()
        return MirrorOutcome.from_wire(await read_frame(reader))

    back = asyncio.run(through_a_socket())
    assert back.registered and back.shadow.status == 200 and back.repeat is not None
    assert [c.time for c in back.received] == [1.0]
    assert [c.time for c in back.repeat_received] == [2.0]
    assert [c.time for c in back.unattached] == [3.0, 4.0]
    assert back.unattached[0].headers == [("x-sm-user-id", "u")]


def test_a_plan_crosses_the_process_boundary_with_its_order() -> None:
    request = ("messages", "POST", "/v1/messages", "", [(b"a", b"b")], b"{}", 1.0)
    for twin_first in (True, False):
        plan = MirrorPlan(request, "r", None, False, twin_first)
        assert MirrorPlan.from_wire(plan.to_wire()) == plan


def test_the_twin_is_written_first_in_half_of_each_slices_pairs() -> None:
    """Traffic that alternates a call and a stream: each slice still alternates, so the
    side written first (the slower, same build) is neither side in every pair of it."""
    engine = MirrorEngine(
        settings=HarnessSettings(shadow=ShadowSettings(upstream="replay", mirror_process=False)),
        sink=ListSink(),
        targets=MirrorTargets(
            "sdk",
            MirrorTarget("legacy", "http://127.0.0.1:1"),
            twin=MirrorTarget("sdk", "http://127.0.0.1:2"),
        ),
    )
    call = RawExchange(status=200, headers=[("content-type", "application/json")])
    stream = RawExchange(status=200, headers=[("Content-Type", "text/event-stream; charset=utf-8")])
    turns = [(engine.twin_first("messages", call), engine.twin_first("messages", stream))]
    turns += [(engine.twin_first("messages", call), engine.twin_first("messages", stream))]
    turns += [(engine.twin_first("chat", call), engine.twin_first("messages", call))]
    assert turns == [(True, True), (False, False), (True, True)]


@pytest.mark.slow
def test_the_caller_process_hands_back_its_last_unattached_calls_on_close() -> None:
    settings = HarnessSettings(
        shadow=ShadowSettings(upstream="replay", replay_listen="127.0.0.1:0")
    )
    legacy = MirrorTarget("legacy", "http://127.0.0.1:9")  # never called here

    async def scenario() -> tuple[int, list[ReceivedCall]]:
        caller = CallerProcess(settings, MirrorTargets(primary="sdk", shadow=legacy))
        caller.start()
        # The caller says where its replay upstream listens once it is up.
        outcome = await caller.mirror(
            MirrorPlan(("health", "GET", "/health", "", [], b"", time.time()), "r", None, False)
        )
        assert outcome.shadow.error == "connect" and caller.replay_url is not None
        async with httpx.AsyncClient(trust_env=False) as client:
            stray = await client.post(caller.replay_url + "/v1/messages", content=_body("late"))
        return stray.status_code, await caller.close()

    status, kept = asyncio.run(scenario())
    assert status == MISS_STATUS
    assert [_turn(c.body) for c in kept] == ["late"]
