"""The run's verdict: a ``quitting`` listener that summarizes the stats and sets the exit code.

``TTFT`` rows are request events of their own (see :mod:`loadtests.users`), so the
request figures (count, failures, percentiles) are computed over the other rows only,
merged exactly from Locust's response-time histograms; TTFT figures over the ``TTFT``
rows. The SLO is missed when the failure ratio exceeds ``LOAD_MAX_FAILURE_RATIO``, the
p95 exceeds ``LOAD_P95_MS``, nothing was sent, or user code raised: then the process
exits 1. Otherwise it exits 0, even with failures the SLO allows (Locust's own rule
would exit 1 on any failure).

The summary goes to ``LOAD_SUMMARY`` as JSON for ``harness load`` to store.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import RequestStats, StatsEntry

from loadtests.options import LoadOptions

__all__ = ["TTFT", "install_slo_listener", "slo_misses", "summarize"]

TTFT = "TTFT"
logger = logging.getLogger("loadtests.slo")


def install_slo_listener(environment_events: Any, options: LoadOptions) -> None:
    @environment_events.quitting.add_listener
    def _on_quitting(environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            return  # the master judges the whole run (loadtests.distributed)
        exceptions = len(runner.exceptions) if runner is not None else 0
        summary = summarize(environment.stats, exceptions=exceptions)
        misses = slo_misses(summary, options)
        summary["slo"] = {
            "max_failure_ratio": options.max_failure_ratio,
            "p95_ms": options.p95_ms,
            "missed": misses,
            "ok": not misses,
        }
        summary["profile"] = options.profile
        summary["seed"] = options.seed
        if options.summary_path is not None:
            options.summary_path.parent.mkdir(parents=True, exist_ok=True)
            options.summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        if misses:
            logger.error("SLO missed: %s", "; ".join(misses))
            environment.process_exit_code = 1
        else:
            environment.process_exit_code = 0


def summarize(stats: RequestStats, *, exceptions: int = 0) -> dict[str, Any]:
    requests = StatsEntry(stats, "requests", "")
    ttft = StatsEntry(stats, TTFT, TTFT)
    rows = []
    for entry in sorted(stats.entries.values(), key=lambda e: (e.method or "", e.name)):
        (ttft if entry.method == TTFT else requests).extend(entry)
        rows.append({"type": entry.method, "name": entry.name, **_figures(entry)})
    duration = 0.0
    if stats.last_request_timestamp and stats.start_time:
        duration = stats.last_request_timestamp - stats.start_time
    return {
        "duration_s": duration,
        "requests": _figures(requests, duration),
        "ttft": _figures(ttft, duration) if ttft.num_requests else None,
        "by_name": rows,
        "errors": [
            {"type": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
        "exceptions": exceptions,
    }


def _figures(entry: StatsEntry, duration: float | None = None) -> dict[str, Any]:
    count = entry.num_requests
    if duration is None:
        rps = entry.total_rps
    else:
        rps = count / duration if duration > 0 else 0.0
    return {
        "count": count,
        "failures": entry.num_failures,
        "fail_ratio": entry.fail_ratio,
        "rps": rps,
        "avg_ms": entry.avg_response_time if count else None,
        "p50_ms": entry.get_response_time_percentile(0.50) if count else None,
        "p95_ms": entry.get_response_time_percentile(0.95) if count else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if count else None,
        "max_ms": entry.max_response_time if count else None,
        "avg_response_length": entry.avg_content_length if count else None,
    }


def slo_misses(summary: dict[str, Any], options: LoadOptions) -> list[str]:
    """Why the run missed its SLO; empty when it met it."""
    requests = summary["requests"]
    misses = []
    if requests["count"] == 0:
        misses.append("no request was sent")
    elif requests["fail_ratio"] > options.max_failure_ratio:
        misses.append(
            f"failure ratio {requests['fail_ratio']:.4f} > {options.max_failure_ratio} "
            f"({requests['failures']} of {requests['count']})"
        )
    if requests["p95_ms"] is not None and requests["p95_ms"] > options.p95_ms:
        misses.append(f"p95 {requests['p95_ms']:.0f} ms > {options.p95_ms:.0f} ms")
    if summary.get("exceptions"):
        misses.append(f"{summary['exceptions']} exception(s) in user code")
    return misses
