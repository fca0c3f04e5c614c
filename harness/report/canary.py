"""The report's canary section: the steps of a gradual cutover, their windows, decisions
and any rollback's evidence, as ``harness cutover --canary`` recorded them in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cutover.canary.judge import unrecorded_note
from harness.report.model import CanaryLine, CanarySummary
from harness.store.canary_store import CanaryEvent, CanaryState, CanaryStore
from harness.store.dialect import store_exists

__all__ = ["read_canary", "summarize_canary"]


def read_canary(store_path: str | Path) -> CanarySummary | None:
    """The canary run in the store, or None when none ran on it."""
    if not store_exists(store_path, "--store"):
        return None
    store = CanaryStore(store_path)
    state = store.state()
    return summarize_canary(state, store.history()) if state is not None else None


def summarize_canary(state: CanaryState, history: list[CanaryEvent]) -> CanarySummary:
    """Pure: the state and its history as the report's lines."""
    lines = tuple(
        CanaryLine(e.at, e.step_index + 1, e.percent, e.event, _detail(e.evidence)) for e in history
    )
    return CanarySummary(state.status, state.steps, state.percent, lines)


def _detail(evidence: dict[str, Any]) -> str:
    window = evidence.get("window", evidence)
    parts = []
    if "why" in evidence:
        parts.append(str(evidence["why"]))
    if isinstance(window, dict) and "status" in window:
        served = ", ".join(f"{n} by {who}" for who, n in sorted(window.get("served", {}).items()))
        parts.append(f"window {window['status']}: {window.get('pairs', 0)} pairs ({served})")
        failing = [
            f"{g['name']}: {g['detail']}"
            for g in window.get("gates", ())
            if g.get("status") == "FAIL"
        ]
        parts.extend(failing or [str(window.get("reason", ""))])
        unrecorded = window.get("unrecorded") or 0
        if unrecorded and failing:  # a passing window's reason already says so
            parts.append(unrecorded_note(unrecorded))
    if "exit" in evidence:
        parts.append(f"cutover exit {evidence['exit']}")
    return "; ".join(p for p in parts if p)
