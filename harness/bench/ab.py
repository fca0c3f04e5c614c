"""``harness bench --ab metrics|tap``: what one feature adds to the SDK proxy's CPU per
request, measured in-process, where a few microseconds are not lost in the noise.

The path bench charges each path with its processes' CPU over a window of real HTTP load;
on a shared host its rounds differ by a tenth of a millisecond, more than the metrics
(target 0.03 ms) or shadow mode's upstream tap (0.05 ms) can add. Here two builds of the
SDK proxy app run in this one process, ``with`` the feature and ``without`` it, called
straight over ASGI (no client sockets, no HTTP parsing: neither feature touches those),
their provider the sandbox in its own process. Rounds alternate the two, in alternating
order, each timing this process's CPU (``time.process_time``) over ``requests`` requests
at ``concurrency``; the result is the median of the per-round differences.

* ``metrics``: ``memory_proxy.metrics`` on vs off (the counting the access log reports
  every request to, and ``/metrics``).
* ``tap``: the upstream tap recording every request (:mod:`harness.bench.tapped_proxy`) vs
  the plain app.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message

from harness.bench.cases import BenchCase, HttpCall
from harness.bench.paths import BENCH_SANDBOX_ARGS
from harness.sandbox.config_file import write_sandbox_config
from harness.stack import Stack

__all__ = ["AB_FEATURES", "AbResult", "run_ab"]

AB_FEATURES = ("metrics", "tap")
_USER_AGENT = (b"user-agent", b"OpenAI/Python 1.99.0")


@dataclass(frozen=True)
class AbResult:
    feature: str
    case: str
    requests: int
    with_ms: tuple[float, ...]  # CPU ms per request, per round
    without_ms: tuple[float, ...]

    @property
    def added_ms(self) -> float:
        """Median over rounds of (with - without) CPU ms per request."""
        return statistics.median(a - b for a, b in zip(self.with_ms, self.without_ms, strict=True))

    def line(self) -> str:
        rounds = " ".join(
            f"{a - b:+.3f}" for a, b in zip(self.with_ms, self.without_ms, strict=True)
        )
        return (
            f"{self.feature} [{self.case}]: {self.added_ms:+.4f} ms CPU per request added "
            f"(median of {len(self.with_ms)} rounds of {self.requests}: {rounds}; with "
            f"{statistics.median(self.with_ms):.3f}, without "
            f"{statistics.median(self.without_ms):.3f} ms)"
        )


def _builds(feature: str, config_path: Path, off_path: Path) -> tuple[ASGIApp, ASGIApp]:
    from harness.bench.tapped_proxy import RecordEveryRequest
    from harness.settings import CaptureSettings
    from harness.shadow.upstream_tap import UpstreamTap
    from memory_proxy.app import create_app
    from memory_proxy.config import load_config

    config = load_config(config_path)
    if feature == "metrics":
        return create_app(config), create_app(load_config(off_path))
    tap = UpstreamTap(CaptureSettings().max_body_bytes)
    return RecordEveryRequest(create_app(config, upstream_observer=tap)), create_app(config)


async def _started(app: ASGIApp) -> Callable[[], Awaitable[None]]:
    """Run ``app``'s lifespan startup; the coroutine that shuts it down."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task: asyncio.Future[None] = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"the app did not start: {started}")

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


def _scope(call: HttpCall) -> dict[str, Any]:
    path = "/" + call.url.split("//", 1)[1].split("/", 1)[1]
    headers = [(k.encode(), v.encode()) for k, v in call.headers.items()]
    headers += [_USER_AGENT, (b"content-length", str(len(call.body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }


async def _one(app: ASGIApp, call: HttpCall) -> None:
    delivered = False
    status: list[int] = []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": call.body, "more_body": False}
        await asyncio.Event().wait()  # the client stays: no disconnect
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app({**_scope(call), "state": {}}, receive, send)
    if status != [200]:
        raise RuntimeError(f"the proxy answered {status} during the A/B run")


async def _batch(app: ASGIApp, call: HttpCall, requests: int, concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def go() -> None:
        async with slots:
            await _one(app, call)

    await asyncio.gather(*(go() for _ in range(requests)))


async def _measure(
    feature: str,
    case: BenchCase,
    config_path: Path,
    off_path: Path,
    requests: int,
    rounds: int,
    warmup: int,
    concurrency: int,
) -> AbResult:
    from memory_proxy.config import load_config

    with_app, without_app = _builds(feature, config_path, off_path)
    stops = [await _started(with_app), await _started(without_app)]
    try:
        call = case.proxy_call("http://proxy", load_config(config_path).general.master_key)
        for app in (with_app, without_app):
            await _batch(app, call, warmup, concurrency)
        timings: dict[str, list[float]] = {"with": [], "without": []}
        builds = {"with": with_app, "without": without_app}
        for number in range(rounds):
            order = ("with", "without") if number % 2 == 0 else ("without", "with")
            for name in order:
                gc.collect()
                began = time.process_time()
                await _batch(builds[name], call, requests, concurrency)
                timings[name].append((time.process_time() - began) / requests * 1000)
    finally:
        for stop in stops:
            await stop()
    return AbResult(feature, case.name, requests, tuple(timings["with"]), tuple(timings["without"]))


def run_ab(
    feature: str,
    cases: list[BenchCase],
    *,
    folder: Path,
    requests: int = 2000,
    rounds: int = 8,
    warmup: int = 500,
    concurrency: int = 20,
    say: Callable[[str], None] = print,
) -> list[AbResult]:
    """One :class:`AbResult` per case; the sandbox runs as a child process."""
    from harness.bench.runner import _turn_metrics_off

    if feature not in AB_FEATURES:
        raise ValueError(f"--ab: choose from {', '.join(AB_FEATURES)}, got {feature!r}")
    results = []
    with Stack(folder / "logs") as stack:
        sandbox = stack.sandbox(*BENCH_SANDBOX_ARGS)
        config_path = write_sandbox_config(sandbox.url, folder / "sandbox.yaml")
        off_path = write_sandbox_config(sandbox.url, folder / "sandbox-metrics-off.yaml")
        _turn_metrics_off(off_path)
        for case in cases:
            result = asyncio.run(
                _measure(
                    feature, case, config_path, off_path, requests, rounds, warmup, concurrency
                )
            )
            say(result.line())
            results.append(result)
    return results
