"""Send a corpus to a proxy to a proxy and check every answer's status.

Each corpus entry (:mod:`harness.corpus`) is sent as written, ``$KEY`` replaced by the
target's key, at most ``concurrency`` at a time and, with ``rate``, no faster than
``rate`` requests a second overall. An answer is a *mismatch* when its status is not one
the entry expects, when no answer came, or when an expected success is not a success
in substance: a stream that ends without ``[DONE]`` / ``message_stop`` or with an error
event, or a JSON reply that does not parse.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from harness.answer_check import check_body
from harness.corpus import CorpusEntry, load_corpus
from harness.stats import percentile

__all__ = ["Mismatch", "ReplayOutcome", "ReplayPlan", "ReplaySummary", "replay", "replay_async"]

# The sender's own business: httpx sets these for the body it actually sends.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class ReplayOutcome:
    """What one sent entry got back."""

    entry_id: str
    endpoint: str
    status: int | None  # None: no HTTP answer
    latency_ms: float
    problem: str | None = None  # why it does not meet the expectation


@dataclass(frozen=True)
class Mismatch:
    entry_id: str
    expected: tuple[int, ...]
    got: int | None
    detail: str


@dataclass(frozen=True)
class ReplaySummary:
    """The counts of one replay; ``ok`` when every answer met its entry's expectation."""

    target: str
    total: int
    duration_s: float
    status_counts: dict[str, int]  # "200", "404", ..., "error" for no answer
    endpoint_counts: dict[str, int]
    mismatches: tuple[Mismatch, ...]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    outcomes: tuple[ReplayOutcome, ...] = field(default=(), repr=False)
    stopped: str | None = None  # why the replay stopped before sending everything

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def format(self) -> str:
        rate = self.total / self.duration_s if self.duration_s > 0 else 0.0
        lines = [
            f"replayed {self.total} requests to {self.target} in {self.duration_s:.1f} s "
            f"({rate:.1f} req/s)",
            "latency ms: p50 " + _ms(self.latency_p50_ms) + ", p95 " + _ms(self.latency_p95_ms),
            "statuses:  " + _counts(self.status_counts),
            "endpoints: " + _counts(self.endpoint_counts),
            f"mismatches: {len(self.mismatches)}",
        ]
        for m in self.mismatches:
            expected = "/".join(str(s) for s in m.expected)
            lines.append(f"  {m.entry_id}: expected {expected}, got {m.got}: {m.detail}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ReplayPlan:
    """What to send where: the corpus (a file or entries), the target and its key, and the
    pace (``concurrency`` in flight, at most ``rate`` a second overall, ``loop`` times)."""

    corpus: str | Path | Sequence[CorpusEntry]
    target_url: str
    key: str
    rate: float | None = None
    concurrency: int = 4
    loop: int = 1
    progress: bool = True
    timeout: float = 120.0
    # Stop early: ``stop_when`` is asked after each answer and returns why to stop (the
    # requests not yet sent are not sent), ``deadline_s`` bounds the whole replay (what is
    # in flight then is cut); ``on_outcome(done, total, outcome)`` sees each answer.
    stop_when: Callable[[Sequence[ReplayOutcome]], str | None] | None = None
    deadline_s: float | None = None
    on_outcome: Callable[[int, int, ReplayOutcome], None] | None = None


def replay(plan: ReplayPlan) -> ReplaySummary:
    """Send every entry ``plan.loop`` times; see the module docstring."""
    return asyncio.run(replay_async(plan))


async def replay_async(plan: ReplayPlan) -> ReplaySummary:
    corpus, target_url, key = plan.corpus, plan.target_url, plan.key
    rate, concurrency, loop = plan.rate, plan.concurrency, plan.loop
    entries = load_corpus(corpus) if isinstance(corpus, str | Path) else list(corpus)
    if concurrency < 1 or loop < 1 or (rate is not None and rate <= 0):
        raise ValueError("concurrency and loop must be >= 1 and rate > 0")
    jobs = [entry for _ in range(loop) for entry in entries]
    bar = _ProgressBar(len(jobs), sys.stderr if plan.progress else None)
    queue: asyncio.Queue[tuple[int, CorpusEntry]] = asyncio.Queue()
    for job in enumerate(jobs):
        queue.put_nowait(job)
    outcomes: list[ReplayOutcome] = []
    stopped: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.perf_counter()
    async with httpx.AsyncClient(
        base_url=target_url.rstrip("/"), timeout=plan.timeout, limits=limits, trust_env=False
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                index, entry = queue.get_nowait()
                if rate is not None:
                    # A global schedule: request i leaves at i / rate, whoever sends it.
                    delay = started + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                outcome = await _send(client, entry, key)
                outcomes.append(outcome)
                bar.advance(mismatch=outcome.problem is not None)
                if plan.on_outcome is not None:
                    plan.on_outcome(len(outcomes), len(jobs), outcome)
                reason = plan.stop_when(outcomes) if plan.stop_when is not None else None
                if reason is not None and not stopped:
                    stopped.append(reason)
                    while not queue.empty():  # nothing more is sent
                        queue.get_nowait()

        workers = asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)) or 1)))
        try:
            await asyncio.wait_for(workers, plan.deadline_s)
        except TimeoutError:
            stopped.append(
                f"deadline: {len(outcomes)} of {len(jobs)} answered in {plan.deadline_s:g} s"
            )
    bar.close()
    summary = _summarize(target_url, entries, outcomes, time.perf_counter() - started)
    return dataclasses.replace(summary, stopped=stopped[0] if stopped else None)


