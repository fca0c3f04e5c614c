"""``MirrorEngine``: sends mirrored requests to the shadow target and stores both answers.

It takes a :class:`MirrorRequest` its dispatch has admitted, plus a future for the
primary's answer, makes the last two checks (room in the queue, circuit breaker: steps
6 and 7 of the admission path drawn in :mod:`harness.shadow.dispatch`), and lets its
workers send the request to the shadow target, wait for the primary's answer, turn both
into observations and hand the pair to the store.

Backpressure: at most ``max_in_flight`` mirrors are out at once, fewer while the target
struggles (:mod:`harness.shadow.backpressure`: 429s, 5xx, timeouts and slow answers halve
the limit, good answers raise it again). A request refused for a full queue while the
limit is down is counted as ``backpressure``, not ``queue_full``.

Stopping (:meth:`MirrorEngine.drain`, on SIGTERM or Ctrl-C): mirrors already taken by a
worker get ``shadow.drain_seconds``; mirrors still queued are not sent, and neither are
those the deadline cuts. Each of those is stored as a primary-only pair (``shadow`` None,
``mirror_outcome`` ``not mirrored: shutdown``) and counted under ``not_mirrored``: a
stop never waits minutes on a dead target, and never drops a pair silently.

The sending is its caller's (:mod:`harness.shadow.caller`): in the mirror sidecar a
process of its own at the primary's priority, so that what is timed is not this
process's scheduling. In replay mode (``shadow.upstream: replay``) the caller also runs
the replay upstream the mirror proxy's providers point at
(:mod:`harness.shadow.replay_upstream`): a worker first waits for the primary's answer,
then has the caller register the provider calls the primary made for it and send the
mirror request, which is answered with them; both sides' provider calls go into the
pair (``upstream``). In live mode the mirror request leaves at once. It runs
wherever the mirror's work is meant to run: in the serving process
(``shadow.mirror_process: false``) or in the mirror sidecar process
(:mod:`harness.shadow.sidecar`), which keeps all of this off the primary's event loop.

Latency, timed alike on both sides (replay mode, SDK primary). The primary cannot be
timed the way the mirror is: it is timed inside its own server (from the ASGI call to the
last body message), while the mirror is timed by an HTTP client, after a socket hop each
way, at moments this engine picks (replay waits for the primary's answer, so a stalled
sidecar sends the mirrors queued meanwhile in one burst, and the mirror proxy answers a
burst the primary never saw). Same build on both sides, that made the primary's median
0.6-0.8x the mirror's on a quiet host, and 0.01-0.2x on a loaded 2-core one (measured:
the mirror waited hundreds of ms in its own queue). Subtracting each side's provider
time does not cure it: the queueing and the client's delays are not provider time. So
the primary's build is started a second time, the **latency twin**
(``MirrorTargets.twin``: same config, its provider base URLs on the replay upstream's
``/_twin`` book), and each mirrored request is sent to the twin and to the mirror at the
same moment, by the same client (the caller's, never at the sidecar's idle priority),
alternating which goes first within each latency slice (:meth:`MirrorEngine.twin_first`);
each is answered by replay with the primary's provider
answers at the primary's pace. Both are then timed at their HTTP boundary with the same
clock and client, under the same load, on the same upstream timing: what the caller's
own scheduling adds, it adds to both (it widens the interval the latency gates decide
on, :mod:`harness.report.latency_gates`; it does not favour a side). The twin's answer
is stored for its timings only (``CapturedPair.latency_twin``); what the client got,
and what is compared, is still the primary's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.observation import CapturedPair, CapturedRequest, correlation_key
from harness.settings import HarnessSettings
from harness.shadow.backpressure import AdaptiveLimit, classify
from harness.shadow.breaker import CircuitBreaker
from harness.shadow.caller import Caller, MirrorCaller, MirrorPlan
from harness.shadow.gate import MirrorGate
from harness.shadow.live_budget import LiveBudget
from harness.shadow.recorder import RawExchange, observe
from harness.shadow.replay_upstream import ReceivedCall
from harness.shadow.sampling import policy_for
from harness.shadow.targets import SHADOW_HEADER, MirrorTargets
from harness.sse import format_of
from harness.store.writer import StoreHealth
from harness.upstream.join import REPEAT_SUFFIX
from harness.upstream.records import miss_record, received_record, tapped_record
from harness.usage import usage_tokens
from memory_proxy.memory_router import CONVERSATION_HEADER, MemoryRouter, client_family

__all__ = [
    "SHADOW_HEADER",
    "SHUTDOWN_OUTCOME",
    "MirrorEngine",
    "MirrorRequest",
    "MirrorStats",
    "PairSink",
    "status_comparison",
]

logger = logging.getLogger("harness.shadow")

# The mirror outcome of a pair the engine stopped before it could be mirrored.
SHUTDOWN_OUTCOME = "not mirrored: shutdown"
_REQUEST_HEADERS_KEPT = (
    "user-agent",
    "content-type",
    "anthropic-version",
    "anthropic-beta",
    "x-memory-user-id",
    "x-sm-conversation-id",
    "x-claude-code-session-id",
    "x-app",
)


class PairSink(Protocol):
    def put(self, pair: CapturedPair) -> bool: ...

    def add_unattached(self, target: str, calls: Iterable[dict[str, Any]]) -> int:
        """Keep provider calls no mirrored request claimed."""
        ...


@dataclass(frozen=True)
class MirrorRequest:
    """A client's request as the primary received it, headers still as ASGI bytes: the
    request path does not decode them unless the sampling policy needs to."""

    endpoint: str
    method: str
    path: str
    query: str
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes
    received_at: float

    def headers(self) -> list[tuple[str, str]]:
        """Lower-cased names, latin-1 as HTTP/1.1 carries them."""
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in self.raw_headers]

    def json_body(self) -> Any:
        """The body parsed as JSON, or None when it is empty or not JSON."""
        return _json_or_none(self.body)

    def model(self) -> str | None:
        parsed = self.json_body()
        model = parsed.get("model") if isinstance(parsed, dict) else None
        return model if isinstance(model, str) else None

    def as_tuple(self) -> tuple[str, str, str, str, list[tuple[bytes, bytes]], bytes, float]:
        return (
            self.endpoint,
            self.method,
            self.path,
            self.query,
            self.raw_headers,
            self.body,
            self.received_at,
        )


@dataclass
class MirrorStats:
    queued: int = 0
    completed: int = 0
    shadow_failed: int = 0
    worker_errors: int = 0
    store_rejected: int = 0
    in_flight: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    # A live, cheap comparison of each pair (see ``status_comparison``); the full diff
    # is the report's.
    differences: Counter[str] = field(default_factory=Counter)
    # Replay mode: mirrored requests whose primary made no provider call to replay.
    primary_unrecorded: int = 0
    # Queued requests stored primary-only instead of mirrored, by why (``shutdown``).
    not_mirrored: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "completed": self.completed,
            "shadow_failed": self.shadow_failed,
            "worker_errors": self.worker_errors,
            "store_rejected": self.store_rejected,
            "in_flight": self.in_flight,
            "skipped": dict(self.skipped),
            "differences": dict(self.differences),
            "primary_unrecorded": self.primary_unrecorded,
            "not_mirrored": dict(self.not_mirrored),
        }


@dataclass
class _Job:
    request_id: str
    request: MirrorRequest
    primary: asyncio.Future[RawExchange]
    noise_probe: bool
    # Set once the shadow target answered: a drain that cuts the job later keeps it.
    shadow: RawExchange | None = None
    twin: RawExchange | None = None


class MirrorEngine:
    def __init__(
        self,
        *,
        settings: HarnessSettings,
        sink: PairSink,
        targets: MirrorTargets,
        router: MemoryRouter | None = None,
        store_health: Callable[[], StoreHealth] | None = None,
        caller: Caller | None = None,
    ) -> None:
        """``store_health``: what the sink could not write, when the sink is a store that
        keeps count; reported with the counters, live, not only at exit. ``caller``:
        who sends the mirror requests and runs the replay upstream (default: this process;
        the mirror sidecar passes a :class:`~harness.shadow.caller.CallerProcess`)."""
        self.settings = settings
        self.sink = sink
        self.targets = targets
        self.router = router or MemoryRouter()
        self.store_health = store_health
        # The engine asks it only which requests are noise probes; admission is the
        # dispatch's, built from the same settings.
        self.policy = policy_for(settings.shadow, repeat=targets.repeat is not None)
        shadow = settings.shadow
        self.breaker = CircuitBreaker(shadow.breaker_failures, shadow.breaker_cooldown_seconds)
        self.gate = MirrorGate(AdaptiveLimit(shadow.max_in_flight))
        self.stats = MirrorStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.replayed = shadow.upstream == "replay"
        self.live_budget = (
            LiveBudget(shadow.live_budget_requests, shadow.live_budget_tokens)
            if shadow.upstream == "live"
            else None
        )
        self.caller: Caller = caller or MirrorCaller(settings, targets)
        self._twin_order: Counter[tuple[str, bool]] = Counter()

    def start(self) -> None:
        """Open what must listen before the first request: the replay upstream (in the
        caller); and, on a running event loop, the workers, whose set-up would otherwise
        stall the loop on the first mirrored request while more requests and the status
        reports wait behind it."""
        self.caller.start()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no running loop: built on first use
        else:
            self._ensure_workers()

    @property
    def replay_url(self) -> str | None:
        return self.caller.replay_url

    def snapshot(self) -> dict[str, Any]:
        snap = {
            **self.stats.as_dict(),
            "breaker": self.breaker.state,
            "queue_depth": self.queue_depth,
            "backpressure": {
                "limit": self.gate.limit.limit,
                "ceiling": self.gate.limit.ceiling,
                "decreases": self.gate.limit.decreases,
            },
        }
        if self.live_budget is not None:
            snap["live"] = {
                "suffix": self.settings.shadow.live_suffix,
                **self.live_budget.as_dict(),
            }
        if self.replayed:
            snap["replay"] = {"url": self.replay_url, "served": 0, "misses": 0}
            snap.update(self.caller.counters())
        if self.store_health is not None:
            health = self.store_health()
            snap["store"] = {**dataclasses.asdict(health), "ok": health.ok}
        return snap

    def has_room(self) -> bool:
        return self._queue is None or not self._queue.full()

    def full_reason(self) -> str:
        """Why a request finds no room: ``backpressure`` while the target's limit is down
        (the queue fills because the target is being spared), else ``queue_full``."""
        return "backpressure" if self.gate.limit.reduced else "queue_full"

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def enqueue(self, request: MirrorRequest, primary: asyncio.Future[RawExchange]) -> bool:
        """Queue an admitted request, without ever blocking or raising; True when queued.

        Room first, then the breaker: asking the breaker may grant its one half-open
        probe, which must then be sent, not shed by a full queue."""
        try:
            reason = None
            if not self.has_room():
                reason = self.full_reason()
            elif not self.breaker.allow():
                reason = "breaker_open"
            elif self.live_budget is not None and not self.live_budget.admit():
                reason = "live_budget"
            if reason is not None:
                self.stats.skipped[reason] += 1
                return False
            request_id = "shd_" + uuid.uuid4().hex[:20]
            job = _Job(request_id, request, primary, self.policy.is_noise_probe(request_id))
            self._ensure_workers().put_nowait(job)
            self.stats.queued += 1
            return True
        except asyncio.QueueFull:
            self.stats.skipped[self.full_reason()] += 1
        except Exception:  # noqa: BLE001 - mirroring must never fail the request
            self.stats.worker_errors += 1
            logger.exception("could not queue a mirror")
        return False

    # -- workers --------------------------------------------------------------------------

    def _ensure_workers(self) -> asyncio.Queue[_Job]:
        if self._queue is None:
            shadow = self.settings.shadow
            self._queue = asyncio.Queue(maxsize=shadow.queue_size)
            self._workers = [
                asyncio.create_task(self._work(), name=f"shadow-mirror-{i}")
                for i in range(shadow.max_in_flight)
            ]
        return self._queue

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            self.stats.in_flight += 1
            try:
                await self._mirror(job)
            except asyncio.CancelledError:
                # The drain deadline passed with this job still out: keep what it has.
                self._keep_cut(job)
                raise
            except Exception:  # noqa: BLE001 - one bad job must not stop the worker
                self.stats.worker_errors += 1
                logger.exception("mirror of %s failed", job.request_id)
            finally:
                self.stats.in_flight -= 1
                self._queue.task_done()

    def twin_first(self, endpoint: str, primary: RawExchange | None) -> bool:
        """Whether the latency twin's copy is written before the mirror's: in turn within
        each latency slice (endpoint x stream, the stream told by the primary's answer),
        so each slice has the twin first in half its pairs. The side written first is the
        slower one (same build on both sides: +0.3-0.5 ms at the median); a single turn
        for all requests gave it to the same side in every pair of a slice whenever the
        traffic alternates (a call, a stream, a call...), a bias of 3-8 % on a 6-13 ms
        median."""
        key = (endpoint, primary is not None and primary.streamed)
        self._twin_order[key] += 1
        return self._twin_order[key] % 2 == 1

    async def _primary_answer(self, job: _Job) -> RawExchange:
        try:
            return await asyncio.wait_for(
                asyncio.shield(job.primary), self.settings.shadow.timeout_seconds
            )
        except TimeoutError:
            return RawExchange(error="primary_timeout")

    async def _mirror(self, job: _Job) -> None:
        if self.replayed:
            # The mirror's provider calls are answered with the primary's: they must exist.
            primary_raw = await self._primary_answer(job)
        started_round = await self.gate.acquire()
        signal = None
        try:
            request = job.request.as_tuple()
            if self.live_budget is not None:
                request = (*request[:4], self._isolated(job.request.headers()), *request[5:])
            plan = MirrorPlan(
                request,
                job.request_id,
                primary_raw.upstream if self.replayed else None,
                job.noise_probe,
                self.twin_first(job.request.endpoint, primary_raw if self.replayed else None),
            )
            outcome = await self.caller.mirror(plan)
            shadow_raw = job.shadow = outcome.shadow
            job.twin = outcome.twin
            if self.replayed and not outcome.registered:
                self.stats.primary_unrecorded += 1
            signal = classify(
                shadow_raw.status,
                shadow_raw.error,
                _added_latency(shadow_raw, job.primary),
                self.settings.shadow.backpressure_latency_seconds,
            )
            # Any transport failure counts: a target that died mid-run first shows up as a
            # dropped keep-alive connection, not as a refused one.
            if shadow_raw.error is not None:
                self.breaker.record_failure()
                self.stats.shadow_failed += 1
            else:
                self.breaker.record_success()
        finally:
            # The slot covers the A/A repeat too (the same legacy target); only the
            # shadow call's answer says how the target is doing.
            self.gate.release(signal, started_round)
        if not self.replayed:
            primary_raw = await self._primary_answer(job)
        self._store(
            job, primary_raw, shadow_raw, outcome.repeat, outcome.received, outcome.repeat_received
        )
        self._keep_unattached(outcome.unattached)

    def _store(
        self,
        job: _Job,
        primary_raw: RawExchange,
        shadow_raw: RawExchange | None,
        repeat_raw: RawExchange | None = None,
        shadow_calls: list[ReceivedCall] | None = None,
        repeat_calls: list[ReceivedCall] | None = None,
        not_mirrored: str | None = None,
    ) -> None:
        """Hand the pair to the sink. ``shadow_raw`` None: primary-only, ``not_mirrored``
        saying why."""
        targets = self.targets
        fmt = format_of(job.request.endpoint)
        keep = self.settings.capture.headers
        max_events = self.settings.capture.max_events
        if shadow_raw is None:
            outcome = f"not mirrored: {not_mirrored}"
        elif shadow_raw.error is None:
            outcome = "mirrored"
        else:
            outcome = f"failed:{shadow_raw.error}"
        pair = CapturedPair(
            request=self._captured_request(job),
            primary=observe(
                targets.primary, primary_raw, fmt, keep_headers=keep, max_events=max_events
            ),
            shadow=(
                observe(
                    targets.shadow.role, shadow_raw, fmt, keep_headers=keep, max_events=max_events
                )
                if shadow_raw is not None
                else None
            ),
            shadow_repeat=(
                observe(
                    targets.repeat.role, repeat_raw, fmt, keep_headers=keep, max_events=max_events
                )
                if repeat_raw is not None and targets.repeat is not None
                else None
            ),
            mirror_outcome=outcome,
            upstream=(
                self._upstream(job, primary_raw, shadow_calls or [], repeat_calls or [])
                if self.replayed
                else None
            )
            or {},
            upstream_mode="replay" if self.replayed else "live",
            latency_twin=(
                observe(targets.twin.role, job.twin, fmt, keep_headers=keep, max_events=max_events)
                if job.twin is not None and shadow_raw is not None and targets.twin is not None
                else None
            ),
        )
        if self.live_budget is not None:
            for answer in (pair.shadow, pair.shadow_repeat):
                self.live_budget.spend(usage_tokens(answer, fmt))
        if shadow_raw is not None:
            self.stats.differences[status_comparison(primary_raw, shadow_raw)] += 1
        else:
            self.stats.not_mirrored[not_mirrored or "unknown"] += 1
        if self.sink.put(pair):
            self.stats.completed += 1
        else:
            self.stats.store_rejected += 1

    def keep_unattached(self) -> None:
        """With an in-process caller (the selftest): store the unattached calls it holds
        now, not only with the next outcome."""
        if isinstance(self.caller, MirrorCaller):
            self._keep_unattached(self.caller.take_unattached())

    def _keep_unattached(self, calls: list[ReceivedCall]) -> None:
        """The mirror side's provider calls the replay upstream (in the caller) could not
        give to a request: into the store, never dropped. The caller hands them over with
        each outcome, and the rest when it closes."""
        if calls:
            self.sink.add_unattached(self.targets.shadow.role, [miss_record(c) for c in calls])

    def _keep_unsent(self, job: _Job) -> None:
        """A job the drain will not send: stored primary-only, never dropped."""
        try:
            self._store(job, _settled(job.primary), None, not_mirrored="shutdown")
        except Exception:  # noqa: BLE001 - the next job must still be kept
            self.stats.worker_errors += 1
            logger.exception("could not keep the unsent mirror %s", job.request_id)

    def _keep_cut(self, job: _Job) -> None:
        """A job the drain deadline cut: mirrored if the target had answered, else
        primary-only."""
        if job.shadow is None:
            self._keep_unsent(job)
            return
        try:
            self._store(job, _settled(job.primary), job.shadow)
        except Exception:  # noqa: BLE001
            self.stats.worker_errors += 1
            logger.exception("could not keep the cut mirror %s", job.request_id)

    def _upstream(
        self,
        job: _Job,
        primary: RawExchange,
        shadow_calls: list[ReceivedCall],
        repeat_calls: list[ReceivedCall],
    ) -> dict[str, list[dict[str, Any]]] | None:
        """Both sides' provider calls, when replay saw any: the primary's from its tap, the
        mirror side's as they reached the replay upstream (the A/A repeat's apart)."""
        if not primary.upstream and not shadow_calls:
            return None
        arrived = job.request.received_at
        calls = {
            self.targets.primary: [
                tapped_record(c, primary.began, arrived) for c in primary.upstream
            ],
            self.targets.shadow.role: [received_record(c) for c in shadow_calls],
        }
        if repeat_calls and self.targets.repeat is not None:
            key = self.targets.repeat.role + REPEAT_SUFFIX
            calls[key] = [received_record(c) for c in repeat_calls]
        return calls

    def _isolated(self, headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
        """Live mode: the mirror's memory user and conversation are the client's plus
        ``shadow.live_suffix``, through the memory router's own override headers, so the
        mirror's calls write memories apart from the user's. Decided here, where the
        router is; the caller sends the headers as planned (raw, as the request came)."""
        suffix = self.settings.shadow.live_suffix
        decision = self.router.detect_user_id(dict(headers))
        custom = self.router.mappings.custom_header.lower()
        kept = [(k, v) for k, v in headers if k not in (custom, CONVERSATION_HEADER)]
        kept.append((custom, decision.user_id + suffix))
        if decision.conversation_id:
            kept.append((CONVERSATION_HEADER, decision.conversation_id + suffix))
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in kept]

    def _captured_request(self, job: _Job) -> CapturedRequest:
        request = job.request
        lookup = dict(request.headers())
        decision = self.router.detect_user_id(lookup)
        body = request.json_body()
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
        return CapturedRequest(
            request_id=job.request_id,
            received_at=request.received_at,
            method=request.method,
            path=request.path,
            endpoint=request.endpoint,
            model=body.get("model") if isinstance(body, dict) else None,
            stream=stream,
            user_id=decision.user_id,
            conversation_id=decision.conversation_id,
            client_family=client_family(lookup.get("user-agent")),
            headers={k: lookup[k] for k in _REQUEST_HEADERS_KEPT if k in lookup},
            body=body,
            correlation_key=correlation_key(body, stream),
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def drain(self, timeout: float | None = None) -> None:
        """Stop mirroring: queued mirrors are kept primary-only at once, mirrors a worker
        holds get ``timeout`` (default ``shadow.drain_seconds``), then the workers stop
        and the mirrors they still hold are kept the same way."""
        if self._queue is not None:
            # Not sent into a target that may be the reason they waited: a stop must not
            # spend minutes feeding it.
            while not self._queue.empty():
                self._keep_unsent(self._queue.get_nowait())
                self._queue.task_done()
            limit = timeout if timeout is not None else self.settings.shadow.drain_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), limit)
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers = []
        self._queue = None
        unattached = await self.caller.close()
        with contextlib.suppress(Exception):  # the store may be gone with the process
            self._keep_unattached(unattached)


def status_comparison(primary: RawExchange, shadow: RawExchange) -> str:
    """How a pair's two sides compare, at the cost of two status codes. Pure.

    ``same_status``, ``status_differs``, or which side failed to answer at all. A full
    diff (content, tool calls, usage, event order) costs a decode of both answers; it is
    the comparator's, run on the stored pairs.
    """
    if primary.error is not None:
        return "primary_failed"
    if shadow.error is not None:
        return "shadow_failed"
    return "same_status" if primary.status == shadow.status else "status_differs"


def _settled(primary: asyncio.Future[RawExchange]) -> RawExchange:
    """The primary's answer without waiting: at shutdown it has come, or never will."""
    if primary.done() and not primary.cancelled() and primary.exception() is None:
        return primary.result()
    return RawExchange(error="primary_gone")


def _added_latency(shadow: RawExchange, primary: asyncio.Future[RawExchange]) -> float:
    """Seconds the shadow's answer headers came after the primary's: the target's own
    delay, not the provider's (which both sides wait for, replayed or live)."""
    shadow_ms = shadow.time_to_headers_ms if shadow.time_to_headers_ms is not None else 0.0
    known = _settled(primary) if primary.done() else None
    primary_ms = known.time_to_headers_ms if known is not None else None
    return max(0.0, shadow_ms - (primary_ms or 0.0)) / 1000


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
