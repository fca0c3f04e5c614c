"""The mirror's HTTP exchanges and the replay upstream: the part of mirroring that is timed.

::

    mirror sidecar (SCHED_IDLE, nice)          mirror caller (the primary's priority)
    MirrorEngine --MirrorPlan--frames-->  MirrorCaller: replay upstream (+ twin book),
      observe, redact, store  <--MirrorOutcome--  HTTP client -> mirror, latency twin

:class:`MirrorCaller` registers the primary's provider calls with the replay upstream,
sends the mirror request (and, at the same moment, the latency twin's copy; then the A/A
repeat when asked) and times each answer chunk by chunk; that is all it does.

Why it is a process of its own: the mirror sidecar runs only on CPU time the primary
leaves (:mod:`harness.cpu_priority`), so a clock read there is read whenever the sidecar
next gets a CPU. On a loaded 2-core host (load average 8-10) the twin and the mirror,
timed in the sidecar, took 0.25-9 s for answers the primary had in 50 ms: the timings
were the sidecar's scheduling, not the proxies. A thread of the sidecar would not do: a
SCHED_IDLE thread holding the GIL, preempted, blocks a normal thread waiting for it. So
the sidecar starts this process before it lowers its own priority, and it keeps the
primary's. It does only I/O (the HTTP client, the replay's pacing); decoding, redaction
and SQLite stay in the sidecar. In-process (``shadow.mirror_process: false``, tests) the
engine holds a :class:`MirrorCaller` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import httpx

from harness.loopback import LoopbackServer
from harness.settings import HarnessSettings, replay_address
from harness.shadow.frames import frame, read_frame
from harness.shadow.recorder import RawExchange
from harness.shadow.replay_upstream import ReceivedCall, ReplayRouter, ReplayUpstream
from harness.shadow.targets import SHADOW_HEADER, MirrorTargets
from harness.shadow.upstream_tap import CallRecord
from memory_proxy.http_headers import HOP_BY_HOP_HEADERS as _NOT_MIRRORED
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV

__all__ = ["Caller", "CallerProcess", "MirrorCaller", "MirrorOutcome", "MirrorPlan", "main"]

logger = logging.getLogger("harness.shadow")

# The request as MirrorRequest.as_tuple() gives it: (endpoint, method, path, query,
# raw headers, body, received_at).
RequestTuple = tuple[str, str, str, str, list[tuple[bytes, bytes]], bytes, float]


@dataclass(frozen=True)
class MirrorPlan:
    """What to send for one mirrored request. ``upstream``: the primary's provider calls
    to replay (replay mode), None in live mode. ``twin_first``: whether the latency twin's
    copy is written before the mirror's (the engine alternates it per latency slice)."""

    request: RequestTuple
    request_id: str
    upstream: tuple[CallRecord, ...] | None
    noise_probe: bool
    twin_first: bool = False

    def to_wire(self) -> tuple[Any, ...]:
        return (self.request, self.request_id, self.upstream, self.noise_probe, self.twin_first)

    @classmethod
    def from_wire(cls, wire: tuple[Any, ...]) -> MirrorPlan:
        request, request_id, upstream, noise_probe, twin_first = wire
        return cls(tuple(request), request_id, upstream, noise_probe, twin_first)


@dataclass
class MirrorOutcome:
    """What came back: the mirror's answer, the twin's and the A/A repeat's when sent,
    what the mirror side sent the provider, and whether the primary's calls could be
    registered (replay mode: False when it made none to replay)."""

    shadow: RawExchange
    twin: RawExchange | None = None
    repeat: RawExchange | None = None
    received: list[ReceivedCall] = field(default_factory=list)
    registered: bool = False
    # The A/A repeat's provider calls: they reach the same registration after the
    # mirror's, and are kept apart so they count as the repeat's, not as duplicates.
    repeat_received: list[ReceivedCall] = field(default_factory=list)
    # Mirror-side provider calls no registration claimed (replay misses, duplicates sent
    # after their request was answered), taken after this mirror: the engine stores them.
    unattached: list[ReceivedCall] = field(default_factory=list)

    def to_wire(self) -> tuple[Any, ...]:
        return (
            _raw_to_wire(self.shadow),
            _raw_to_wire(self.twin),
            _raw_to_wire(self.repeat),
            _calls_to_wire(self.received),
            self.registered,
            _calls_to_wire(self.repeat_received),
            _calls_to_wire(self.unattached),
        )

    @classmethod
    def from_wire(cls, wire: tuple[Any, ...]) -> MirrorOutcome:
        shadow, twin, repeat, received, registered, repeat_received, unattached = wire
        return cls(
            _raw_from_wire(shadow) or RawExchange(error="caller_gone"),
            _raw_from_wire(twin),
            _raw_from_wire(repeat),
            _calls_from_wire(received),
            registered,
            _calls_from_wire(repeat_received),
            _calls_from_wire(unattached),
        )


