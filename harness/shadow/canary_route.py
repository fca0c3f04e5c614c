"""The canary front door: per user, the SDK proxy or legacy answers; the other is mirrored.

``harness shadow --canary`` serves this in front of two shadow set-ups::

    client --> CanaryRoute --(user in the slice)--> SDK side:    the SDK proxy answers,
                   |                                             legacy is mirrored
                   +------(everyone else)--------> legacy side: the legacy proxy answers,
                   |                                             the SDK is mirrored
                   +-- percent: read from the store every POLL_SECONDS (the controller,
                       ``harness cutover --canary``, writes it)

Who is in the slice is decided per user (the memory router's user id: every
conversation of a user goes the same way, none is split), by the hash sampling uses
(:func:`~harness.shadow.sampling.percent_bucket`): a user whose bucket is below the
percent is served by the SDK proxy. The choice is deterministic (the same on every
request and after a restart) and slices only grow (a user under 5 is under 25).

Mirroring continues both ways, each pair labelled with the side that answered the client
(``primary.target``: ``sdk`` or ``legacy``). The SDK side is an ordinary SDK-primary
shadow. The legacy side is a legacy-primary shadow: its requests are forwarded to
``legacy_url`` and mirrored to an SDK proxy this process runs. Under replay (the default)
nothing reaches the provider twice on either side:

* SDK slice: the legacy mirror (``shadow.mirror_to``) is answered by replay with the SDK
  proxy's provider calls, tapped in this process;
* legacy slice: the serving legacy stack's LiteLLM server calls the provider through the
  recording relay (:mod:`harness.shadow.recording_relay`; it must run on
  ``CanaryRun.relay_config``), and the SDK mirror is answered by replay with what the
  relay recorded.

Each side has its own replay upstream (the legacy side's on a port of its own). With
``shadow.upstream: live`` both mirrors call the provider themselves.

A change of percent applies to requests that arrive after it: one already being served
finishes where it started (a rollback cuts nothing in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness.settings import HarnessSettings, replay_address
from harness.shadow.mirror import STATS_PATH, _send_json
from harness.shadow.sampling import endpoint_of, percent_bucket
from harness.store.canary_store import CanaryStore
from memory_proxy.config import ProxyConfig
from memory_proxy.errors import ConfigError
from memory_proxy.memory_router import MemoryRouter

__all__ = [
    "POLL_SECONDS",
    "CanaryOptions",
    "CanaryPercent",
    "CanaryRoute",
    "CanaryRun",
    "build_canary",
    "on_sdk",
]

logger = logging.getLogger("harness.shadow")

POLL_SECONDS = 0.25


def on_sdk(user_id: str, percent: float) -> bool:
    """Whether ``user_id`` is in the SDK's slice at ``percent``. Pure."""
    return percent_bucket(user_id) < percent


