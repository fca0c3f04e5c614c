"""Shadow mode's metrics, read from the same counters as ``GET /_shadow/stats``.

:class:`ShadowCollector` turns a stats snapshot into Prometheus metrics at scrape time,
so nothing on the request path changes for them. The snapshot holds what the dispatch
refused in the serving process and what the mirror engine reported, live, from the
sidecar's status channel (every 100 ms): one scrape target shows both.

Every label value is a name from code (a skip reason, a breaker state, a comparison
category, a store row state), never something a client sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["BREAKER_STATES", "SKIP_OUTCOMES", "ShadowCollector", "live_summary"]

# The dispatch's and engine's skip reasons, as the outcomes an operator reads; a reason
# not listed here keeps its own name.
SKIP_OUTCOMES: Mapping[str, str] = {
    "sample": "sampled_out",
    "health_sample": "health_sampled_out",
    "endpoint": "endpoint_filtered",
    "model": "model_filtered",
    "rate_limited": "rate_capped",
    "queue_full": "queue_full",
    "backpressure": "backpressure",
    "breaker_open": "breaker_open",
    "sidecar_down": "sidecar_down",
    "body_too_large": "body_too_large",
    "unshippable": "unshippable",
    "error": "tap_error",
}
BREAKER_STATES = ("closed", "open", "half-open")
# StoreHealth's cumulative row counts, by the state each row ended in.
_STORE_ROWS = {
    "written": "written",
    "dropped": "dropped",
    "spill_file_rows": "spill_file",
    "lost": "lost",
}


class ShadowCollector(Collector):
    """Metrics from ``stats()``, the dict ``ShadowMirror.stats`` returns."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        # Names are claimed by nothing else in the registry: no clash to check.
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self.stats()

        seen = CounterMetricFamily(
            "shadow_requests_seen", "Requests of a mirrored endpoint the primary served."
        )
        seen.add_metric([], stats.get("seen", 0))
        yield seen

        outcomes = CounterMetricFamily(
            "shadow_mirror_requests",
            "Requests by what the mirror did with them: mirrored, the reason it skipped, "
            "or why a queued one was stored primary-only (shutdown).",
            labels=["outcome"],
        )
        # A queued request the engine then stored primary-only was not mirrored: it
        # moves from "mirrored" to its own outcome, so the outcomes still add up to seen.
        not_mirrored = stats.get("not_mirrored", {})
        outcomes.add_metric(["mirrored"], stats.get("queued", 0) - sum(not_mirrored.values()))
        for reason, count in sorted(stats.get("skipped", {}).items()):
            outcomes.add_metric([SKIP_OUTCOMES.get(reason, reason)], count)
        for reason, count in sorted(not_mirrored.items()):
            outcomes.add_metric([reason], count)
        yield outcomes

        pairs = CounterMetricFamily(
            "shadow_pairs", "Mirrored pairs, by what became of them.", labels=["result"]
        )
        pairs.add_metric(["stored"], stats.get("completed", 0))
        pairs.add_metric(["store_rejected"], stats.get("store_rejected", 0))
        pairs.add_metric(["worker_error"], stats.get("worker_errors", 0))
        yield pairs

        failed = CounterMetricFamily(
            "shadow_target_failures", "Mirrored calls the shadow target did not answer."
        )
        failed.add_metric([], stats.get("shadow_failed", 0))
        yield failed

        differences = CounterMetricFamily(
            "shadow_pair_comparisons",
            "Pairs by a live comparison of the two sides' HTTP status (the full diff is "
            "the report's).",
            labels=["result"],
        )
        for result, count in sorted(stats.get("differences", {}).items()):
            differences.add_metric([result], count)
        yield differences

        breaker = GaugeMetricFamily(
            "shadow_breaker_state",
            "The shadow target's circuit breaker: 1 for its current state.",
            labels=["state"],
        )
        current = stats.get("breaker", "closed")
        for state in BREAKER_STATES:
            breaker.add_metric([state], 1.0 if state == current else 0.0)
        yield breaker

        backpressure = stats.get("backpressure")
        if backpressure is not None:
            yield GaugeMetricFamily(
                "shadow_mirror_concurrency_limit",
                "Mirrors the shadow target may have at once now: max_in_flight, lowered "
                "while it answers with 429s, 5xx, timeouts or late headers.",
                value=backpressure.get("limit", 0),
            )
            cuts = CounterMetricFamily(
                "shadow_mirror_concurrency_decreases",
                "Times the shadow target's trouble halved the mirror's concurrency limit.",
            )
            cuts.add_metric([], backpressure.get("decreases", 0))
            yield cuts
        yield GaugeMetricFamily(
            "shadow_queue_depth", "Mirrors waiting for a worker.", value=stats.get("queue_depth", 0)
        )
        yield GaugeMetricFamily(
            "shadow_mirrors_in_flight",
            "Mirrors being sent or awaiting the primary's answer.",
            value=stats.get("in_flight", 0),
        )
        replay = stats.get("replay")
        if replay is not None:
            calls = CounterMetricFamily(
                "shadow_replay_calls",
                "Mirror-side provider calls the replay upstream answered: replayed from the "
                "primary's recorded calls, or a miss (nothing recorded; never forwarded).",
                labels=["result"],
            )
            calls.add_metric(["replayed"], replay.get("served", 0))
            calls.add_metric(["miss"], replay.get("misses", 0))
            yield calls
            unrecorded = CounterMetricFamily(
                "shadow_replay_primary_unrecorded",
                "Mirrored requests whose primary made no provider call to replay.",
            )
            unrecorded.add_metric([], stats.get("primary_unrecorded", 0))
            yield unrecorded
        if "sidecar_running" in stats:
            yield GaugeMetricFamily(
                "shadow_sidecar_up",
                "1 while the mirror sidecar process runs.",
                value=1.0 if stats["sidecar_running"] else 0.0,
            )
        yield from _store_metrics(stats.get("store"))


