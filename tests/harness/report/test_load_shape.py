"""The load gate reads `harness load`'s own result shape, not only the flat one."""

from __future__ import annotations

from harness.report.resource_gates import load_summaries
from harness.store.capture_store import LoadRun


def test_driver_shape_is_read() -> None:
    results = {
        "requests": {
            "count": 3519,
            "failures": 2,
            "rps": 254.0,
            "p50_ms": 170,
            "p95_ms": 400,
            "p99_ms": 790,
        },
        "ttft": {"p50_ms": 180, "p95_ms": 300},
        "status": "slo-missed",
    }
    run = LoadRun(
        id=1,
        name="load-criterion-x",
        target="sdk",
        started_at=0.0,
        finished_at=1.0,
        params={"users": 50},
        results=results,
    )
    (summary,) = load_summaries([run])
    assert (summary.target, summary.users, summary.requests, summary.failures) == (
        "sdk",
        50,
        3519,
        2,
    )
    assert (summary.p95_ms, summary.ttft_p95_ms, summary.slo_passed) == (400.0, 300.0, False)
