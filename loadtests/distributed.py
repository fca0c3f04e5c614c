"""Locust's distributed mode, with an end that loses no request.

A worker reports its stats to the master every few seconds. When a headless run ends
(``-t``, or the ramp's shape), Locust's master tells the workers to quit and waits half a
second for their last report: whatever a worker measured after its previous report (up
to a report interval, plus the requests still running at the stop) can miss the master's
totals. So as the master starts stopping (``test_stopping``), this first tells every
worker to stop and waits until each one has sent a report made after it stopped (each
report says whether it was); only then does Locust go on to quit. The master's totals
are then the sum of its workers'.

Each worker also writes its own counts to ``LOAD_WORKER_SUMMARY`` when it quits.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any

import gevent
from locust.rpc import Message
from locust.runners import STATE_STOPPED, STATE_STOPPING, MasterRunner, WorkerRunner

from loadtests.options import LoadOptions
from loadtests.slo import TTFT

__all__ = ["install_distributed"]

logger = logging.getLogger("loadtests.distributed")
# Workers report every 3 s, after their users stopped (up to --stop-timeout): this only
# bounds the wait for a worker that died.
_FINAL_REPORT_WAIT_S = 60.0


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
            _worker(runner, events, sent, options)
        elif isinstance(runner, MasterRunner):
            _master(runner, events)


def _worker(runner: WorkerRunner, events: Any, sent: Counter[str], options: LoadOptions) -> None:
    @events.report_to_master.add_listener
    def _report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        # Read in the same greenlet step as Locust serializes its stats: consistent.
        data["harness_stopped"] = runner.state == STATE_STOPPED and runner.user_count == 0

    @events.quitting.add_listener
    def _quitting(**_: Any) -> None:
        if options.worker_summary_path is not None:
            counts = {k: sent[k] for k in ("requests", "failures", "ttft")}
            options.worker_summary_path.write_text(json.dumps(counts), encoding="utf-8")


def _master(runner: MasterRunner, events: Any) -> None:
    final: set[str] = set()
    waiting = {"now": False}

    @events.worker_report.add_listener
    def _report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if waiting["now"] and data.get("harness_stopped"):
            final.add(client_id)

    @events.test_stopping.add_listener
    def _stopping(**_: Any) -> None:
        workers = [client.id for client in runner.clients.all]
        logger.info("stopping %d workers and waiting for their last reports", len(workers))
        # Locust fires test_stopping before it leaves RUNNING; a worker reporting it has
        # stopped would then make the master hand its users to the others again.
        runner.update_state(STATE_STOPPING)
        final.clear()
        waiting["now"] = True
        for worker in workers:
            runner.server.send_to_client(Message("stop", None, worker))
        deadline = time.monotonic() + _FINAL_REPORT_WAIT_S
        while not final.issuperset(workers) and time.monotonic() < deadline:
            gevent.sleep(0.2)
        missing = set(workers) - final
        if missing:
            logger.error("no report after stopping from %d worker(s): %s", len(missing), missing)
        waiting["now"] = False
