"""``ShadowMirror``: ASGI middleware that mirrors requests without touching the answer.

On the request path it only taps ``receive`` (to keep a copy of the body) and ``send``
(to time and keep a capped copy of the primary's answer). Once the body is complete a
job goes into a bounded queue; if the queue is full, or the circuit breaker is open,
the request is simply not mirrored and a counter says why. Workers (at most
``max_in_flight``) send the job to the shadow target, wait for the primary's answer to
end, and hand both to the store. Nothing here is awaited by the client's request, and
nothing here can raise into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.observation import CapturedPair, CapturedRequest
from harness.settings import HarnessSettings
from harness.shadow.breaker import CircuitBreaker
from harness.shadow.recorder import RawExchange, format_of, observe
from harness.shadow.sampling import SamplingPolicy, endpoint_of
from harness.upstream_join import correlation_key
from memory_proxy.memory_router import MemoryRouter, client_family

__all__ = ["MirrorStats", "PairSink", "ShadowMirror"]

logger = logging.getLogger("harness.shadow")

SHADOW_HEADER = "x-shadow-request"
STATS_PATH = "/_shadow/stats"
PREREAD_LIMIT = 32 * 1024 * 1024
# Hop-by-hop and transport headers are the sender's own business; everything else is
# mirrored as the client sent it (the shadow proxy authenticates it the same way).
_NOT_MIRRORED = {
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "accept-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
}
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


@dataclass
class MirrorStats:
    seen: int = 0
    queued: int = 0
    completed: int = 0
    shadow_failed: int = 0
    worker_errors: int = 0
    store_rejected: int = 0
    in_flight: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "queued": self.queued,
            "completed": self.completed,
            "shadow_failed": self.shadow_failed,
            "worker_errors": self.worker_errors,
            "store_rejected": self.store_rejected,
            "in_flight": self.in_flight,
            "skipped": dict(self.skipped),
        }


@dataclass
class _Job:
    request_id: str
    endpoint: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float
    primary: asyncio.Future[RawExchange]
    noise_probe: bool


class ShadowMirror:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: HarnessSettings,
        sink: PairSink,
        shadow_url: str,
        repeat_url: str | None,
        primary_name: str,
        shadow_name: str,
        router: MemoryRouter | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.sink = sink
        self.shadow_url = shadow_url.rstrip("/")
        self.repeat_url = repeat_url.rstrip("/") if repeat_url else None
        self.primary_name = primary_name
        self.shadow_name = shadow_name
        self.router = router or MemoryRouter()
        shadow = settings.shadow
        self.policy = SamplingPolicy(
            rate=shadow.sample_rate,
            endpoints=shadow.endpoints,
            models=shadow.models,
            aa_rate=shadow.aa_rate if self.repeat_url else 0.0,
        )
        self.breaker = CircuitBreaker(shadow.breaker_failures, shadow.breaker_cooldown_seconds)
        self.stats = MirrorStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._http: httpx.AsyncClient | None = None

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == STATS_PATH:
            await _send_json(send, {**self.stats.as_dict(), "breaker": self.breaker.state})
            return
        endpoint = endpoint_of(scope["method"], scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        await self._serve_and_mirror(scope, receive, send, endpoint)

    async def _serve_and_mirror(
        self, scope: Scope, receive: Receive, send: Send, endpoint: str
    ) -> None:
        self.stats.seen += 1
        began = time.perf_counter()
        received_at = time.time()
        loop = asyncio.get_running_loop()
        primary: asyncio.Future[RawExchange] = loop.create_future()
        raw = RawExchange()
        cap = self.settings.capture.max_body_bytes
        # Read the body before the app does (it arrives no later for that), so the mirror
        # has it even when the primary answers without reading it (a 401, say). A body
        # larger than the pre-read bound streams on to the app and is not mirrored.
        parts: list[bytes] = []
        size = 0
        more = scope["method"] != "GET"
        held: Message | None = None
        while more and size <= PREREAD_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                held = message
                break
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            more = message.get("more_body", False)
        replay: list[Message] = [
            {"type": "http.request", "body": b"".join(parts), "more_body": more}
        ]
        if held is not None:
            replay.append(held)
        if held is None and not more:
            self._offer(scope, endpoint, replay[0]["body"], received_at, primary)
        elif size > PREREAD_LIMIT:
            self.stats.skipped["body_too_large"] += 1

        async def tapped_receive() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        async def tapped_send(message: Message) -> None:
            offset = (time.perf_counter() - began) * 1000
            if message["type"] == "http.response.start":
                raw.status = message["status"]
                raw.time_to_headers_ms = offset
                raw.headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                ]
            elif message["type"] == "http.response.body":
                raw.add_chunk(offset, message.get("body", b""), cap)
                if not message.get("more_body", False):
                    raw.total_ms = offset
            try:
                await send(message)
            except BaseException:
                raw.error = raw.error or "client_disconnected"
                raise

        try:
            await self.app(scope, tapped_receive, tapped_send)
        except BaseException as exc:
            raw.error = raw.error or f"primary_error:{type(exc).__name__}"
            raise
        finally:
            if raw.total_ms is None:
                raw.total_ms = (time.perf_counter() - began) * 1000
            if not primary.done():
                primary.set_result(raw)

    def _offer(
        self,
        scope: Scope,
        endpoint: str,
        body: bytes,
        received_at: float,
        primary: asyncio.Future[RawExchange],
    ) -> None:
        """Decide and enqueue, without ever blocking or raising."""
        try:
            headers = [
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in scope.get("headers", [])
            ]
            lookup = dict(headers)
            decision = self.router.detect_user_id(lookup)
            key = decision.conversation_id or decision.user_id
            # Parse the body here only when a model filter needs it: this is the request path.
            model = _model_of(body) if self.policy.models else None
            reason = self.policy.decide(endpoint, model, key)
            if reason is None and not self.breaker.allow():
                reason = "skipped:breaker_open"
            if reason is not None:
                self.stats.skipped[reason.removeprefix("skipped:")] += 1
                return
            request_id = "shd_" + uuid.uuid4().hex[:20]
            job = _Job(
                request_id=request_id,
                endpoint=endpoint,
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
                received_at=received_at,
                primary=primary,
                noise_probe=self.policy.is_noise_probe(request_id),
            )
            queue = self._ensure_workers()
            queue.put_nowait(job)
            self.stats.queued += 1
        except asyncio.QueueFull:
            self.stats.skipped["queue_full"] += 1
        except Exception:  # noqa: BLE001 - mirroring must never fail the request
            self.stats.worker_errors += 1
            logger.exception("could not queue a mirror")

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

    async def _mirror(self, job: _Job) -> None:
        fmt = format_of(job.endpoint)
        shadow_raw = await self._call(self.shadow_url, job)
        if shadow_raw.error in ("connect", "timeout"):
            self.breaker.record_failure()
            self.stats.shadow_failed += 1
        else:
            self.breaker.record_success()
        repeat_raw = None
        if job.noise_probe and self.repeat_url and shadow_raw.error is None:
            repeat_raw = await self._call(self.repeat_url, job)
        timeout = self.settings.shadow.timeout_seconds
        try:
            primary_raw = await asyncio.wait_for(asyncio.shield(job.primary), timeout)
        except TimeoutError:
            primary_raw = RawExchange(error="primary_timeout")
        keep = self.settings.capture.headers
        max_events = self.settings.capture.max_events
        pair = CapturedPair(
            request=self._captured_request(job),
            primary=observe(
                self.primary_name, primary_raw, fmt, keep_headers=keep, max_events=max_events
            ),
            shadow=observe(
                self.shadow_name, shadow_raw, fmt, keep_headers=keep, max_events=max_events
            ),
            shadow_repeat=(
                observe(
                    self._repeat_name(), repeat_raw, fmt, keep_headers=keep, max_events=max_events
                )
                if repeat_raw is not None
                else None
            ),
            mirror_outcome="mirrored" if shadow_raw.error is None else f"failed:{shadow_raw.error}",
        )
        if self.sink.put(pair):
            self.stats.completed += 1
        else:
            self.stats.store_rejected += 1

    def _repeat_name(self) -> str:
        return "legacy"

    async def _call(self, base_url: str, job: _Job) -> RawExchange:
        assert self._http is not None
        raw = RawExchange()
        began = time.perf_counter()
        headers = [(k, v) for k, v in job.headers if k not in _NOT_MIRRORED]
        headers.append((SHADOW_HEADER, job.request_id))
        url = base_url + job.path + (f"?{job.query}" if job.query else "")
        cap = self.settings.capture.max_body_bytes
        try:
            async with asyncio.timeout(self.settings.shadow.timeout_seconds):
                request = self._http.build_request(
                    job.method,
                    url,
                    headers=headers,
                    content=job.body if job.method != "GET" else None,
                )
                reply = await self._http.send(request, stream=True)
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

    def _captured_request(self, job: _Job) -> CapturedRequest:
        lookup = dict(job.headers)
        decision = self.router.detect_user_id(lookup)
        body = _json_or_none(job.body)
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
        return CapturedRequest(
            request_id=job.request_id,
            received_at=job.received_at,
            method=job.method,
            path=job.path,
            endpoint=job.endpoint,
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

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.drain()
            return message

        await self.app(scope, wrapped_receive, send)


def _model_of(body: bytes) -> str | None:
    parsed = _json_or_none(body)
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else None


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


async def _send_json(send: Send, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