def _store_metrics(store: Mapping[str, Any] | None) -> Iterator[Metric]:
    if not store:
        return
    rows = CounterMetricFamily(
        "shadow_store_rows",
        "Captured rows by where they ended: written, dropped at the door, appended to the "
        "fallback file, or lost.",
        labels=["state"],
    )
    for field, state in _STORE_ROWS.items():
        rows.add_metric([state], store.get(field, 0))
    yield rows
    yield GaugeMetricFamily(
        "shadow_store_spilled_rows",
        "Rows held in memory for a retry after a failed write (the store is spilling).",
        value=store.get("spilled", 0),
    )
    failed = CounterMetricFamily("shadow_store_failed_writes", "Store transactions that failed.")
    failed.add_metric([], store.get("failed_writes", 0))
    yield failed
    yield GaugeMetricFamily(
        "shadow_store_ok",
        "1 while no write failed and no row was lost.",
        value=float(store.get("ok", True)),
    )


def live_summary(exposition: str) -> tuple[str, str, str]:
    """Three lines an operator reads first, from a ``/metrics`` text. Pure.

    What was mirrored, the live difference rate (status comparison) and the store's health.
    """
    # Keyed by name and label value: every shadow_* metric has at most one label.
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            key = (sample.name, next(iter(sample.labels.values()), ""))
            values[key] = values.get(key, 0.0) + sample.value

    def total(name: str, label: str | None = None) -> int:
        return int(sum(v for (n, lbl), v in values.items() if n == name and label in (None, lbl)))

    seen = total("shadow_requests_seen_total")
    mirrored = total("shadow_mirror_requests_total", "mirrored")
    skipped = total("shadow_mirror_requests_total") - mirrored
    compared = total("shadow_pair_comparisons_total")
    differs = total("shadow_pair_comparisons_total", "status_differs")
    rate = f"{differs / compared:.1%}" if compared else "n/a"
    ok = values.get(("shadow_store_ok", ""), 1.0) == 1.0
    return (
        f"mirrored: {mirrored} of {seen} requests seen ({skipped} skipped)",
        f"difference rate: {rate} ({differs} of {compared} pairs differ in status)",
        f"store: {total('shadow_store_rows_total', 'written')} written, "
        f"{total('shadow_store_spilled_rows')} spilled, "
        f"{total('shadow_store_rows_total', 'lost')} lost ({'ok' if ok else 'NOT ok'})",
    )
