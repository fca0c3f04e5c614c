"""The gradual cutover's state and history, in the capture store (a SQLite file or a
PostgreSQL database, through :mod:`~harness.store.dialect`).

One row of state (``canary_state``): the step list, the step being served and its
percent, and the run's status. The front door (``harness shadow --canary``) reads the
percent from it; ``harness cutover --canary`` writes it, so a restart of either resumes
where the other left it. Every change of state is written with a line of history
(``canary_history``) in the same transaction: the steps, their windows and decisions,
and a rollback's evidence, for ``harness cutover --status`` and the report.

The window's pairs are read here too (every SQL statement of the harness lives in this
package): the rows received since a time, in insertion order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store.capture_store import _SELECT_PAIR, StoredPair, UnreadableRow, _read_row
from harness.store.dialect import Dialect, SqliteDialect, open_dialect
from harness.store.schema import migrate

__all__ = ["CanaryEvent", "CanaryState", "CanaryStore"]

# What a run's status may be: serving a step, rolled back to 0 %, cut over at 100 %, or
# stopped at 100 % because the cutover's own checks failed (it rolled back by itself).
STATUSES = ("running", "rolled_back", "done", "cutover_failed")


@dataclass(frozen=True)
class CanaryState:
    """Where a canary run is. ``percent`` is what the front door serves from the SDK."""

    steps: tuple[float, ...]
    interval_s: float
    window_s: float
    step_index: int
    percent: float
    status: str
    step_started_at: float
    updated_at: float

    @property
    def active(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class CanaryEvent:
    """One line of a run's history: a step started, a window judged, a rollback."""

    at: float
    step_index: int
    percent: float
    event: str
    evidence: dict[str, Any]


class CanaryStore:
    """Reads and writes the canary tables of the store at ``path`` (created if missing)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self._dialect: Dialect = open_dialect(path, busy_timeout_s=busy_timeout_s)
        self.path: str | Path = path
        self._migrated = False

    def _connect(self) -> Any:
        dialect = self._dialect
        if isinstance(dialect, SqliteDialect) and not self._migrated and not dialect.uri:
            dialect.file.parent.mkdir(parents=True, exist_ok=True)
        conn = dialect.connect()
        if not self._migrated:
            try:
                if isinstance(dialect, SqliteDialect):
                    conn.execute("PRAGMA journal_mode=WAL")
                migrate(conn, dialect)
            except BaseException:
                conn.close()
                raise
            self._migrated = True
        return conn

    def state(self) -> CanaryState | None:
        with closing(self._connect()) as conn:
            row = self._dialect.execute(
                conn,
                "SELECT steps_json, interval_s, window_s, step_index, percent, status, "
                "step_started_at, updated_at FROM canary_state WHERE id = 1",
            ).fetchone()
        if row is None:
            return None
        return CanaryState(tuple(float(s) for s in json.loads(row[0])), *row[1:])

    def percent(self) -> float:
        """The SDK's share the front door serves: 0 with no run."""
        state = self.state()
        return float(state.percent) if state is not None else 0.0

    def save(self, state: CanaryState, event: str, evidence: dict[str, Any] | None = None) -> None:
        """Write ``state`` and its history line in one transaction."""
        dialect = self._dialect
        with closing(self._connect()) as conn:
            conn.execute(dialect.begin)
            try:
                # An upsert both SQLite (3.24+) and PostgreSQL spell the same way.
                dialect.execute(
                    conn,
                    "INSERT INTO canary_state (id, steps_json, interval_s, window_s, "
                    "step_index, percent, status, step_started_at, updated_at) "
                    "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "steps_json = excluded.steps_json, interval_s = excluded.interval_s, "
                    "window_s = excluded.window_s, step_index = excluded.step_index, "
                    "percent = excluded.percent, status = excluded.status, "
                    "step_started_at = excluded.step_started_at, "
                    "updated_at = excluded.updated_at",
                    (
                        json.dumps(list(state.steps)),
                        state.interval_s,
                        state.window_s,
                        state.step_index,
                        state.percent,
                        state.status,
                        state.step_started_at,
                        state.updated_at,
                    ),
                )
                dialect.execute(
                    conn,
                    "INSERT INTO canary_history (at, step_index, percent, event, evidence_json) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        state.updated_at,
                        state.step_index,
                        state.percent,
                        event,
                        json.dumps(evidence or {}, default=str, separators=(",", ":")),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                dialect.rollback(conn)
                raise

    def history(self) -> list[CanaryEvent]:
        with closing(self._connect()) as conn:
            rows = self._dialect.execute(
                conn,
                "SELECT at, step_index, percent, event, evidence_json FROM canary_history "
                "ORDER BY id",
            ).fetchall()
        return [CanaryEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def rows_since(self, received_at: float) -> Iterator[StoredPair | UnreadableRow]:
        """The pairs received at or after ``received_at``, in insertion order."""
        conn = self._connect()
        if isinstance(conn, sqlite3.Connection):
            conn.text_factory = bytes  # decoded in _read_row
        try:
            sql = f"{_SELECT_PAIR} WHERE received_at >= ? ORDER BY id"
            for row in self._dialect.stream(conn, sql, (received_at,)):
                yield _read_row(row)
        finally:
            conn.close()
