"""The load generator: aiohttp on uvloop, in a process of its own, fed over stdin/stdout.

``python -m harness.bench.loadgen`` reads one :class:`LoadSpec` per line (JSON) and
answers each with one :class:`LoadOutcome` line, so the servers it measures never share
its process, and it can be kept for a whole run (no interpreter start per measurement).
aiohttp, not httpx: measured on a 2-core host, an httpx generator burned ~5.5 ms CPU per
request and capped the direct baseline near 195 req/s. Its own CPU time is reported with the
results, so a saturated generator shows.

Every reply is checked cheaply: status 200, the format's marker in a body, and in a
stream its closing event (``data: [DONE]`` or ``message_stop``). TTFT is the arrival
of the first event carrying generated content (:func:`harness.sse.first_token_offset`),
not the first byte; the decoder stops once it has been seen.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.sse import SseDecoder, first_token_offset
from memory_proxy.api_formats import ANTHROPIC, OPENAI

__all__ = ["LoadOutcome", "LoadSpec", "main", "run_load"]

_BODY_MARKERS = {"openai": b'"choices"', "anthropic": b'"content"'}
_STREAM_END: dict[str, bytes] = {f.name: f.final_event_marks[0] for f in (OPENAI, ANTHROPIC)}


@dataclass(frozen=True)
class LoadSpec:
    url: str
    headers: dict[str, str]
    body: str
    stream: bool
    api: str  # "openai" | "anthropic"
    requests: int
    concurrency: int
    max_seconds: float = 300.0  # the whole run, then what is left is abandoned
    request_timeout: float = 60.0
    rate: float = 0.0  # requests started per second; 0: each worker sends back to back


@dataclass
class LoadOutcome:
    wall_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # successful requests only
    ttft_ms: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    client_cpu_seconds: float = 0.0
    first_failure: str | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadOutcome:
        return cls(**data)


class _Failure(Exception):
    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


async def _one(session: Any, spec: LoadSpec, body: bytes) -> tuple[float, float | None]:
    import aiohttp

    started = time.perf_counter()
    async with session.post(spec.url, data=body, headers=spec.headers) as reply:
        if reply.status != 200:
            text = (await reply.read())[:300].decode("utf-8", errors="replace")
            raise _Failure(f"status_{reply.status}", text)
        if not spec.stream:
            data = await reply.read()
            if _BODY_MARKERS[spec.api] not in data:
                raise _Failure("bad_body", data[:300].decode("utf-8", errors="replace"))
            return (time.perf_counter() - started) * 1000, None
        ttft: float | None = None
        decoder: SseDecoder | None = SseDecoder()
        end = _STREAM_END[spec.api]
        tail = b""
        ended = False
        try:
            async for chunk in reply.content.iter_any():
                if decoder is not None:
                    events = decoder.feed(chunk)
                    if first_token_offset(events, spec.api) is not None:  # type: ignore[arg-type]
                        ttft = (time.perf_counter() - started) * 1000
                        decoder = None
                window = tail + chunk
                ended = ended or end in window
                tail = window[-len(end) :]
        except aiohttp.ClientPayloadError as exc:
            raise _Failure("stream_cut", str(exc)) from None
        if not ended:
            raise _Failure("stream_incomplete", tail.decode("utf-8", errors="replace"))
        return (time.perf_counter() - started) * 1000, ttft


async def run_load(spec: LoadSpec) -> LoadOutcome:
    """Send ``spec.requests`` requests, ``spec.concurrency`` at a time (at ``spec.rate``
    per second when set), and time each."""
    import aiohttp

    outcome = LoadOutcome()
    failures: Counter[str] = Counter()
    body = spec.body.encode()
    remaining = spec.requests
    cpu_before = _own_cpu()

    issued = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, issued
        while remaining > 0:
            remaining -= 1
            if spec.rate > 0:
                # Paced: request n starts at n / rate, whoever is free sends it (up to
                # ``concurrency`` in flight), so a slow server cannot slow the schedule.
                delay = started + issued / spec.rate - time.perf_counter()
                issued += 1
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                latency, ttft = await _one(session, spec, body)
            except _Failure as exc:
                failures[exc.kind] += 1
                outcome.first_failure = outcome.first_failure or f"{exc.kind}: {exc.detail}"
                continue
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                failures[type(exc).__name__] += 1
                outcome.first_failure = outcome.first_failure or f"{type(exc).__name__}: {exc}"
                continue
            outcome.latencies_ms.append(latency)
            if ttft is not None:
                outcome.ttft_ms.append(ttft)

    connector = aiohttp.TCPConnector(limit=spec.concurrency, limit_per_host=spec.concurrency)
    timeout = aiohttp.ClientTimeout(total=spec.request_timeout)
    # unsafe=True: keep the cookies a provider on 127.0.0.1 sets, as a real client would.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, cookie_jar=jar, auto_decompress=False
    ) as session:
        started = time.perf_counter()
        tasks = [asyncio.create_task(worker(session)) for _ in range(spec.concurrency)]
        done, pending = await asyncio.wait(tasks, timeout=spec.max_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        outcome.wall_seconds = time.perf_counter() - started
    abandoned = spec.requests - outcome.ok - sum(failures.values())
    if abandoned > 0:
        failures["deadline"] += abandoned
    outcome.failures = dict(failures)
    outcome.client_cpu_seconds = _own_cpu() - cpu_before
    return outcome


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _event_loop_runner() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run
    return uvloop.run


def main() -> int:
    run = _event_loop_runner()
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if message.get("op") == "quit":
            break
        outcome = run(run_load(LoadSpec(**message["spec"])))
        sys.stdout.write(json.dumps(asdict(outcome)) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
