"""Admission, in process: the order of the checks decides who pays for a refusal.

No servers: offers are made in one event-loop turn, so the engine's workers have not
taken anything off its queue yet, and the queue is exactly as full as the test made it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness.settings import HarnessSettings, ShadowSettings
from harness.shadow.dispatch import LocalDispatch
from harness.shadow.engine import MirrorEngine, MirrorRequest
from harness.shadow.targets import MirrorTarget, MirrorTargets
from tests.harness.shadow.test_mirror import ListSink

# Nothing listens there: a mirror that gets sent fails fast, which these tests ignore.
NOWHERE = "http://127.0.0.1:9"


def local_dispatch(**shadow: Any) -> LocalDispatch:
    settings = HarnessSettings(
        shadow=ShadowSettings(**{"aa_rate": 0.0, "timeout_seconds": 1.0, **shadow})
    )
    targets = MirrorTargets(primary="sdk", shadow=MirrorTarget("legacy", NOWHERE))
    return LocalDispatch(MirrorEngine(settings=settings, sink=ListSink(), targets=targets))


def request() -> MirrorRequest:
    return MirrorRequest("chat", "POST", "/v1/chat/completions", "", [], b"{}", 0.0)


def test_a_request_the_full_queue_sheds_spends_no_rate_cap_token() -> None:
    async def scenario() -> dict[str, Any]:
        dispatch = local_dispatch(max_in_flight=1, queue_size=1, max_rate=2)
        assert dispatch.offer(request()) is not None  # the queue's one place; a token
        assert dispatch.offer(request()) is None  # no room: refused before the cap
        while dispatch.engine.queue_depth:  # the worker takes the first off the queue
            await asyncio.sleep(0)
        # The second token is still there: the shed request did not spend it.
        assert dispatch.offer(request()) is not None
        stats = dispatch.stats()
        await dispatch.engine.drain(timeout=0)
        return stats

    stats = asyncio.run(scenario())
    assert stats["queued"] == 2
    assert stats["skipped"] == {"queue_full": 1}


def test_a_request_the_full_queue_sheds_is_not_given_the_breakers_probe() -> None:
    async def scenario() -> tuple[str, dict[str, Any]]:
        dispatch = local_dispatch(
            max_in_flight=1, queue_size=1, breaker_failures=1, breaker_cooldown_seconds=0
        )
        engine = dispatch.engine
        assert dispatch.offer(request()) is not None  # fills the queue
        engine.breaker.record_failure()  # open; its cooldown already over
        assert dispatch.offer(request()) is None  # no room
        # Still open: a probe granted to a request that is then dropped would leave the
        # breaker half-open with nothing in flight to close or reopen it.
        state = engine.breaker.state
        stats = dispatch.stats()
        await engine.drain(timeout=0)
        return state, stats

    state, stats = asyncio.run(scenario())
    assert state == "open"
    assert stats["skipped"] == {"queue_full": 1}
