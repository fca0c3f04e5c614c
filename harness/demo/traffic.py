"""How much traffic the demo sends: enough for every gate to decide (pure sizing, and the
health checks a monitor would send)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import httpx

from harness.corpus import CorpusEntry

__all__ = ["health_checks_needed", "replay_loops", "send_health_checks"]

# A little over the minimum: a sample lost to a slow mirror must not leave a gate short.
MARGIN = 1.1


def replay_loops(entries: Sequence[CorpusEntry], min_samples: int) -> int:
    """Times to replay the corpus so that its thinnest latency slice (endpoint, stream),
    counting only the requests expected to succeed, reaches ``min_samples``. Pure."""
    slices = Counter(
        (entry.endpoint, entry.stream)
        for entry in entries
        if all(200 <= status < 300 for status in entry.expect_status)
    )
    if not slices:
        return 1
    return max(1, math.ceil(min_samples * MARGIN / min(slices.values())))


def health_checks_needed(min_samples: int, health_rate: float) -> int:
    """Health checks to send so that ``health_rate`` % of them make ``min_samples``. Pure."""
    if health_rate <= 0:
        return 0
    return math.ceil(min_samples * MARGIN * 100 / health_rate)


def send_health_checks(url: str, count: int) -> int:
    """``GET /health`` ``count`` times, as a monitor polls; how many answered 200."""
    ok = 0
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
        for _ in range(count):
            ok += client.get("/health").status_code == 200
    return ok
