"""Locust's distributed mode, with an end that loses no request.

A worker reports its stats to the master every few seconds. Locust's own end of a
headless run (``-t``) tells the workers to quit and waits half a second for their last
report: whatever a worker measured after its previous report (up to a report interval,
plus the requests still running at the stop) can miss the master's totals. So in
distributed mode ``harness load`` gives the master no ``-t``; instead, after
``LOAD_RUN_TIME_S``, the master stops the workers and quits only once every worker has
sent a report made after it stopped (each report says so, and how many requests that
worker has sent in all). The master's totals are then the sum of its workers'.

Each worker also writes its own counts to ``LOAD_WORKER_SUMMARY`` when it quits.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any

import gevent
from locust.runners import STATE_STOPPED, MasterRunner, WorkerRunner

from loadtests.options import LoadOptions
from loadtests.slo import TTFT

__all__ = ["install_distributed"]

logger = logging.getLogger("loadtests.distributed")
# After the stop: the workers' next report comes within Locust's report interval (3 s);
# this bounds the wait for a worker that died.
_FINAL_REPORT_WAIT_S = 30.0


def install_distributed(events: Any, options: LoadOptions) -> None:
    sent: Counter[str] = Counter()  # this worker's request events, by kind

    @events.request.add_listener
    def _count(request_type: str, exception: Any = None, **_: Any) -> None:
        if request_type == TTFT:
            sent["ttft"] += 1
            return
        sent["requests"] += 1
        if exception is not None:
            sent["failures"] += 1

    @events.init.add_listener
    def _on_init(environment: Any, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            _worker(environment, events, sent, options)
        elif isinstance(runner, MasterRunner) and options.run_time_s is not None:
            _master(environment, events, options)


def _worker(environment: Any, events: Any, sent: Counter[str], options: LoadOptions) -> None:
    runner = environment.runner

    @events.report_to_master.add_listener
    def _report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        # Read in the same greenlet step as Locust serializes its stats: consistent.
        data["harness_stopped"] = runner.state == STATE_STOPPED and runner.user_count == 0

    @events.quitting.add_listener
    def _quitting(**_: Any) -> None:
        if options.worker_summary_path is not None:
            counts = {k: sent[k] for k in ("requests", "failures", "ttft")}
            options.worker_summary_path.write_text(json.dumps(counts), encoding="utf-8")


def _master(environment: Any, events: Any, options: LoadOptions) -> None:
    runner = environment.runner
    final: set[str] = set()
    stopping = {"now": False}

    @events.worker_report.add_listener
    def _report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if stopping["now"] and data.get("harness_stopped"):
            final.add(client_id)

    def _end() -> None:
        assert options.run_time_s is not None
        gevent.sleep(options.run_time_s)
        logger.info("run time reached: stopping the workers")
        stopping["now"] = True
        final.clear()
        runner.stop()  # tells the workers to stop, waits until they run no user
        deadline = time.monotonic() + _FINAL_REPORT_WAIT_S
        while len(final) < options.expect_workers and time.monotonic() < deadline:
            gevent.sleep(0.2)
        if len(final) < options.expect_workers:
            logger.error(
                "only %d of %d workers reported after stopping", len(final), options.expect_workers
            )
        runner.quit()

    @events.test_start.add_listener
    def _start(**_: Any) -> None:
        if not stopping["now"]:
            gevent.spawn(_end)