class Caller(Protocol):
    """What the mirror engine needs of a caller, in-process or in its own process."""

    @property
    def replay_url(self) -> str | None: ...

    def start(self) -> None: ...

    def counters(self) -> dict[str, Any]: ...

    async def mirror(self, plan: MirrorPlan) -> MirrorOutcome: ...

    async def close(self) -> list[ReceivedCall]:
        """Stop; the mirror side's unattached calls not yet handed over."""
        ...


class MirrorCaller:
    """The calls and the replay upstream, in this process (see the module docstring)."""

    def __init__(self, settings: HarnessSettings, targets: MirrorTargets) -> None:
        self.settings = settings
        self.targets = targets
        shadow = settings.shadow
        self.replay = ReplayUpstream() if shadow.upstream == "replay" else None
        # The latency twin's own book (replay only: live, it would call the provider too).
        self.twin_replay = (
            ReplayUpstream() if self.replay is not None and targets.twin is not None else None
        )
        self._replay_server: LoopbackServer | None = None
        self._http: httpx.AsyncClient | None = None
        # Replay releases mirrors as the sidecar reads the primary's answers: after a
        # stall, many at once. Timed all together, the mirror and the twin would be timed
        # answering a burst the primary never saw (same build on both sides: 0.25-9 s for
        # answers the primary gave in 50 ms, on a loaded 2-core host). The rest wait here,
        # before their clocks start.
        self._timed = asyncio.Semaphore(max(1, shadow.timed_in_flight))

    def start(self) -> None:
        """Open what must listen before the first request: the replay upstream."""
        if self.replay is not None and self._replay_server is None:
            host, port = replay_address(self.settings.shadow.replay_listen)
            app = ReplayRouter(self.replay, self.twin_replay)
            self._replay_server = LoopbackServer(app, port, host=host).start()
            logger.info("replay upstream listening on %s", self._replay_server.url)

    @property
    def replay_url(self) -> str | None:
        return self._replay_server.url if self._replay_server is not None else None

    def counters(self) -> dict[str, Any]:
        if self.replay is None:
            return {}
        replay: dict[str, Any] = {
            "url": self.replay_url,
            "served": self.replay.served,
            "misses": self.replay.misses,
        }
        if self.twin_replay is not None:
            replay["twin"] = {"served": self.twin_replay.served, "misses": self.twin_replay.misses}
        return {"replay": replay}

    async def mirror(self, plan: MirrorPlan) -> MirrorOutcome:
        async with self._timed:
            return await self._mirror(plan)

    async def _mirror(self, plan: MirrorPlan) -> MirrorOutcome:
        targets = self.targets
        registration = twin_registration = repeat_registration = None
        if self.replay is not None and plan.upstream is not None:
            registration = self.replay.expect(plan.upstream, plan.request_id)
        try:
            if self.twin_replay is not None and targets.twin is not None:
                twin_id = plan.request_id + "-twin"
                if plan.upstream is not None:
                    twin_registration = self.twin_replay.expect(plan.upstream, twin_id)
                shadow, twin = await self._with_twin(plan, targets.twin.url, twin_id)
            else:
                shadow, twin = await self._call(targets.shadow.url, plan), None
            repeat = None
            if plan.noise_probe and targets.repeat is not None and shadow.error is None:
                # The A/A repeat is a request of its own on the replay upstream: its call,
                # claimed by key where the harness's id does not reach the provider (the
                # legacy proxy drops it), then goes to a registration expecting one, never
                # to an identical request in flight, which would show a call too many.
                repeat_id = plan.request_id + "-repeat"
                if self.replay is not None and registration is not None:
                    repeat_registration = self.replay.expect(plan.upstream or [], repeat_id)
                repeat = await self._call(targets.repeat.url, plan, request_id=repeat_id)
        finally:
            for book, held in (
                (self.replay, registration),
                (self.replay, repeat_registration),
                (self.twin_replay, twin_registration),
            ):
                if book is not None and held is not None:
                    book.release(held)
        return MirrorOutcome(
            shadow,
            twin,
            repeat,
            list(registration.received) if registration is not None else [],
            registration is not None,
            list(repeat_registration.received) if repeat_registration is not None else [],
            self.take_unattached(),
        )

    def take_unattached(self) -> list[ReceivedCall]:
        """The mirror side's calls no registration claimed since the last take. The
        twin's are not the mirror's (its answers are kept for their timings only): they
        are dropped, so the twin book does not hold them."""
        if self.twin_replay is not None:
            self.twin_replay.take_unattached()
        return self.replay.take_unattached() if self.replay is not None else []

    async def _with_twin(
        self, plan: MirrorPlan, twin_url: str, twin_id: str
    ) -> tuple[RawExchange, RawExchange]:
        """The mirror and the twin sent at the same moment; which is written first is the
        plan's (:meth:`MirrorEngine.twin_first
        <harness.shadow.engine.MirrorEngine.twin_first>`)."""
        shadow = self._call(self.targets.shadow.url, plan)
        twin = self._call(twin_url, plan, request_id=twin_id)
        if plan.twin_first:
            twin_raw, shadow_raw = await asyncio.gather(twin, shadow)
        else:
            shadow_raw, twin_raw = await asyncio.gather(shadow, twin)
        return shadow_raw, twin_raw

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            shadow = self.settings.shadow
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(shadow.timeout_seconds, connect=5.0),
                limits=httpx.Limits(max_connections=shadow.max_in_flight * 3),
                trust_env=False,
            )
        return self._http

    async def _call(
        self, base_url: str, plan: MirrorPlan, *, request_id: str | None = None
    ) -> RawExchange:
        client = self._client()
        _, method, path, query, raw_headers, body, _ = plan.request
        raw = RawExchange()
        began = time.perf_counter()
        headers = [
            (name, value)
            for name, value in (
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw_headers
            )
            if name not in _NOT_MIRRORED
        ]
        headers.append((SHADOW_HEADER, request_id or plan.request_id))
        url = base_url + path + (f"?{query}" if query else "")
        cap = self.settings.capture.max_body_bytes
        try:
            async with asyncio.timeout(self.settings.shadow.timeout_seconds):
                outgoing = client.build_request(
                    method, url, headers=headers, content=body if method != "GET" else None
                )
                reply = await client.send(outgoing, stream=True)
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

    async def close(self) -> list[ReceivedCall]:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._replay_server is not None:
            self._replay_server.stop()
            self._replay_server = None
        return self.take_unattached()


