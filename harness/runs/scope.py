"""Which rows a report reads: ``--run ID|latest|all``, ``--since T`` and ``--instance
NAME`` (a team's proxy), resolved against the store's runs: one :class:`Scope` for all
three, and the words the report says it read."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from harness.errors import HarnessError
from harness.store.capture_store import CaptureStore
from harness.store.runs import RunRecord, Scope

__all__ = ["ReportScope", "ScopeError", "parse_since", "resolve_scope"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScopeError(HarnessError, ValueError):
    """A ``--run`` or ``--since`` that does not parse or names nothing in the store."""


@dataclass(frozen=True)
class ReportScope:
    scope: Scope
    run: RunRecord | None  # the one run read, when the scope is one run
    text: str  # what the report says it read


def parse_since(text: str, now: float | None = None) -> float:
    """``2026-12-07T03:00:00Z`` or ``2026-12-07`` (no zone: UTC; an offset such as
    ``+01:00`` allowed), ``1765076400`` (unix seconds), or an age such as ``90s``, ``30m``,
    ``2h``, ``7d`` (that long before ``now``); unix seconds."""
    text = text.strip()
    ago = _AGO.match(text)
    if ago:
        return (time.time() if now is None else now) - float(ago[1]) * _UNIT[ago[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScopeError(
            f"--since {text!r}: expected an ISO time (2026-12-07T03:00Z), unix seconds, "
            "or an age such as 30m, 2h, 1d"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def resolve_scope(
    store: CaptureStore, run: str | None, since: float | None, instance: str | None = None
) -> ReportScope:
    """``run``: a run id, ``latest`` or ``all``; None is ``latest``, or every run when
    ``since`` or ``instance`` is given (a team's proxies each open their own runs: the
    latest is one proxy's, likely not ``instance``'s). ``latest`` in a store without runs
    reads every pair. ``instance``: only that proxy's pairs."""
    since_text = "" if since is None else f", since {_utc(since)}"
    if instance is not None:
        since_text += f", instance {instance}"
    if run is None:
        run = "all" if since is not None or instance is not None else "latest"
    if run == "all":
        return ReportScope(Scope(since=since, instance=instance), None, f"all runs{since_text}")
    if run == "latest":
        found = store.latest_run()
        if found is None:
            scope = Scope(since=since, instance=instance)
            return ReportScope(scope, None, f"all pairs (no runs){since_text}")
    else:
        try:
            run_id = int(run)
        except ValueError:
            raise ScopeError(f"--run {run!r}: expected a run id, latest or all") from None
        found = store.run(run_id)
        if found is None:
            raise ScopeError(f"--run {run_id}: no such run in {store.path} (see `harness runs`)")
    scope = Scope(run_id=found.id, since=since, instance=instance)
    return ReportScope(scope, found, f"run {found.id}{since_text}")


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
