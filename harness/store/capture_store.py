"""The capture store: redacted pairs in SQLite (WAL mode) or a team's PostgreSQL database,
written off the caller's thread.

``CaptureStore.put`` redacts a pair (:mod:`harness.redaction`) and hands it to the
:class:`~harness.store.writer.BatchWriter`, which never blocks or raises into the caller
and writes in batches. The schema and its migrations live in :mod:`harness.store.schema`.

Readers (``count``, ``id_range``, ``iter_rows``, ``iter_pairs``, ``export_jsonl``,
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
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.observation import CapturedPair
from harness.redaction import Redactor
from harness.store.dialect import Dialect, PostgresDialect, SqliteDialect, open_dialect, safe_url
from harness.store.pair_json import MalformedPair, loads, pair_from_dict, pair_to_dict
from harness.store.schema import PAIR_COLUMNS, migrate, schema_version
from harness.store.writer import BatchWriter, Row, StoreHealth

__all__ = [
    "DEFAULT_PATH",
    "CaptureStore",
    "LoadRun",
    "PairFilter",
    "ProcessSample",
    "StoreHealth",
    "StoredPair",
    "UnreadableRow",
]

DEFAULT_PATH = Path("reports/shadow.db")
_INSERT_PAIR = (
    f"INSERT INTO pairs ({', '.join(PAIR_COLUMNS)}) VALUES ({', '.join('?' for _ in PAIR_COLUMNS)})"
)
_SELECT_PAIR = (
    "SELECT id, request_json, primary_json, shadow_json, shadow_repeat_json, upstream_json, "
    "mirror_outcome, upstream_mode, instance FROM pairs"
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
class PairFilter:
    """Which pairs a reader wants: one proxy instance's, those received since a time."""

    instance: str | None = None
    since: float | None = None  # epoch seconds

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if self.instance is not None:
            clauses.append("instance = ?")
            args.append(self.instance)
        if self.since is not None:
            clauses.append("received_at >= ?")
            args.append(self.since)
        return "".join(f" AND {c}" for c in clauses), args


@dataclass(frozen=True)
class ProcessSample:
    """One resource sample of a target process during a load run."""

    target: str
    t: float  # seconds since the run started
    rss_bytes: int | None
    cpu_seconds: float | None


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
        instance: str | None = None,
        setting: str = "capture.store",
    ) -> None:
        self._dialect: Dialect = open_dialect(path, setting, busy_timeout_s=busy_timeout_s)
        self.instance = instance or socket.gethostname()
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
            to_row=_row,
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
        return self._writer.submit((redacted, self.instance))

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

    def count(self, where: PairFilter | None = None) -> int:
        clause, args = (where or PairFilter()).where()
        return int(self._query(f"SELECT count(*) FROM pairs WHERE 1 = 1{clause}", args)[0][0])

    def id_range(self, where: PairFilter | None = None) -> tuple[int, int] | None:
        """The lowest and highest ``pairs`` row id; None when there is no row."""
        clause, args = (where or PairFilter()).where()
        [(low, high)] = self._query(f"SELECT min(id), max(id) FROM pairs WHERE 1 = 1{clause}", args)
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
        where: PairFilter | None = None,
    ) -> Iterator[StoredPair | UnreadableRow]:
        """Rows in insertion order with ``after_id < id <= until_id``, optionally one
        endpoint's: each one's pair, or why it could not be read (one bad row never stops
        the rest). Streamed: rows are fetched a batch at a time."""
        clause, args = (where or PairFilter()).where()
        sql = f"{_SELECT_PAIR} WHERE id > ?{clause}"
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
        where: PairFilter | None = None,
    ) -> Iterator[StoredPair]:
        """The readable pairs of :meth:`iter_rows` (an unreadable row is passed over)."""
        rows = self.iter_rows(endpoint=endpoint, after_id=after_id, limit=limit, where=where)
        for row in rows:
            if isinstance(row, StoredPair):
                yield row

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

    def add_load_run(
        self,
        name: str,
        *,
        target: str | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        params: dict[str, Any] | None = None,
        results: dict[str, Any] | None = None,
    ) -> int:
        with closing(self._connect()) as conn:
            return self._dialect.insert_id(
                conn,
                "INSERT INTO load_runs (name, target, started_at, finished_at, params_json, "
                "results_json) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    name,
                    target,
                    time.time() if started_at is None else started_at,
                    finished_at,
                    _dumps(params or {}),
                    _dumps(results or {}),
                ),
            )

    def add_process_samples(self, run_id: int, samples: Iterable[ProcessSample]) -> int:
        rows = [(run_id, s.target, s.t, s.rss_bytes, s.cpu_seconds) for s in samples]
        self._write_now(
            "INSERT INTO process_samples (run_id, target, t, rss_bytes, cpu_seconds) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    def load_runs(self) -> tuple[LoadRun, ...]:
        """Every ``load_runs`` row, oldest first; a JSON column that does not parse as an
        object reads as ``{}`` (none at all when the table cannot be read)."""
        try:
            rows = self._query(
                "SELECT id, name, target, started_at, finished_at, params_json, "
                "results_json FROM load_runs ORDER BY id"
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
            )
            for row in rows
        )

    def process_samples(self, run_id: int) -> list[ProcessSample]:
        rows = self._query(
            "SELECT target, t, rss_bytes, cpu_seconds FROM process_samples "
            "WHERE run_id = ? ORDER BY target, t",
            (run_id,),
        )
        return [ProcessSample(*row) for row in rows]

    def _write_now(self, sql: str, rows: list[Row]) -> None:
        with closing(self._connect()) as conn:
            self._dialect.write(conn, sql, rows)


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _row(item: tuple[CapturedPair, str]) -> Row:
    pair, instance = item
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
        instance,
    )


def _read_row(row: Row) -> StoredPair | UnreadableRow:
    """A selected row as its pair, or as the reason it is none (the one place it is caught)."""
    row_id = int(row[0])
    try:
        instance = _text("instance", row[8])
        return StoredPair(row_id, _pair_from_row(row[:8]), instance)
    except MalformedPair as exc:
        return UnreadableRow(row_id, str(exc))


def _pair_from_row(row: Row) -> CapturedPair:
    _, request, primary, shadow, repeat, upstream, outcome, mode = row
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
        }
    )


def _text(column: str, value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedPair(f"{column}: not UTF-8") from None
    return value