class CanaryPercent:
    """The percent the store holds, re-read every ``poll_s`` on a thread of its own, so
    the request path only reads a float. A failed read keeps the last value."""

    def __init__(self, store: CanaryStore, poll_s: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll_s = poll_s
        self.value = self._read(0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="canary-percent", daemon=True)

    def start(self) -> CanaryPercent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _read(self, last: float) -> float:
        try:
            return self.store.percent()
        except Exception:  # noqa: BLE001 - a busy or broken store must not stop serving
            logger.exception("canary: could not read the percent; keeping %s", last)
            return last

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            value = self._read(self.value)
            if value != self.value:
                logger.warning("canary: %s %% -> %s %% of users on the SDK", self.value, value)
            self.value = value


class CanaryRoute:
    """Routes each request to ``sdk`` or ``legacy`` by its user; runs both lifespans."""

    def __init__(
        self,
        sdk: ASGIApp,
        legacy: ASGIApp,
        *,
        router: MemoryRouter,
        percent: Callable[[], float],
        stats: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.sdk = sdk
        self.legacy = legacy
        self.router = router
        self.percent = percent
        self.side_stats = stats
        self.served: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        return {**self.side_stats(), "canary": {"percent": self.percent(), **self.served}}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _fan_out_lifespan((self.sdk, self.legacy), scope, receive, send)
            return
        if scope["type"] != "http":
            await self.sdk(scope, receive, send)
            return
        if scope["path"] == STATS_PATH:
            await _send_json(send, self.stats())
            return
        if endpoint_of(scope["method"], scope["path"]) is None:
            # Health, metrics and the like are this process's own: not a user's traffic.
            await self.sdk(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        user_id = self.router.detect_user_id(headers).user_id
        side = "sdk" if on_sdk(user_id, self.percent()) else "legacy"
        self.served[side] += 1
        await (self.sdk if side == "sdk" else self.legacy)(scope, receive, send)


@dataclass(frozen=True)
class CanaryOptions:
    """``harness shadow --canary``: who answers outside the slice, where the percent is."""

    legacy_url: str
    store: str | Path  # a SQLite file or a team's PostgreSQL URL


@dataclass
class CanaryRun:
    """What the canary front door holds: the app, and what to close after it."""

    app: CanaryRoute
    settings: HarnessSettings
    percent: CanaryPercent
    closers: list[Callable[[], None]] = field(default_factory=list)
    # Replay: the config the serving legacy stack's LiteLLM server must run on (its
    # providers through the recording relay), written beside the store.
    relay_config: Path | None = None

    def close(self) -> None:
        self.percent.stop()
        for close in self.closers:
            close()


def build_canary(
    config: ProxyConfig, settings: HarnessSettings, *, legacy_url: str, store: str | Path
) -> CanaryRun:
    """Both sides, and the route between them. ``settings.shadow.mirror_to`` is the SDK
    side's mirror (the replay-pointed legacy stack, or ``legacy_url`` in live mode);
    ``legacy_url`` is the legacy proxy that answers the users outside the slice."""
    from harness.shadow.server import build_shadow

    if not legacy_url:
        raise ConfigError("shadow --canary: --legacy-url: the legacy proxy that serves users")
    sdk_run = build_shadow(config, settings.with_overrides("shadow", primary="sdk"))
    assert sdk_run.settings is not None
    legacy_settings = settings.with_overrides("shadow", primary="legacy", mirror_to=legacy_url)
    if settings.shadow.upstream == "replay":
        # The SDK side's replay upstream holds its port (its mirror stack points there):
        # the legacy side's gets any other.
        host, _ = replay_address(sdk_run.settings.shadow.replay_listen)
        legacy_settings = legacy_settings.with_overrides("shadow", replay_listen=f"{host}:0")
    legacy_run = build_shadow(config, legacy_settings)
    percent = CanaryPercent(CanaryStore(store)).start()
    route = CanaryRoute(
        sdk_run.app,
        legacy_run.app,
        router=MemoryRouter(config.user_id_mappings),
        percent=lambda: percent.value,
        stats=lambda: _sum_stats([sdk_run.mirror.stats(), legacy_run.mirror.stats()]),
    )
    return CanaryRun(
        route,
        sdk_run.settings,
        percent,
        [sdk_run.close, legacy_run.close],
        relay_config=legacy_run.relay_config,
    )


def _sum_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Both mirrors' counters added up (numbers, also nested, as the replay upstream's),
    as one ``/_shadow/stats``; anything else is the first part's."""
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(total.get(key, {}), dict):
                total[key] = _sum_stats([total.get(key, {}), value])
            elif isinstance(value, bool) or not isinstance(value, int | float):
                total.setdefault(key, value)
            else:
                total[key] = total.get(key, 0) + value
    return total


async def _fan_out_lifespan(
    apps: tuple[ASGIApp, ...], scope: Scope, receive: Receive, send: Send
) -> None:
    """Run every app's lifespan: started in order, stopped in reverse."""
    lifespans = [_Lifespan(app, scope) for app in apps]
    message = await receive()
    assert message["type"] == "lifespan.startup"
    try:
        for lifespan in lifespans:
            await lifespan.startup()
    except Exception as exc:  # noqa: BLE001 - reported to the server, which stops
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    for lifespan in reversed(lifespans):
        with contextlib.suppress(Exception):
            await lifespan.shutdown()
    await send({"type": "lifespan.shutdown.complete"})


class _Lifespan:
    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()

        async def run() -> None:
            await app(scope, self._to_app.get, self._from_app.put)

        self._task: asyncio.Task[None] = asyncio.create_task(run())

    async def _answer(self, message: Message) -> Message:
        await self._to_app.put(message)
        answer = asyncio.create_task(self._from_app.get())
        await asyncio.wait({answer, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():
            answer.cancel()
            self._task.result()  # raises what the app raised
            raise RuntimeError("the app ended its lifespan without answering")
        return answer.result()

    async def startup(self) -> None:
        answer = await self._answer({"type": "lifespan.startup"})
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(answer.get("message") or answer["type"])

    async def shutdown(self) -> None:
        await self._answer({"type": "lifespan.shutdown"})
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, 30)