async def _send(client: httpx.AsyncClient, entry: CorpusEntry, key: str) -> ReplayOutcome:
    headers = {
        k: v for k, v in entry.send_headers(key).items() if k.lower() not in _TRANSPORT_HEADERS
    }
    began = time.perf_counter()
    try:
        async with client.stream(
            entry.method, entry.path, headers=headers, content=entry.content()
        ) as reply:
            body = await reply.aread()
    except httpx.HTTPError as exc:
        latency = (time.perf_counter() - began) * 1000
        return ReplayOutcome(
            entry.id, entry.endpoint, None, latency, f"{type(exc).__name__}: {exc}"
        )
    latency = (time.perf_counter() - began) * 1000
    problem = _problem(entry, reply.status_code, reply.headers.get("content-type", ""), body)
    return ReplayOutcome(entry.id, entry.endpoint, reply.status_code, latency, problem)


def _problem(entry: CorpusEntry, status: int, content_type: str, body: bytes) -> str | None:
    if status not in entry.expect_status:
        return f"status {status}: {body[:300].decode('utf-8', 'replace')}"
    if not 200 <= status < 300:
        return None
    return check_body(entry.endpoint, entry.api_format, entry.stream, content_type, body).problem


def _summarize(
    target: str,
    entries: Sequence[CorpusEntry],
    outcomes: Sequence[ReplayOutcome],
    duration: float,
) -> ReplaySummary:
    expected = {entry.id: entry.expect_status for entry in entries}
    latencies = sorted(o.latency_ms for o in outcomes if o.status is not None)
    return ReplaySummary(
        target=target,
        total=len(outcomes),
        duration_s=duration,
        status_counts=dict(sorted(Counter(_status_label(o.status) for o in outcomes).items())),
        endpoint_counts=dict(sorted(Counter(o.endpoint for o in outcomes).items())),
        mismatches=tuple(
            Mismatch(o.entry_id, expected[o.entry_id], o.status, o.problem)
            for o in outcomes
            if o.problem is not None
        ),
        latency_p50_ms=percentile(latencies, 0.50),
        latency_p95_ms=percentile(latencies, 0.95),
        outcomes=tuple(outcomes),
    )


def _status_label(status: int | None) -> str:
    return "error" if status is None else str(status)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "-"


class _ProgressBar:
    """A one-line text bar on a stream (stderr), redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total = total
        self.done = 0
        self.mismatches = 0
        self._stream = stream
        self._started = time.perf_counter()
        self._drawn_at = 0.0

    def advance(self, *, mismatch: bool) -> None:
        self.done += 1
        self.mismatches += int(mismatch)
        now = time.perf_counter()
        if now - self._drawn_at >= 0.1 or self.done == self.total:
            self._drawn_at = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        if self._stream is None:
            return
        filled = self.WIDTH * self.done // max(self.total, 1)
        rate = self.done / max(now - self._started, 1e-9)
        self._stream.write(
            f"\rreplay [{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}"
            f"  mismatches {self.mismatches}  {rate:.1f} req/s"
        )
        self._stream.flush()

    def close(self) -> None:
        if self._stream is not None and self.done:
            self._stream.write("\n")
            self._stream.flush()
