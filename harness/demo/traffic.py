"""How much traffic the demo sends: enough for every gate to decide (pure sizing, and the
health checks a monitor would send)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence

import httpx

from harness.corpus import CorpusEntry

__all__ = ["health_checks_needed", "replay_loops", "send_health_checks", "top_up"]

# A little over the minimum: a sample lost to a slow mirror must not leave a gate short.
MARGIN = 1.1


def replay_loops(entries: Sequence[CorpusEntry], min_samples: int) -> int:
    """Times to replay the corpus so that its thinnest latency slice (endpoint, stream),
    counting only the requests expected to succeed, reaches ``min_samples``. Pure."""
    slices = _success_slices(entries)
    if not slices:
        return 1
    return max(1, math.ceil(min_samples * MARGIN / min(slices.values())))


def top_up(
    entries: Sequence[CorpusEntry], loops: int, target: int
) -> tuple[list[CorpusEntry], int]:
    """After ``loops`` of the whole corpus, the entries of the latency slices still short
    of ``target`` samples (p95 decides only from its own minimum, above ``min_samples``),
    and how many more times to send them so that the thinnest reaches it. Sending those
    alone, not the whole corpus again, keeps the demo short. Pure."""
    slices = _success_slices(entries)
    needed = math.ceil(target * MARGIN)
    short = {key for key, count in slices.items() if count * loops < needed}
    if not short:
        return [], 0
    extra = max(math.ceil(needed / slices[key]) for key in short) - loops
    chosen = [
        entry for entry in entries if (entry.endpoint, entry.stream) in short and _succeeds(entry)
    ]
    return chosen, extra


def _success_slices(entries: Sequence[CorpusEntry]) -> Counter[tuple[str, bool]]:
    """Per latency slice (endpoint, stream), the entries expected to succeed."""
    return Counter((entry.endpoint, entry.stream) for entry in entries if _succeeds(entry))


def _succeeds(entry: CorpusEntry) -> bool:
    return all(200 <= status < 300 for status in entry.expect_status)


def health_checks_needed(min_samples: int, health_rate: float) -> int:
    """Health checks to send so that ``health_rate`` % of them make ``min_samples``. Pure."""
    if health_rate <= 0:
        return 0
    return math.ceil(min_samples * MARGIN * 100 / health_rate)


def send_health_checks(url: str, count: int, interval_s: float = 0.005) -> int:
    """``GET /health`` ``count`` times, ``interval_s`` apart, as a monitor polls; how many
    answered 200.

    Sent back to back, the checks kept shadow mode's processes busy with the one before,
    and the health slice's p95 read +0.9 ms on the SDK side on a 6 ms p95 (a loaded run,
    1.2 ms allowed); a monitor's pace leaves them idle between checks."""
    ok = 0
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        for _ in range(count):
            ok += client.get("/health").status_code == 200
            time.sleep(interval_s)
    return ok
