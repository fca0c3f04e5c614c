"""``MirrorEngine``: sends mirrored requests to the shadow target and stores both answers.

It takes a :class:`MirrorRequest` its dispatch has admitted, plus a future for the
primary's answer, makes the last two checks (room in the queue, circuit breaker: steps
6 and 7 of the admission path drawn in :mod:`harness.shadow.dispatch`), and lets at
most ``max_in_flight`` workers send the request to the shadow target, wait for the
primary's answer, turn both into observations and hand the pair to the store.

In replay mode (``shadow.upstream: replay``) it also runs the replay upstream the mirror
proxy's providers point at (:mod:`harness.shadow.replay_upstream`): a worker first waits
for the primary's answer, registers the provider calls the primary made for it, then
sends the mirror request, which is answered with them; both sides' provider calls go
into the pair (``upstream``). In live mode the mirror request leaves at once. It runs
wherever the mirror's work is meant to run: in the serving process
(``shadow.mirror_process: false``) or in the mirror sidecar process
(:mod:`harness.shadow.sidecar`), which keeps all of this off the primary's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from harness.loopback import LoopbackServer
from harness.observation import CapturedPair, CapturedRequest, correlation_key
from harness.settings import HarnessSettings, replay_address
from harness.shadow.breaker import CircuitBreaker
from harness.shadow.recorder import RawExchange, format_of, observe
from harness.shadow.replay_upstream import ReceivedCall, ReplayUpstream
from harness.shadow.sampling import policy_for
from harness.shadow.targets import MirrorTargets
from harness.store.writer import StoreHealth
from harness.upstream.records import received_record, tapped_record
from memory_proxy.http_headers import HOP_BY_HOP_HEADERS as _NOT_MIRRORED
from memory_proxy.memory_router import MemoryRouter, client_family

__all__ = [
    "SHADOW_HEADER",
    "MirrorEngine",
    "MirrorRequest",
    "MirrorStats",
    "PairSink",
    "status_comparison",
]

logger = logging.getLogger("harness.shadow")

SHADOW_HEADER = "x-shadow-request"
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
        }


@dataclass
class _Job:
    request_id: str
    request: MirrorRequest
    primary: asyncio.Future[RawExchange]
    noise_probe: bool


class MirrorEngine:
    def __init__(
        self,
        *,
        settings: HarnessSettings,
        sink: PairSink,
        targets: MirrorTargets,
        router: MemoryRouter | None = None,
        store_health: Callable[[], StoreHealth] | None = None,
    ) -> None:
        """``store_health``: what the sink could not write, when the sink is a store that
        keeps count; reported with the counters, live, not only at exit."""
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
        self.stats = MirrorStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None
        self.replay = ReplayUpstream() if shadow.upstream == "replay" else None
        self._replay_server: LoopbackServer | None = None

    def start(self) -> None:
        """Open what must listen before the first request: the replay upstream."""
        if self.replay is not None and self._replay_server is None:
            host, port = replay_address(self.settings.shadow.replay_listen)
            self._replay_server = LoopbackServer(self.replay, port, host=host).start()
            logger.info("replay upstream listening on %s", self._replay_server.url)

    @property
    def replay_url(self) -> str | None:
        return self._replay_server.url if self._replay_server is not None else None

    def snapshot(self) -> dict[str, Any]:
        snap = {
            **self.stats.as_dict(),
            "breaker": self.breaker.state,
            "queue_depth": self.queue_depth,
        }
        if self.replay is not None:
            snap["replay"] = {
                "url": self.replay_url,
                "served": self.replay.served,
                "misses": self.replay.misses,
            }
        if self.store_health is not None:
            health = self.store_health()
            snap["store"] = {**dataclasses.asdict(health), "ok": health.ok}
        return snap

    def has_room(self) -> bool:
        return self._queue is None or not self._queue.full()

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
                reason = "queue_full"
            elif not self.breaker.allow():
                reason = "breaker_open"
            if reason is not None:
                self.stats.skipped[reason] += 1
                return False
            request_id = "shd_" + uuid.uuid4().hex[:20]
            job = _Job(request_id, request, primary, self.policy.is_noise_probe(request_id))
            self._ensure_workers().put_nowait(job)
            self.stats.queued += 1
            return True
        except asyncio.QueueFull:
            self.stats.skipped["queue_full"] += 1
        except Exception:  # noqa: BLE001 - mirroring must never fail the request
            self.stats.worker_errors += 1
            logger.exception("could not queue a mirror")
        return False

    # -- workers --------------------------------------------------------------------------

    def _ensure_workers(self) -> asyncio.Queue[_Job]:
        if self._queue is None:
            shadow = self.settings.shadow
            self._queue = asyncio.Queue(maxsize=shadow.queue_size)
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(shadow.timeout_seconds, connect=5.0),
                limits=httpx.Limits(max_connections=shadow.max_in_flight * 2),
                trust_env=False,
            )
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
            except Exception:  # noqa: BLE001 - one bad job must not stop the worker
                self.stats.worker_errors += 1
                logger.exception("mirror of %s failed", job.request_id)
            finally:
                self.stats.in_flight -= 1
                self._queue.task_done()

    async def _primary_answer(self, job: _Job) -> RawExchange:
        try:
            return await asyncio.wait_for(
                asyncio.shield(job.primary), self.settings.shadow.timeout_seconds
            )
        except TimeoutError:
            return RawExchange(error="primary_timeout")

    async def _mirror(self, job: _Job) -> None:
        fmt = format_of(job.request.endpoint)
        targets = self.targets
        registration = None
        if self.replay is not None:
            # The mirror's provider calls are answered with the primary's: they must exist.
            primary_raw = await self._primary_answer(job)
            registration = self.replay.expect(primary_raw.upstream)
            if registration is None:
                self.stats.primary_unrecorded += 1
        try:
            shadow_raw = await self._call(targets.shadow.url, job)
            shadow_calls = list(registration.received) if registration is not None else []
            # Any transport failure counts: a target that died mid-run first shows up as a
            # dropped keep-alive connection, not as a refused one.
            if shadow_raw.error is not None:
                self.breaker.record_failure()
                self.stats.shadow_failed += 1
            else:
                self.breaker.record_success()
            repeat_raw = None
            if job.noise_probe and targets.repeat is not None and shadow_raw.error is None:
                repeat_raw = await self._call(targets.repeat.url, job)
        finally:
            if registration is not None:
                self.replay.release(registration)  # type: ignore[union-attr]
        if self.replay is None:
            primary_raw = await self._primary_answer(job)
        keep = self.settings.capture.headers
        max_events = self.settings.capture.max_events
        pair = CapturedPair(
            request=self._captured_request(job),
            primary=observe(
                targets.primary, primary_raw, fmt, keep_headers=keep, max_events=max_events
            ),
            shadow=observe(
                targets.shadow.role, shadow_raw, fmt, keep_headers=keep, max_events=max_events
            ),
            shadow_repeat=(
                observe(
                    targets.repeat.role, repeat_raw, fmt, keep_headers=keep, max_events=max_events
                )
                if repeat_raw is not None and targets.repeat is not None
                else None
            ),
            mirror_outcome="mirrored" if shadow_raw.error is None else f"failed:{shadow_raw.error}",
            upstream=(self._upstream(job, primary_raw, shadow_calls) if self.replay else None)
            or {},
            upstream_mode="replay" if self.replay is not None else "live",
        )
        self.stats.differences[status_comparison(primary_raw, shadow_raw)] += 1
        if self.sink.put(pair):
            self.stats.completed += 1
        else:
            self.stats.store_rejected += 1

    async def _call(self, base_url: str, job: _Job) -> RawExchange:
        assert self._http is not None
        request = job.request
        raw = RawExchange()
        began = time.perf_counter()
        headers = [(k, v) for k, v in request.headers() if k not in _NOT_MIRRORED]
        headers.append((SHADOW_HEADER, job.request_id))
        url = base_url + request.path + (f"?{request.query}" if request.query else "")
        cap = self.settings.capture.max_body_bytes
        try:
            async with asyncio.timeout(self.settings.shadow.timeout_seconds):
                outgoing = self._http.build_request(
                    request.method,
                    url,
                    headers=headers,
                    content=request.body if request.method != "GET" else None,
                )
                reply = await self._http.send(outgoing, stream=True)
                raw.status = reply.status_code
                raw.time_to_headers_ms = (time.perf_counter() - began) * 1000
                raw.headers = list(reply.headers.items())
                try:
                    async for chunk in reply.aiter_bytes():
                        raw.add_chunk((time.perf_counter() - began) * 1000, chunk, cap)
                finally:
                    await reply.aclose()
        except TimeoutError:
            raw.error = "timeout"
        except httpx.ConnectError:
            raw.error = "connect"
        except httpx.HTTPError as exc:
            raw.error = type(exc).__name__
        raw.total_ms = (time.perf_counter() - began) * 1000
        return raw

    def _upstream(
        self, job: _Job, primary: RawExchange, shadow_calls: list[ReceivedCall]
    ) -> dict[str, list[dict[str, Any]]] | None:
        """Both sides' provider calls, when replay saw any: the primary's from its tap, the
        mirror side's as they reached the replay upstream."""
        if not primary.upstream and not shadow_calls:
            return None
        arrived = job.request.received_at
        return {
            self.targets.primary: [
                tapped_record(c, primary.began, arrived) for c in primary.upstream
            ],
            self.targets.shadow.role: [received_record(c) for c in shadow_calls],
        }

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
            correlation_key=correlation_key(decision.user_id, body, stream),
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def drain(self, timeout: float | None = None) -> None:
        """Let queued and in-flight mirrors finish (bounded), then stop the workers."""
        if self._queue is not None:
            limit = timeout if timeout is not None else self.settings.shadow.timeout_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), limit)
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers = []
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._queue = None
        if self._replay_server is not None:
            self._replay_server.stop()
            self._replay_server = None


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


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
