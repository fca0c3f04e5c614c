"""``harness cutover`` and ``harness rollback``: the last step, made safe.

Cutover refuses unless the latest readiness report says GO (or ``--force`` with a
reason, which is recorded), sets ``general_settings.use_sdk: true`` in place, restarts
the stack through the supervisor, checks health and a canary request, and writes a
record. If the check fails it rolls back by itself. Rollback is the reverse. Both are
idempotent and say what they changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.cutover.config_edit import set_use_sdk
from harness.cutover.stack_control import (
    find_running,
    start_stack,
    stop_stack,
    verify,
)
from memory_proxy.config import load_config

__all__ = [
    "SwitchOptions",
    "cutover",
    "report_verdict",
    "rollback",
    "switch_to_sdk",
    "write_record",
]


@dataclass(frozen=True)
class SwitchOptions:
    config: Path
    run_root: Path = Path("runs")
    records: Path = Path("reports/cutover")
    ports: dict[str, int] = field(default_factory=lambda: {"sdk": 8764})
    restart: bool = True
    ready_timeout: float = 180.0

    @property
    def main_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.get('sdk', 8764)}"


def _say(line: str) -> None:
    print(line, flush=True)


def report_verdict(report: Path) -> str | None:
    """The decision (GO, NO-GO, INCONCLUSIVE) in a report folder's ``report.json``, as
    `harness report` writes it; None if unreadable."""
    path = report / "report.json" if report.is_dir() else report
    try:
        return str(json.loads(path.read_text())["decision"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cutover(options: SwitchOptions, report: Path, force_reason: str | None = None) -> int:
    verdict = report_verdict(report)
    if verdict != "GO" and not force_reason:
        _say(
            f"cutover refused: the readiness report at {report} says {verdict or 'nothing'}, "
            "not GO. Fix what it lists, or pass --force --reason '...' (recorded)."
        )
        return 1
    if verdict != "GO":
        _say(f"cutover forced despite verdict {verdict}: {force_reason}")
    return _switch(
        options,
        use_sdk=True,
        evidence={
            "report": str(report),
            "verdict": verdict,
            "forced": force_reason,
        },
    )


def switch_to_sdk(options: SwitchOptions, evidence: dict[str, Any]) -> int:
    """The cutover itself, on evidence gathered elsewhere (a canary's passed steps): no
    report is asked for."""
    return _switch(options, use_sdk=True, evidence=evidence)


def rollback(options: SwitchOptions) -> int:
    return _switch(options, use_sdk=False, evidence={})


def _switch(options: SwitchOptions, *, use_sdk: bool, evidence: dict[str, Any]) -> int:
    action = "cutover" if use_sdk else "rollback"
    before = options.config.read_text(encoding="utf-8")
    after, changed = set_use_sdk(before, use_sdk)
    running = find_running(options.run_root)
    serving_wanted = running is not None and running.mode == ("sdk" if use_sdk else "legacy")
    if not changed and (serving_wanted or not options.restart):
        _say(
            f"{action}: nothing to change (use_sdk is already {str(use_sdk).lower()}"
            + (f", and the {running.mode} stack is serving)" if running else ")")
        )
        return 0
    if changed:
        _write_atomically(options.config, after)
        _say(
            f"{action}: {options.config}: general_settings.use_sdk "
            f"{str(not use_sdk).lower()} -> {str(use_sdk).lower()} (comments and layout kept)"
        )
    record: dict[str, Any] = {
        "action": action,
        "at": datetime.now(UTC).isoformat(),
        "config": str(options.config),
        "config_sha256_before": _sha(before),
        "config_sha256_after": _sha(after),
        **evidence,
    }
    if not options.restart:
        record["result"] = "config-only"
        write_record(options, record)
        return 0
    problems = _restart_and_verify(options, use_sdk, record=record)
    if not problems:
        record["result"] = "done"
        write_record(options, record)
        _say(
            f"{action}: {options.main_url} now serves the "
            f"{'SDK' if use_sdk else 'legacy'} proxy; health and canary passed"
        )
        return 0
    record["problems"] = problems
    for problem in problems:
        _say(f"{action}: check failed: {problem}")
    if use_sdk:
        _say("cutover: rolling back by itself")
        _write_atomically(options.config, before)
        back = _restart_and_verify(options, False, record=record)
        record["result"] = "rolled_back" if not back else "rollback_failed"
        record["rollback_problems"] = back
        _say(
            "cutover: rolled back; the legacy proxy serves again"
            if not back
            else "cutover: ROLLBACK FAILED: " + "; ".join(back)
        )
    else:
        record["result"] = "failed"
    write_record(options, record)
    return 1


def _restart_and_verify(options: SwitchOptions, use_sdk: bool, record: dict[str, Any]) -> list[str]:
    running = find_running(options.run_root)
    if running is not None:
        _say(f"  stopping the {running.mode} stack (supervisor pid {running.supervisor_pid})")
        stop_stack(running)
    run_dir = options.run_root / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    began = time.perf_counter()
    try:
        handle = start_stack(options.config, run_dir, options.ports, options.ready_timeout)
    except (RuntimeError, TimeoutError) as exc:
        return [str(exc)]
    record.setdefault("stacks", []).append(
        {
            "run_dir": str(run_dir),
            "mode": handle.mode,
            "startup_seconds": round(time.perf_counter() - began, 2),
        }
    )
    _say(
        f"  started the {handle.mode} stack in {time.perf_counter() - began:.1f} s "
        f"(logs: {run_dir})"
    )
    return verify(options.main_url, use_sdk, load_config(options.config))


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_record(options: SwitchOptions, record: dict[str, Any]) -> None:
    options.records.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = options.records / f"{stamp}-{record['action']}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    _say(f"  record: {path}")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
