"""Runs: one per `harness shadow` start, and the scope a report reads.

A run row holds what produced its pairs (both proxies' versions, the config files'
hashes, replay or live, which side answered clients), when it started and ended, and the
mirror's counters (requests seen, mirrored, skipped by reason), each part written by the
process that counted it: ``tap`` by the serving process, ``mirror`` by the process the
mirror engine runs in (the sidecar, or the serving process itself).

Pairs and load runs carry the run's id; process samples belong to their load run. Rows
written before runs existed (schema 2) have none: they read as the legacy run, ``None``.

:class:`Scope` is which rows a report reads: one run's, those since a time, or all; its
SQL is here, with the rest of the store's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.store.dialect import Dialect

__all__ = ["RunRecord", "Scope", "end_run", "merge_counters", "open_run", "read_runs"]


@dataclass(frozen=True)
class RunRecord:
    """A ``runs`` row, with how many pairs and load runs carry its id."""

    id: int
    started_at: float
    ended_at: float | None
    mode: str  # replay | live
    primary_role: str | None  # sdk | legacy: who answered clients
    versions: dict[str, Any] = field(default_factory=dict)  # role -> version text
    configs: dict[str, Any] = field(default_factory=dict)  # config name -> path and sha256
    counters: dict[str, Any] = field(default_factory=dict)  # "tap" / "mirror" -> counters
    pairs: int = 0
    load_runs: int = 0

    @property
    def open(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class Scope:
    """Which rows a report reads: ``run_id``'s (when set), received or started at or
    after ``since`` (when set), captured by the proxy ``instance`` (when set); none of
    them: every row, the legacy run's included."""

    run_id: int | None = None
    since: float | None = None  # epoch seconds
    instance: str | None = None  # a team's proxy (pairs.instance)

    def where(self, time_column: str, *, has_instance: bool = True) -> tuple[str, list[Any]]:
        """`` AND ...`` conditions on a table with ``run_id`` and ``time_column``, and an
        ``instance`` column when ``has_instance`` (pairs have one; load runs do not: a
        load run measures every proxy of its run, so ``instance`` does not narrow them)."""
        sql = ""
        args: list[Any] = []
        if self.run_id is not None:
            sql += " AND run_id = ?"
            args.append(self.run_id)
        if self.since is not None:
            sql += f" AND {time_column} >= ?"
            args.append(self.since)
        if self.instance is not None and has_instance:
            sql += " AND instance = ?"
            args.append(self.instance)
        return sql, args


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def open_run(
    conn: Any,
    dialect: Dialect,
    *,
    started_at: float,
    mode: str,
    primary_role: str | None,
    versions: dict[str, Any],
    configs: dict[str, Any],
) -> int:
    return dialect.insert_id(
        conn,
        "INSERT INTO runs (started_at, mode, primary_role, versions_json, configs_json) "
        "VALUES (?, ?, ?, ?, ?)",
        (started_at, mode, primary_role, _dumps(versions), _dumps(configs)),
    )


def end_run(conn: Any, dialect: Dialect, run_id: int, ended_at: float) -> None:
    dialect.execute(conn, "UPDATE runs SET ended_at = ? WHERE id = ?", (ended_at, run_id))


def merge_counters(
    conn: Any, dialect: Dialect, run_id: int, part: str, counters: dict[str, Any]
) -> None:
    """Set the run's ``part`` counters, keeping the other parts (read and written under
    one write lock: the serving process and the sidecar each write theirs; on PostgreSQL
    the row is locked with ``FOR UPDATE``, SQLite's BEGIN IMMEDIATE locks the file)."""
    lock = " FOR UPDATE" if dialect.name == "postgresql" else ""
    conn.execute(dialect.begin)
    try:
        row = dialect.execute(
            conn, f"SELECT counters_json FROM runs WHERE id = ?{lock}", (run_id,)
        ).fetchone()
        if row is not None:
            merged = {**_object(row[0]), part: counters}
            dialect.execute(
                conn, "UPDATE runs SET counters_json = ? WHERE id = ?", (_dumps(merged), run_id)
            )
        conn.execute("COMMIT")
    except BaseException:
        dialect.rollback(conn)
        raise


def read_runs(conn: Any, dialect: Dialect, run_id: int | None = None) -> tuple[RunRecord, ...]:
    """Every run (or the one ``run_id``), oldest first, with its pair and load-run counts."""
    sql = (
        "SELECT r.id, r.started_at, r.ended_at, r.mode, r.primary_role, r.versions_json, "
        "r.configs_json, r.counters_json, "
        "(SELECT count(*) FROM pairs p WHERE p.run_id = r.id), "
        "(SELECT count(*) FROM load_runs l WHERE l.run_id = r.id) FROM runs r"
    )
    args: list[Any] = []
    if run_id is not None:
        sql += " WHERE r.id = ?"
        args.append(run_id)
    rows = dialect.execute(conn, sql + " ORDER BY r.id", args).fetchall()
    return tuple(
        RunRecord(
            id=int(row[0]),
            started_at=float(row[1]),
            ended_at=row[2],
            mode=str(row[3]),
            primary_role=row[4],
            versions=_object(row[5]),
            configs=_object(row[6]),
            counters=_object(row[7]),
            pairs=int(row[8]),
            load_runs=int(row[9]),
        )
        for row in rows
    )