class CallerProcess:
    """A :class:`MirrorCaller` in a child process, at the priority of whoever starts it
    (the sidecar starts it before it lowers its own)."""

    def __init__(self, settings: HarnessSettings, targets: MirrorTargets) -> None:
        self.settings = settings
        self._url: str | None = None
        self._counters: dict[str, Any] = {}
        self._pending: dict[int, asyncio.Future[Any]] = {}
        # Unattached calls that came back with an outcome nobody waited for any more (its
        # mirror was cut by the drain): handed over on close, never dropped.
        self._orphaned: list[ReceivedCall] = []
        self._next = 0
        self._writer: asyncio.StreamWriter | None = None
        self._ready: asyncio.Event | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._sock, child = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.shadow.caller"],
            stdin=subprocess.PIPE,
            pass_fds=(child.fileno(),),
            env={**os.environ, **LITELLM_OFFLINE_ENV},
            start_new_session=True,
        )
        assert self.process.stdin is not None
        with self.process.stdin as stdin:
            stdin.write(pickle.dumps((settings, targets, child.fileno())))
        child.close()

    @property
    def replay_url(self) -> str | None:
        return self._url

    def start(self) -> None:
        self._ready = asyncio.Event()
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read(), name="mirror-caller"
        )

    def counters(self) -> dict[str, Any]:
        return self._counters

    async def mirror(self, plan: MirrorPlan) -> MirrorOutcome:
        assert self._ready is not None, "start() first"
        await self._ready.wait()
        reply = await self._ask("m", plan.to_wire())
        return reply if reply is not None else MirrorOutcome(RawExchange(error="caller_gone"))

    async def _ask(self, kind: str, payload: Any) -> Any | None:
        """Send one frame, the caller's reply to it; None when the caller is gone."""
        if self._writer is None or self._writer.is_closing():
            return None
        self._next += 1
        number = self._next
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        self._writer.write(frame((kind, number, payload)))
        try:
            return await future
        finally:
            self._pending.pop(number, None)

    async def _read(self) -> None:
        assert self._ready is not None
        try:
            reader, self._writer = await asyncio.open_connection(sock=self._sock)
            hello = await read_frame(reader)
            if hello is not None:
                self._url = hello[2]
            self._ready.set()
            while (received := await read_frame(reader)) is not None:
                kind, number, payload = received
                future = self._pending.get(number)
                if kind == "r":
                    wire, self._counters = payload
                    outcome = MirrorOutcome.from_wire(wire)
                    if future is not None and not future.done():
                        future.set_result(outcome)
                    else:
                        self._orphaned.extend(outcome.unattached)
                elif kind == "c":
                    if future is not None and not future.done():
                        future.set_result(_calls_from_wire(payload))
                elif future is not None and not future.done():
                    future.set_exception(RuntimeError(f"mirror caller: {payload}"))
        finally:
            self._ready.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_result(None)
            if self._writer is not None:
                self._writer.close()

    async def close(self) -> list[ReceivedCall]:
        """Ends the caller: it stops its replay upstream, hands over the unattached calls
        it still holds, abandons what it still has in flight and exits."""
        unattached = self._orphaned
        self._orphaned = []
        if self._ready is not None and self._ready.is_set():
            try:
                kept: list[ReceivedCall] | None = await asyncio.wait_for(self._ask("c", None), 10)
                unattached += kept or []
            except TimeoutError:
                logger.error("mirror caller %d did not hand over its last calls", self.process.pid)
        if self._writer is not None:
            self._writer.close()
        else:
            self._sock.close()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader_task, 5)
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            logger.error("mirror caller %d did not end: killed", self.process.pid)
            self.process.kill()
            self.process.wait()
        return unattached


