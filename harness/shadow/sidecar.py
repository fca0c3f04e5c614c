"""The mirror sidecar: the mirror engine and the capture store in a process of their own.

::

    shadow process (serves clients)             mirror sidecar (SCHED_IDLE, nice)
    ShadowMirror tap --SidecarDispatch--frames--> MirrorEngine --> mirror caller process
                      <--status every 100 ms---   observe, redact    (the primary's priority:
                                                  --> CaptureStore    the timed calls, replay)

The primary's share of mirroring is then a sampling decision, one pickled request frame
and one pickled answer frame per mirrored request; the shadow call, SSE decoding,
redaction and SQLite run in the sidecar, which runs only on CPU time the primary does
not want (:mod:`harness.cpu_priority`). The sidecar reports its counters and
whether its queue has room; while it has none, the primary does not ship (counted as
``queue_full``, or ``backpressure`` while the engine's limit is down, as an in-process
mirror would).

The sidecar ends when the primary closes the socket (the primary ended, cleanly or not):
it drains the engine (mirrors in flight get ``shadow.drain_seconds``; queued ones are
stored at once as primary-only pairs, ``not mirrored: shutdown``), closes the store and
exits. It runs in a session of its own and ignores SIGINT and SIGTERM, so a stopped
shadow process loses no pair its sidecar was still writing.

Frames are marshalled tuples (:mod:`harness.shadow.frames`): the socket is a private
socketpair between the two processes. The start-up spec goes over the child's stdin as a pickle.
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
from dataclasses import dataclass, replace
from typing import Any, cast

from harness.cpu_priority import yield_cpu
from harness.redaction import PromptPolicy, Redactor
from harness.settings import HarnessSettings
from harness.shadow.caller import Caller, CallerProcess
from harness.shadow.dispatch import Dispatch
from harness.shadow.engine import MirrorEngine, MirrorRequest
from harness.shadow.frames import frame, read_frame
from harness.shadow.recorder import RawExchange, TapRecord
from harness.shadow.sampling import policy_for
from harness.shadow.targets import MirrorTargets
from harness.store.capture_store import CaptureStore
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.memory_router import MemoryRouter, UserIdMappings

__all__ = [
    "mirror_counters",
    "record_mirror_counters",
    "SidecarDispatch",
    "SidecarSpec",
    "main",
    "open_engine",
]

logger = logging.getLogger("harness.shadow")

STATUS_INTERVAL = 0.1
# Beyond this many unsent bytes toward the sidecar, the primary stops shipping requests.
BUFFER_LIMIT = 64 * 1024 * 1024
_COUNTERS = (
    "queued",
    "completed",
    "shadow_failed",
    "worker_errors",
    "store_rejected",
    "primary_unrecorded",
)


@dataclass(frozen=True)
class SidecarSpec:
    """Everything the mirror needs; sent to the sidecar pickled on its stdin."""

    settings: HarnessSettings
    secrets: frozenset[str]
    user_id_mappings: UserIdMappings
    targets: MirrorTargets
    nice: int = 10
    idle: bool = True
    fd: int = -1
    run_id: int | None = None  # the run its pairs and counters belong to


def mirror_counters(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The engine's share of a run's counters (:mod:`harness.runs.coverage`)."""
    keys = ("queued", "completed", "shadow_failed", "worker_errors", "store_rejected")
    return {
        **{k: snapshot.get(k, 0) for k in keys},
        "skipped": dict(snapshot.get("skipped", {})),
        "not_mirrored": dict(snapshot.get("not_mirrored", {})),
    }


def record_mirror_counters(run_id: int | None, engine: MirrorEngine, store: CaptureStore) -> None:
    """Once the engine has drained: its counters into the run, if there is one."""
    if run_id is None:
        return
    try:
        store.record_run_counters(run_id, "mirror", mirror_counters(engine.snapshot()))
    except Exception:  # noqa: BLE001 - the pairs are written; only the counters are lost
        logger.exception("could not record the mirror's counters in run %s", run_id)


