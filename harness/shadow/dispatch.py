"""``Dispatch``: the one place a request is admitted to the mirror, wherever it runs.

The tap (:class:`~harness.shadow.mirror.ShadowMirror`) hands each request to
:meth:`Dispatch.offer` and the primary's answer to :meth:`Dispatch.done`. The base class
decides admission, in one order; its subclasses only say how the mirror is reached, as
locust's ``Runner`` leaves ``LocalRunner`` and ``WorkerRunner`` only their transport:

* :class:`LocalDispatch`: the :class:`MirrorEngine` on this event loop (tests, and
  ``shadow.mirror_process: false``);
* :class:`~harness.shadow.sidecar.SidecarDispatch`: frames to the mirror sidecar.

The admission path; a refusal stops it and is counted under ``skipped.<reason>``
(``GET /_shadow/stats``)::

    tap ──offer(request)──> Dispatch (serving process, on the client's request path)
       1 reachable   the mirror can be handed anything        sidecar_down
       2 policy      endpoint, model filter, sample           endpoint | model | sample
                     (health checks: shadow.health_rate)      health_sample
       3 room        the mirror's queue has room              queue_full | backpressure
       4 rate cap    a token from the bucket                  rate_limited
       5 hand over   LocalDispatch: engine.enqueue | SidecarDispatch: one frame
                          │
                          v
    MirrorEngine.enqueue (where the shadow calls run: here, or in the sidecar)
       6 room        the queue's exact depth                  queue_full | backpressure
       7 breaker     closed, or this is its one probe         breaker_open
       8 queued      a worker sends it, waits for the primary's answer, stores the pair

Why this order:

* 1-5 run while the client waits: a few comparisons each, nothing awaited, and nothing
  raised into the request (the tap counts an exception as ``skipped.error``).
* The policy comes first: a sampled-out request costs the primary nothing more, and is
  counted as sampled out whatever state the mirror is in.
* Room before the cap: a request the queue would shed spends no token, so the cap's
  budget goes to requests that are sent.
* The cap before the hand-over: a capped request costs the primary no frame.
* The breaker lives with the engine, which sees the shadow's answers, and is asked last:
  asking may grant its one half-open probe, which must then really be sent.
* No room is ``backpressure`` while the engine holds fewer mirrors in flight than
  ``max_in_flight`` because the target struggled (its queue fills on purpose: the target
  is being spared), ``queue_full`` otherwise.
* 6 repeats 3 with the exact depth. In process it cannot refuse (same event-loop turn);
  the sidecar's room, seen from the primary, is its last report (every 100 ms).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import Counter
from typing import Any

from harness.shadow.engine import MirrorEngine, MirrorRequest
from harness.shadow.recorder import RawExchange, TapRecord
from harness.shadow.sampling import EvenSample, RateCap, SamplingPolicy
from memory_proxy.memory_router import MemoryRouter

__all__ = ["Dispatch", "LocalDispatch", "admission"]


def admission(policy: SamplingPolicy, router: MemoryRouter, request: MirrorRequest) -> str | None:
    """None to mirror ``request``, else why not: the sampling policy's answer. Pure."""
    if request.endpoint not in policy.endpoints:
        return "skipped:endpoint"
    if request.endpoint == "health":
        return None  # no user to sample by: the dispatch's EvenSample decides
    if policy.rate >= 100 and not policy.models:
        return None  # everyone is mirrored: no need to know who this is
    lookup = dict(request.headers())
    decision = router.detect_user_id(lookup)
    key = decision.conversation_id or decision.user_id
    # Parse the body only when a model filter needs it: this runs on the request path.
    model = request.model() if policy.models else None
    return policy.decide(request.endpoint, model, key)


class Dispatch(ABC):
    """Admits requests (steps 1-4 above) and hands them over (5). ``offer`` returns a
    token for ``done``, or None when the request is not mirrored (counted in
    ``skipped``)."""

    def __init__(self, *, policy: SamplingPolicy, router: MemoryRouter, max_rate: float) -> None:
        self.policy = policy
        self.router = router
        self.cap = RateCap(max_rate)
        self.health_sample = EvenSample(policy.health_rate)
        # Refusals decided here; the engine counts its own, and ``stats`` adds them up.
        self.skipped: Counter[str] = Counter()

    def offer(self, request: MirrorRequest) -> object | None:
        reason = self._refusal(request)
        if reason is not None:
            self.skipped[reason] += 1
            return None
        return self._hand_over(request)

    def _refusal(self, request: MirrorRequest) -> str | None:
        unreachable = self._unreachable()
        if unreachable is not None:
            return unreachable
        sampled_out = admission(self.policy, self.router, request)
        if sampled_out is not None:
            return sampled_out.removeprefix("skipped:")
        if request.endpoint == "health" and not self.health_sample.take():
            return "health_sample"
        if not self._has_room():
            return self._full_reason()
        if not self.cap.take(time.monotonic()):
            return "rate_limited"
        return None

    def skip(self, reason: str) -> None:
        """A request the tap could not offer (too large, or an error), counted here."""
        self.skipped[reason] += 1

    def stats(self) -> dict[str, Any]:
        """The mirror's counters, with what this side refused added to ``skipped``."""
        mirror = self._mirror_stats()
        skipped = Counter(mirror.get("skipped", {}))
        skipped.update(self.skipped)
        return {**mirror, "skipped": dict(skipped)}

    # -- what a subclass says: how the mirror is reached ----------------------------------

    @abstractmethod
    def _unreachable(self) -> str | None:
        """Why nothing can be handed to the mirror now (a ``skipped`` reason), or None."""

    @abstractmethod
    def _has_room(self) -> bool:
        """Whether the mirror's queue would take one more, as far as this side knows."""

    def _full_reason(self) -> str:
        """Why there is no room (``queue_full`` or ``backpressure``)."""
        return "queue_full"

    @abstractmethod
    def _hand_over(self, request: MirrorRequest) -> object | None:
        """Pass an admitted request to the engine; the token, or None if it refused."""

    @abstractmethod
    def done(self, token: object, record: TapRecord) -> None:
        """The primary's answer to the request ``token`` stands for."""

    @abstractmethod
    def _mirror_stats(self) -> dict[str, Any]:
        """The engine's snapshot, wherever it runs."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None:
        """No more requests will come: let the mirror finish what it has."""


class LocalDispatch(Dispatch):
    """The engine on the serving process's own event loop."""

    def __init__(self, engine: MirrorEngine) -> None:
        super().__init__(
            policy=engine.policy, router=engine.router, max_rate=engine.settings.shadow.max_rate
        )
        self.engine = engine

    def _unreachable(self) -> str | None:
        return None

    def _has_room(self) -> bool:
        return self.engine.has_room()

    def _full_reason(self) -> str:
        return self.engine.full_reason()

    def _hand_over(self, request: MirrorRequest) -> object | None:
        primary: asyncio.Future[RawExchange] = asyncio.get_running_loop().create_future()
        return primary if self.engine.enqueue(request, primary) else None

    def done(self, token: object, record: TapRecord) -> None:
        assert isinstance(token, asyncio.Future)
        if not token.done():
            token.set_result(RawExchange.from_tap(record))

    def _mirror_stats(self) -> dict[str, Any]:
        return self.engine.snapshot()

    async def start(self) -> None:
        self.engine.start()

    async def close(self) -> None:
        await self.engine.drain()