# -- the caller process -----------------------------------------------------------------


async def _serve(caller: MirrorCaller, sock: socket.socket) -> None:
    caller.start()
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(frame(("h", 0, caller.replay_url)))
    tasks: set[asyncio.Task[None]] = set()

    async def one(number: int, wire: tuple[Any, ...]) -> None:
        reply: tuple[str, int, Any]
        try:
            outcome = await caller.mirror(MirrorPlan.from_wire(wire))
            reply = ("r", number, (outcome.to_wire(), caller.counters()))
        except Exception as exc:  # noqa: BLE001 - one bad job must not stop the caller
            logger.exception("mirror call %d failed", number)
            reply = ("e", number, type(exc).__name__)
        if not writer.is_closing():
            writer.write(frame(reply))

    try:
        while (received := await read_frame(reader)) is not None:
            kind, number, wire = received
            if kind == "c":
                # The last frame: the replay upstream stops, what it kept goes back.
                writer.write(frame(("c", number, _calls_to_wire(await caller.close()))))
                continue
            task = asyncio.create_task(one(number, wire))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        await caller.close()
        writer.close()


def main() -> int:
    settings, targets, fd = cast(
        tuple[HarnessSettings, MirrorTargets, int],
        pickle.load(sys.stdin.buffer),  # noqa: S301 - from our parent
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s caller %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The sidecar decides when the calls end (by closing the socket).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    asyncio.run(_serve(MirrorCaller(settings, targets), socket.socket(fileno=fd)))
    return 0


def _raw_to_wire(raw: RawExchange | None) -> tuple[Any, ...] | None:
    if raw is None:
        return None
    return (
        raw.status,
        raw.headers,
        raw.chunks,
        raw.captured_bytes,
        raw.truncated,
        raw.time_to_headers_ms,
        raw.total_ms,
        raw.error,
    )


def _raw_from_wire(wire: tuple[Any, ...] | None) -> RawExchange | None:
    if wire is None:
        return None
    status, headers, chunks, captured, truncated, to_headers, total, error = wire
    return RawExchange(
        status=status,
        headers=[tuple(h) for h in headers],
        chunks=[tuple(c) for c in chunks],
        captured_bytes=captured,
        truncated=truncated,
        time_to_headers_ms=to_headers,
        total_ms=total,
        error=error,
    )


def _calls_to_wire(calls: list[ReceivedCall]) -> list[tuple[Any, ...]]:
    return [_call_to_wire(c) for c in calls]


def _calls_from_wire(wire: list[tuple[Any, ...]]) -> list[ReceivedCall]:
    return [ReceivedCall(*c) for c in wire]


def _call_to_wire(call: ReceivedCall) -> tuple[Any, ...]:
    return (
        call.time,
        call.method,
        call.path,
        call.query,
        call.headers,
        call.body,
        call.status,
        call.duration_ms,
        call.answer_headers,
    )


if __name__ == "__main__":
    sys.exit(main())
