"""The capture store: redacted pairs in SQLite (WAL mode) or a team's PostgreSQL database,
written off the caller's thread.

``CaptureStore.put`` redacts a pair (:mod:`harness.redaction`) and hands it to the
:class:`~harness.store.writer.BatchWriter`, which never blocks or raises into the caller
and writes in batches. The schema and its migrations live in :mod:`harness.store.schema`.

Readers (``count``, ``id_range``, ``iter_rows``, ``iter_pairs``, ``find_row``, ``export_jsonl``,
``load_runs``, ``process_samples``) open their own connections, so they run while the
writer writes; every SQL statement of the harness is in this package. A row that does
not read back as a pair (not JSON, a field of the wrong type:
:class:`~harness.store.pair_json.MalformedPair`) never stops a reader: ``iter_rows``
yields an :class:`UnreadableRow` for it, with its id and why, and ``iter_pairs`` passes
over it. Load runs and process samples come from offline tools and are written
synchronously.

Each pair row records its ``instance``: the proxy that captured it (``capture.instance``,
by default the host name), so one PostgreSQL store can take a whole team's proxies and
the report can tell them apart. The back end is behind :mod:`harness.store.dialect`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.observation import CapturedPair
from harness.redaction import Redactor
from harness.store.dialect import Dialect, PostgresDialect, SqliteDialect, open_dialect, safe_url
from harness.store.pair_json import MalformedPair, loads, pair_from_dict, pair_to_dict
from harness.store.runs import RunRecord, Scope, end_run, merge_counters, open_run, read_runs
from harness.store.schema import PAIR_COLUMNS, RUNS_VERSION, migrate, schema_version
from harness.store.writer import BatchWriter, Row, StoreHealth

__all__ = [
    "DEFAULT_PATH",
    "CaptureStore",
    "LoadRun",
    "ProcessSample",
    "RunRecord",
    "Scope",
    "StoreHealth",
    "StoredPair",
    "UnreadableRow",
    "archive_store",
]

DEFAULT_PATH = Path("reports/shadow.db")
_INSERT_PAIR = (
    f"INSERT INTO pairs ({', '.join(PAIR_COLUMNS)}) VALUES ({', '.join('?' for _ in PAIR_COLUMNS)})"
)
_SELECT_PAIR = (
    "SELECT id, request_json, primary_json, shadow_json, shadow_repeat_json, upstream_json, "
    "mirror_outcome, upstream_mode, twin_json, instance FROM pairs"
)


@dataclass(frozen=True)
class StoredPair:
    """A pair read back, with its row id and the proxy instance that captured it."""

    id: int
    pair: CapturedPair
    instance: str | None = None


@dataclass(frozen=True)
class UnreadableRow:
    """A ``pairs`` row that does not read back as a pair: its id and why, never its content."""

    id: int
    reason: str


@dataclass(frozen=True)
class ProcessSample:
    """One resource sample of a target process during a load run."""

    target: str
    t: float  # seconds since the run started
    rss_bytes: int | None
    cpu_seconds: float | None
    requests: int | None = None  # requests the target had served by then, if known


@dataclass(frozen=True)
class LoadRun:
    """A ``load_runs`` row as written by the load driver (JSON columns parsed)."""

    id: int
    name: str
    target: str | None
    started_at: float | None
    finished_at: float | None
    params: dict[str, Any]
    results: dict[str, Any]
    run_id: int | None = None  # the shadow run it was measured in (None: legacy run)


class CaptureStore:
    """Where captured pairs go. ``put`` never blocks or raises; ``close`` loses nothing.

    Every pair is redacted before it is queued. ``path`` may be a ``file:`` URI (e.g.
    ``file:shadow.db?mode=ro``), a ``postgresql://`` URL or ``os.environ/VAR`` naming
    either. Rows still unwritable at ``close`` (or pushed out of the bounded spill) go to
    ``spill_path``, by default ``<database>.spill.jsonl`` (for PostgreSQL
    ``reports/<dbname>.spill.jsonl``); ``spill=False`` disables the file.

    A SQLite file that cannot be opened is the writer's failure (counted, retried). A
    PostgreSQL store that cannot be reached at all (bad URL, refused login, no server)
    raises :class:`~harness.store.dialect.StoreUnavailable` here, naming ``setting``:
    a team's proxy must not run for a week writing only to its spill file.
    ``run_id``: the run every pair put here belongs to (:mod:`harness.store.runs`); None
    for pairs of no run.
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_PATH,
        *,
        redactor: Redactor | None = None,
        queue_size: int = 10_000,
        batch_size: int = 256,
        spill_limit: int = 10_000,
        spill: bool = True,
        spill_path: str | Path | None = None,
        busy_timeout_s: float = 5.0,
        run_id: int | None = None,
        instance: str | None = None,
        setting: str = "capture.store",
    ) -> None:
        self._dialect: Dialect = open_dialect(path, setting, busy_timeout_s=busy_timeout_s)
        self.instance = instance or socket.gethostname()
        self.run_id = run_id
        if isinstance(self._dialect, PostgresDialect):
            self.path = self._dialect.url
            if spill_path is None:
                spill_path = DEFAULT_PATH.parent / f"{self._dialect.database}.spill.jsonl"
        else:
            assert isinstance(self._dialect, SqliteDialect)
            self.path = self._dialect.path
            if spill_path is None:
                file = self._dialect.file
                spill_path = file.with_name(file.name + ".spill.jsonl")
        self._redactor = redactor or Redactor()
        self._writer = BatchWriter(
            connect=self._open_for_writing,
            insert_sql=_INSERT_PAIR,
            to_row=self._row,
            columns=PAIR_COLUMNS,
            queue_size=queue_size,
            batch_size=batch_size,
            spill_limit=spill_limit,
            spill_path=Path(spill_path) if spill else None,
            dialect=self._dialect,
        )

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._dialect.name

    @property
    def display_name(self) -> str:
        """Where the store is, safe to print (a URL's password left out)."""
        return safe_url(self.path) if self.backend == "postgresql" else self.path

    @property
    def spill_path(self) -> Path | None:
        return self._writer.spill_path

    def put(self, pair: CapturedPair) -> bool:
        """Redact and enqueue; False (counted in ``dropped``) when the pair was refused."""
        try:
            redacted = self._redactor.redact_pair(pair)
        except Exception as exc:  # a redaction bug must not reach the request path
            self._writer.refuse(f"redaction: {type(exc).__name__}: {exc}")
            return False
        return self._writer.submit(redacted)

    @property
    def dropped(self) -> int:
        return self._writer.dropped

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every pair accepted so far is written or spilled; False on timeout."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Stop accepting, write what was accepted, keep unwritable rows in the file."""
        self._writer.close()

    def health(self) -> StoreHealth:
        return self._writer.health()

    def __enter__(self) -> CaptureStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _row(self, pair: CapturedPair) -> Row:
        return (*_row(pair), self.run_id, self.instance)

    def _open_for_writing(self) -> Any:
        dialect = self._dialect
        if isinstance(dialect, SqliteDialect):
            if not dialect.uri:
                dialect.file.parent.mkdir(parents=True, exist_ok=True)
            conn = dialect.connect(check_same_thread=False)
        else:
            conn = dialect.connect()
        try:
            if isinstance(dialect, SqliteDialect):
                conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a crash may lose the last commits but never corrupts the file.
                conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, dialect)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect(self) -> Any:
        return self._dialect.connect()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with closing(self._connect()) as conn:
            return list(self._dialect.execute(conn, sql, tuple(args)).fetchall())

    # -- reading -------------------------------------------------------------------

    def schema_version(self) -> int:
        with closing(self._connect()) as conn:
            return schema_version(conn, self._dialect)

    def journal_mode(self) -> str:
        """SQLite's journal mode (``wal``); PostgreSQL has its own write-ahead log."""
        if self.backend != "sqlite":
            return "postgresql"
        return str(self._query("PRAGMA journal_mode")[0][0])

    def count(self, scope: Scope | None = None) -> int:
        where, args = (scope or Scope()).where("received_at")
        return int(self._query(f"SELECT count(*) FROM pairs WHERE 1 = 1{where}", args)[0][0])

    def id_range(self, scope: Scope | None = None) -> tuple[int, int] | None:
        """The lowest and highest ``pairs`` row id in ``scope``; None when there is no row."""
        where, args = (scope or Scope()).where("received_at")
        [(low, high)] = self._query(f"SELECT min(id), max(id) FROM pairs WHERE 1 = 1{where}", args)
        return None if low is None else (int(low), int(high))

    def instances(self) -> list[str]:
        """Every proxy instance that wrote a pair (rows from before instances: none)."""
        rows = self._query(
            "SELECT DISTINCT instance FROM pairs WHERE instance IS NOT NULL ORDER BY instance"
        )
        return [str(row[0]) for row in rows]

    def iter_rows(
        self,
        *,
        endpoint: str | None = None,
        after_id: int = 0,
        until_id: int | None = None,
        limit: int | None = None,
        scope: Scope | None = None,
    ) -> Iterator[StoredPair | UnreadableRow]:
        """Rows in insertion order with ``after_id < id <= until_id``, optionally one
        endpoint's, in ``scope`` (default: all): each one's pair, or why it could not be
        read (one bad row never stops the rest). Streamed: rows are fetched a batch at a
        time."""
        where, args = (scope or Scope()).where("received_at")
        sql = f"{_SELECT_PAIR} WHERE id > ?{where}"
        args.insert(0, after_id)
        if until_id is not None:
            sql += " AND id <= ?"
            args.append(until_id)
        if endpoint is not None:
            sql += " AND endpoint = ?"
            args.append(endpoint)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        conn = self._connect()
        if isinstance(conn, sqlite3.Connection):
            # Bytes, decoded here: SQLite's own decoding raises on a column that is not
            # UTF-8, which would end the whole query (and its message quotes the text).
            # PostgreSQL refuses text that is not UTF-8 at the door.
            conn.text_factory = bytes
        try:
            for row in self._dialect.stream(conn, sql, args):
                yield _read_row(row)
        finally:
            conn.close()

    def iter_pairs(
        self,
        *,
        endpoint: str | None = None,
        after_id: int = 0,
        limit: int | None = None,
        scope: Scope | None = None,
    ) -> Iterator[StoredPair]:
        """The readable pairs of :meth:`iter_rows` (an unreadable row is passed over)."""
        rows = self.iter_rows(endpoint=endpoint, after_id=after_id, limit=limit, scope=scope)
        for row in rows:
            if isinstance(row, StoredPair):
                yield row

    def find_row(self, request_id: str) -> StoredPair | UnreadableRow | None:
        """The row of the pair with this request id (the report's pair id), or None."""
        conn = self._connect()
        if isinstance(conn, sqlite3.Connection):
            conn.text_factory = bytes  # decoded in _read_row (see iter_rows)
        try:
            row = self._dialect.execute(
                conn, f"{_SELECT_PAIR} WHERE request_id = ? ORDER BY id LIMIT 1", (request_id,)
            ).fetchone()
        finally:
            conn.close()
        return None if row is None else _read_row(row)

    def export_jsonl(self, path: str | Path) -> int:
        """Write every pair as one JSON object per line (``id`` plus the pair); the count."""
        count = 0
        with Path(path).open("w", encoding="utf-8") as out:
            for stored in self.iter_pairs():
                line = {"id": stored.id, **pair_to_dict(stored.pair)}
                out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                count += 1
        return count

    # -- offline results -------------------------------------------------------------

    def set_upstream(self, upstream: dict[int, dict[str, list[dict[str, Any]]]]) -> int:
        """Record, per pair id, what each target sent upstream (already redacted)."""
        rows = [(_dumps(calls), pair_id) for pair_id, calls in upstream.items()]
        self._write_now("UPDATE pairs SET upstream_json = ? WHERE id = ?", rows)
        return len(rows)

    def add_unattached(self, target: str, calls: Iterable[dict[str, Any]]) -> int:
        """Keep provider calls of ``target`` that no client request claimed (redacted
        here, as pairs are)."""
        rows = [
            (
                target,
                _number_or_none(call.get("time")),
                _dumps(self._redactor.redact_upstream(call)),
            )
            for call in calls
        ]
        if rows:
            self._write_now(
                "INSERT INTO unattached_calls (target, time, call_json) VALUES (?, ?, ?)", rows
            )
        return len(rows)

    def unattached(self) -> list[tuple[str, dict[str, Any]]]:
        """Every kept unattached call, oldest first: ``(target, call)``; none when the
        table cannot be read (a store written before it existed, opened read-only)."""
        try:
            rows = self._query("SELECT target, call_json FROM unattached_calls ORDER BY time, id")
        except Exception:  # sqlite3.Error, psycopg.Error: a table that cannot be read
            return []
        return [(str(row[0]), _json_object(row[1])) for row in rows]

    def add_load_run(
        self,
        name: str,
        *,
        target: str | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        params: dict[str, Any] | None = None,
        results: dict[str, Any] | None = None,
        run_id: int | None = None,
    ) -> int:
        """Store a load run, in the shadow run ``run_id`` (None: of no run)."""
        with closing(self._open_for_writing()) as conn:
            return self._dialect.insert_id(
                conn,
                "INSERT INTO load_runs (name, target, started_at, finished_at, params_json, "
                "results_json, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    target,
                    time.time() if started_at is None else started_at,
                    finished_at,
                    _dumps(params or {}),
                    _dumps(results or {}),
                    run_id,
                ),
            )

    def add_process_samples(self, run_id: int, samples: Iterable[ProcessSample]) -> int:
        rows = [(run_id, s.target, s.t, s.rss_bytes, s.cpu_seconds, s.requests) for s in samples]
        self._write_now(
            "INSERT INTO process_samples (run_id, target, t, rss_bytes, cpu_seconds, requests) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    def load_runs(self, scope: Scope | None = None) -> tuple[LoadRun, ...]:
        """The ``load_runs`` rows in ``scope`` (default: all), oldest first; a JSON column
        that does not parse as an object reads as ``{}`` (none at all when the table cannot
        be read)."""
        where, args = (scope or Scope()).where("started_at", has_instance=False)
        try:
            rows = self._query(
                "SELECT id, name, target, started_at, finished_at, params_json, "
                f"results_json, run_id FROM load_runs WHERE 1 = 1{where} ORDER BY id",
                args,
            )
        except Exception:  # sqlite3.Error, psycopg.Error: a table that cannot be read
            return ()
        return tuple(
            LoadRun(
                id=int(row[0]),
                name=str(row[1]),
                target=row[2],
                started_at=row[3],
                finished_at=row[4],
                params=_json_object(row[5]),
                results=_json_object(row[6]),
                run_id=row[7],
            )
            for row in rows
        )

    def process_samples(self, run_id: int) -> list[ProcessSample]:
        rows = self._query(
            "SELECT target, t, rss_bytes, cpu_seconds, requests FROM process_samples "
            "WHERE run_id = ? ORDER BY target, t",
            (run_id,),
        )
        return [ProcessSample(*row) for row in rows]

    # -- runs ------------------------------------------------------------------------

    def open_run(
        self,
        *,
        mode: str,
        primary_role: str | None,
        versions: dict[str, Any],
        configs: dict[str, Any],
        started_at: float | None = None,
    ) -> int:
        """Open a run (:mod:`harness.store.runs`); its id."""
        with closing(self._open_for_writing()) as conn:
            return open_run(
                conn,
                self._dialect,
                started_at=time.time() if started_at is None else started_at,
                mode=mode,
                primary_role=primary_role,
                versions=versions,
                configs=configs,
            )

    def end_run(self, run_id: int, ended_at: float | None = None) -> None:
        with closing(self._open_for_writing()) as conn:
            end_run(conn, self._dialect, run_id, time.time() if ended_at is None else ended_at)

    def record_run_counters(self, run_id: int, part: str, counters: dict[str, Any]) -> None:
        """Set the run's ``part`` counters (``tap`` or ``mirror``), keeping the other's."""
        with closing(self._open_for_writing()) as conn:
            merge_counters(conn, self._dialect, run_id, part, counters)

    def runs(self) -> tuple[RunRecord, ...]:
        """Every run, oldest first (none in a store written before runs existed)."""
        with closing(self._connect()) as conn:
            if schema_version(conn, self._dialect) < RUNS_VERSION:
                return ()
            return read_runs(conn, self._dialect)

    def run(self, run_id: int) -> RunRecord | None:
        with closing(self._connect()) as conn:
            if schema_version(conn, self._dialect) < RUNS_VERSION:
                return None
            found = read_runs(conn, self._dialect, run_id)
        return found[0] if found else None

    def latest_run(self) -> RunRecord | None:
        """The run opened last, if any."""
        runs = self.runs()
        return runs[-1] if runs else None

    def legacy_pairs(self) -> int:
        """Pairs of no run (written before runs existed, or by a tool outside one)."""
        with closing(self._connect()) as conn:
            sql = "SELECT count(*) FROM pairs"
            if schema_version(conn, self._dialect) >= RUNS_VERSION:
                sql += " WHERE run_id IS NULL"
            return int(self._dialect.execute(conn, sql).fetchone()[0])

    def _write_now(self, sql: str, rows: list[Row]) -> None:
        with closing(self._connect()) as conn:
            self._dialect.write(conn, sql, rows)


def archive_store(path: str | Path, now: float | None = None) -> Path:
    """Move the store at ``path`` aside (kept, never deleted): ``shadow.db`` becomes
    ``shadow-archived-<UTC time>.db``, its WAL checkpointed into it first; the next
    writer starts an empty one. The archive's path."""
    path = Path(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        # Fold the write-ahead log into the file, so the archive is one file.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    archive = path.with_name(f"{path.stem}-archived-{stamp:%Y%m%dT%H%M%SZ}{path.suffix}")
    if archive.exists():
        raise FileExistsError(f"{archive} exists already")
    os.replace(path, archive)
    for suffix in ("-wal", "-shm", ".spill.jsonl"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, archive.with_name(archive.name + suffix))
    return archive


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _row(pair: CapturedPair) -> Row:
    """A pairs row's columns up to ``twin_json`` (the store adds run and instance)."""
    request = pair.request
    data = pair_to_dict(pair)
    return (
        request.request_id,
        request.received_at,
        request.endpoint,
        request.model,
        int(request.stream),
        request.user_id,
        request.client_family,
        pair.mirror_outcome,
        pair.primary.status,
        pair.shadow.status if pair.shadow is not None else None,
        _dumps(data["request"]),
        _dumps(data["primary"]),
        _dumps(data["shadow"]) if pair.shadow is not None else None,
        _dumps(data["shadow_repeat"]) if pair.shadow_repeat is not None else None,
        _dumps(data["upstream"]),
        pair.upstream_mode,
        _dumps(data["latency_twin"]) if pair.latency_twin is not None else None,
    )


def _read_row(row: Row) -> StoredPair | UnreadableRow:
    """A selected row as its pair, or as the reason it is none (the one place it is caught)."""
    row_id = int(row[0])
    try:
        instance = _text("instance", row[9])
        return StoredPair(row_id, _pair_from_row(row[:9]), instance)
    except MalformedPair as exc:
        return UnreadableRow(row_id, str(exc))


def _pair_from_row(row: Row) -> CapturedPair:
    _, request, primary, shadow, repeat, upstream, outcome, mode, twin = row
    outcome, mode = _text("mirror_outcome", outcome), _text("upstream_mode", mode)
    return pair_from_dict(
        {
            "request": loads("request_json", request),
            "primary": loads("primary_json", primary),
            "shadow": loads("shadow_json", shadow) if shadow is not None else None,
            "shadow_repeat": loads("shadow_repeat_json", repeat) if repeat is not None else None,
            "upstream": loads("upstream_json", upstream),
            "mirror_outcome": outcome,
            "upstream_mode": mode,
            "latency_twin": loads("twin_json", twin) if twin is not None else None,
        }
    )


def _text(column: str, value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPair(f"{column}: not UTF-8") from None
    return value