def open_engine(
    spec: SidecarSpec, caller: Caller | None = None
) -> tuple[MirrorEngine, CaptureStore]:
    """The mirror engine and the store it writes to, wherever the mirror runs."""
    settings = spec.settings
    store = CaptureStore(
        settings.capture.store,
        instance=settings.capture.instance or None,
        redactor=Redactor(
            spec.secrets, store_prompts=cast(PromptPolicy, settings.capture.store_prompts)
        ),
        run_id=spec.run_id,
    )
    engine = MirrorEngine(
        settings=settings,
        sink=store,
        targets=spec.targets,
        router=MemoryRouter(spec.user_id_mappings),
        store_health=store.health,
        caller=caller,
    )
    return engine, store


class SidecarDispatch(Dispatch):
    """The primary's end: ships admitted requests and their answers to the sidecar, never
    waits for it. The sidecar's room is its last status report plus this socket's
    unsent bytes; the breaker is the sidecar's engine's, asked there."""

    def __init__(self, spec: SidecarSpec) -> None:
        shadow = spec.settings.shadow
        super().__init__(
            policy=policy_for(shadow, repeat=spec.targets.repeat is not None),
            router=MemoryRouter(spec.user_id_mappings),
            max_rate=shadow.max_rate,
        )
        self.spec = spec
        self.remote: dict[str, Any] = {}
        self.accepting = True
        self._next_token = 0
        self._writer: asyncio.StreamWriter | None = None
        self._status: asyncio.Task[None] | None = None
        self._sock, child = socket.socketpair()
        env = {**os.environ, **LITELLM_OFFLINE_ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.shadow.sidecar"],
            stdin=subprocess.PIPE,
            pass_fds=(child.fileno(),),
            env=env,
            # A process group of its own: a signal to the primary's group does not cut the
            # pairs it is still writing (the closed socket ends it), and its CPU is counted
            # apart from the primary's.
            start_new_session=True,
        )
        assert self.process.stdin is not None
        with self.process.stdin as stdin:
            stdin.write(pickle.dumps(replace(spec, fd=child.fileno())))
        child.close()

    # -- Dispatch -------------------------------------------------------------------------

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._status = asyncio.create_task(self._read_status(reader), name="sidecar-status")

    def _unreachable(self) -> str | None:
        writer = self._writer
        return "sidecar_down" if writer is None or writer.is_closing() else None

    def _has_room(self) -> bool:
        assert self._writer is not None  # _unreachable said so
        return self.accepting and not self._buffer_full()

    def _buffer_full(self) -> bool:
        assert self._writer is not None
        return self._writer.transport.get_write_buffer_size() > BUFFER_LIMIT

    def _full_reason(self) -> str:
        limit = self.remote.get("backpressure") or {}
        reduced = limit.get("limit", 0) < limit.get("ceiling", 0)
        return "backpressure" if reduced and not self._buffer_full() else "queue_full"

    def _hand_over(self, request: MirrorRequest) -> object | None:
        assert self._writer is not None
        self._next_token += 1
        self._writer.write(frame(("q", self._next_token, request.as_tuple())))
        return self._next_token

    def done(self, token: object, record: TapRecord) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            try:
                shipped = frame(("r", token, record))
            except ValueError:  # a header value of a type marshal refuses: never raise here
                self.skipped["unshippable"] += 1
                return
            writer.write(shipped)

    def _mirror_stats(self) -> dict[str, Any]:
        remote = self.remote
        return {
            **{name: remote.get(name, 0) for name in _COUNTERS},
            "in_flight": remote.get("in_flight", 0),
            "queue_depth": remote.get("queue_depth", 0),
            "breaker": remote.get("breaker", "closed"),
            "skipped": remote.get("skipped", {}),
            "differences": remote.get("differences", {}),
            "not_mirrored": remote.get("not_mirrored", {}),
            **({"backpressure": remote["backpressure"]} if "backpressure" in remote else {}),
            "store": remote.get("store"),
            **({"replay": remote["replay"]} if "replay" in remote else {}),
            **({"live": remote["live"]} if "live" in remote else {}),
            "sidecar_pid": self.process.pid,
            "sidecar_running": self.process.poll() is None,
        }

    async def close(self) -> None:
        """No more requests will come: the sidecar finishes what it has and exits."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._status is not None:
            self._status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status

    async def _read_status(self, reader: asyncio.StreamReader) -> None:
        while (status := await read_frame(reader)) is not None:
            self.remote = status
            self.accepting = bool(status.get("accepting", True))
        self.accepting = False
        if self._writer is not None and not self._writer.is_closing():
            logger.warning("the mirror sidecar closed its end: mirroring stopped")

    # -- process --------------------------------------------------------------------------

    def wait(self) -> int | None:
        """After the server has stopped: let the sidecar drain and exit (bounded)."""
        self._sock.close()  # no-op when ``close`` ran; ends the sidecar when it did not
        # Its drain is bounded by drain_seconds; the rest is closing the store (a slow
        # disk's last writes) and the interpreter's exit.
        limit = self.spec.settings.shadow.drain_seconds + 15
        try:
            return self.process.wait(limit)
        except subprocess.TimeoutExpired:
            logger.error("mirror sidecar %d did not end in %.0f s: killed", self.process.pid, limit)
            self.process.kill()
            return self.process.wait()


# -- the sidecar process ----------------------------------------------------------------


async def _serve(engine: MirrorEngine, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(sock=sock)
    queue_size = engine.settings.shadow.queue_size
    pending: dict[int, asyncio.Future[RawExchange]] = {}
    accepting = True

    def report() -> None:
        nonlocal accepting
        depth = engine.queue_depth
        # Hysteresis: stop at a full queue, take requests again once a tenth has drained.
        accepting = depth < queue_size if accepting else depth <= queue_size * 0.9
        if not writer.is_closing():
            writer.write(frame({**engine.snapshot(), "accepting": accepting}))

    async def tick() -> None:
        while True:
            report()
            await asyncio.sleep(STATUS_INTERVAL)

    engine.start()
    ticker = asyncio.create_task(tick(), name="sidecar-status")
    try:
        while (received := await read_frame(reader)) is not None:
            kind, token, payload = received
            if kind == "q":
                primary: asyncio.Future[RawExchange] = loop.create_future()
                if engine.enqueue(MirrorRequest(*payload), primary):
                    pending[token] = primary
                if accepting and engine.queue_depth >= queue_size:
                    report()
            else:
                future = pending.pop(token, None)
                if future is not None and not future.done():
                    future.set_result(RawExchange.from_tap(payload))
    finally:
        for future in pending.values():
            if not future.done():
                future.set_result(RawExchange(error="primary_gone"))
        await engine.drain()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        writer.close()


def main() -> int:
    spec = cast(SidecarSpec, pickle.load(sys.stdin.buffer))  # noqa: S301 - from our parent
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s mirror %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The primary decides when mirroring ends (by closing the socket): a stray signal
    # must not cut the pairs still being written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The calls and the replay upstream are timed: they run in a process of their own,
    # started before this one lowers its priority, so it keeps the primary's
    # (harness.shadow.caller says why).
    caller = CallerProcess(spec.settings, spec.targets)
    yield_cpu(nice=spec.nice, idle=spec.idle)
    engine, store = open_engine(spec, caller)
    try:
        asyncio.run(_serve(engine, socket.socket(fileno=spec.fd)))
    finally:
        store.close()
        record_mirror_counters(spec.run_id, engine, store)
        logger.info("mirror sidecar done: %s; store %s", engine.snapshot(), store.health())
    return 0


if __name__ == "__main__":
    sys.exit(main())
