"""Requests served over a load run, from Locust's stats history, joined to the process
samples (the memory gate judges RSS growth per request served, not per second)."""

from __future__ import annotations

import bisect
import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

from harness.store.capture_store import ProcessSample

__all__ = ["history_counts", "with_requests"]


def history_counts(path: Path) -> list[tuple[float, int]]:
    """``(unix time, requests so far)`` from ``<prefix>_stats_history.csv``'s aggregated
    rows, oldest first; empty when the file is missing or unreadable."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    counts = []
    for row in rows:
        if row.get("Name") != "Aggregated":
            continue
        try:
            counts.append((float(row["Timestamp"]), int(row["Total Request Count"])))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(counts)


def with_requests(
    samples: Sequence[ProcessSample],
    started_at: float,
    history: Sequence[tuple[float, int]],
    total: int | None,
) -> list[ProcessSample]:
    """Each sample with the requests served by its time. Pure.

    Locust's history counts every request event, TTFT events of streams included; it is
    scaled so that its last count is ``total``, the run's request count. Samples are
    unchanged when either is missing.
    """
    if not history or not total or history[-1][1] <= 0:
        return list(samples)
    scale = total / history[-1][1]
    times = [t for t, _ in history]
    out = []
    for sample in samples:
        at = bisect.bisect_right(times, started_at + sample.t)
        served = history[at - 1][1] if at else 0
        out.append(dataclasses.replace(sample, requests=round(served * scale)))
    return out
