"""Where the store's SQL meets a database: SQLite (one machine) or PostgreSQL (a team).

The store's statements are written once, in SQLite's spelling (``?`` placeholders,
``INTEGER``/``REAL`` columns). A :class:`Dialect` is the one seam between them and a
back end: it opens connections (autocommit; transactions are explicit), translates a
statement for its database, runs a batch in one transaction and streams a query.
Everything else (schema, migrations, the writer, the readers) is shared.

``capture.store`` picks the dialect: a ``postgresql://`` (or ``postgres://``) URL is a
PostgreSQL store, anything else a SQLite file. ``os.environ/VAR`` takes the value from
the environment, as the proxy config does, so a password stays out of ``harness.yaml``.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

__all__ = [
    "Dialect",
    "PostgresDialect",
    "SqliteDialect",
    "StoreUnavailable",
    "describe_store",
    "files_dir",
    "is_postgres_url",
    "open_dialect",
    "resolve_store",
    "safe_url",
    "store_exists",
]

ENV_PREFIX = "os.environ/"
_SCHEMES = ("postgresql://", "postgres://")
# Any constant will do: it only has to be the same in every harness that migrates.
_MIGRATION_LOCK = 0x6861726E  # "harn"


class StoreUnavailable(HarnessError, RuntimeError):
    """The configured store cannot be used at all (bad URL, refused login, no server)."""


def is_postgres_url(value: str | Path) -> bool:
    return isinstance(value, str) and value.startswith(_SCHEMES)


def resolve_store(value: str | Path, setting: str = "capture.store") -> str | Path:
    """The store's location: an ``os.environ/VAR`` reference resolved, a PostgreSQL URL
    kept as text, anything else a path."""
    text = str(value)
    if text.startswith(ENV_PREFIX):
        name = text.removeprefix(ENV_PREFIX)
        resolved = os.environ.get(name)
        if not resolved:
            raise StoreUnavailable(f"{setting}: environment variable {name} is not set")
        text = resolved
    if is_postgres_url(text):
        return text
    return value if isinstance(value, Path) and text == str(value) else Path(text)


def store_exists(value: str | Path, setting: str = "capture.store") -> bool:
    """Whether there is a store to read: a PostgreSQL URL always (the server says
    otherwise when it is reached), a SQLite store when its file exists."""
    location = resolve_store(value, setting)
    return is_postgres_url(location) or Path(location).is_file()


def safe_url(url: str) -> str:
    """The URL without its password (for messages, reports and logs)."""
    return re.sub(r"^(postgres(?:ql)?://[^:@/]*):[^@/]*@", r"\1:***@", url)


def describe_store(value: str | Path) -> str:
    """The setting as it may be printed: a URL's password left out (an ``os.environ/``
    reference is printed as written: it names the variable, not its value)."""
    text = str(value)
    return safe_url(text) if is_postgres_url(text) else text


def files_dir(value: str | Path) -> Path:
    """Where files that go beside the store go: its folder, or ``reports/`` for a store
    that is not a file."""
    text = str(value)
    if is_postgres_url(text) or text.startswith(ENV_PREFIX):
        return Path("reports")
    return Path(text.removeprefix("file:").split("?", 1)[0]).parent


def open_dialect(
    value: str | Path, setting: str = "capture.store", *, busy_timeout_s: float = 5.0
) -> Dialect:
    """The dialect of the store ``value`` names. A PostgreSQL store is reached once here:
    a bad URL, a refused login or no server raises :class:`StoreUnavailable`, one line
    naming ``setting``. (A SQLite file that cannot be opened is the writer's failure,
    counted and retried, as before.)"""
    location = resolve_store(value, setting)
    if not is_postgres_url(location):
        return SqliteDialect(location, busy_timeout_s=busy_timeout_s)
    try:
        dialect = PostgresDialect(str(location))
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"{setting}: {exc}") from None
    dialect.check_reachable(setting)
    return dialect


class Dialect:
    """One back end's side of the store's SQL (see the module docstring)."""

    name = ""
    begin = "BEGIN"

    def connect(self) -> Any:
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        return statement

    def ddl(self, statement: str) -> str:
        return statement

    def table_exists(self, conn: Any, table: str) -> bool:
        raise NotImplementedError

    def lock_for_migration(self, conn: Any) -> None:
        """Called inside the migration's transaction: one harness migrates at a time."""

    def execute(self, conn: Any, statement: str, args: Sequence[Any] = ()) -> Any:
        return conn.execute(self.sql(statement), tuple(args))

    def executemany(self, conn: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(self.sql(statement), rows)

    def write(self, conn: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """``rows`` in one transaction: all of them or none."""
        conn.execute(self.begin)
        try:
            self.executemany(conn, statement, rows)
            conn.execute("COMMIT")
        except BaseException:
            self.rollback(conn)
            raise

    def insert_id(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        raise NotImplementedError

    def stream(self, conn: Any, statement: str, args: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """The query's rows, fetched a batch at a time (never the whole result at once)."""
        yield from self.execute(conn, statement, args)

    def in_transaction(self, conn: Any) -> bool:
        raise NotImplementedError

    def rollback(self, conn: Any) -> None:
        if self.in_transaction(conn):
            conn.execute("ROLLBACK")


class SqliteDialect(Dialect):
    """A SQLite file (WAL); ``path`` may be a ``file:`` URI (e.g. ``?mode=ro``)."""

    name = "sqlite"
    # Take the write lock at BEGIN: a deferred transaction could fail half-way instead.
    begin = "BEGIN IMMEDIATE"

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = str(path)
        self.uri = self.path.startswith("file:")
        self.file = Path(self.path.removeprefix("file:").split("?", 1)[0])
        self.busy_timeout_s = busy_timeout_s

    def connect(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        return sqlite3.connect(
            self.path,
            uri=self.uri,
            isolation_level=None,
            timeout=self.busy_timeout_s,
            check_same_thread=check_same_thread,
        )

    def table_exists(self, conn: Any, table: str) -> bool:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return found is not None

    def insert_id(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        return int(conn.execute(statement, tuple(args)).lastrowid or 0)

    def in_transaction(self, conn: Any) -> bool:
        return bool(conn.in_transaction)


class PostgresDialect(Dialect):
    """A PostgreSQL database by URL, shared by many proxies (psycopg 3, autocommit)."""

    name = "postgresql"

    def __init__(self, url: str, *, connect_timeout_s: int = 5) -> None:
        import psycopg.conninfo

        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise StoreUnavailable(f"not a PostgreSQL URL ({_first_line(exc)})") from None
        self.url = url
        self.database = str(params.get("dbname") or params.get("user") or "postgres")
        self.connect_timeout_s = connect_timeout_s

    def check_reachable(self, setting: str) -> None:
        import psycopg

        try:
            conn = self.connect()
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines()
            reason = (lines[-1] if lines else type(exc).__name__).removeprefix("FATAL:").strip()
            raise StoreUnavailable(
                f"{setting}: cannot open the PostgreSQL store {safe_url(self.url)}: {reason}"
            ) from None
        conn.close()

    def connect(self) -> Any:
        import psycopg

        # A server that does not answer must not hold the writer thread (or the start):
        # a connect timeout, and TCP keepalives plus a send timeout so that a peer gone
        # silent mid-batch (a network cut, not a clean restart) fails the batch, which is
        # then spilled and retried, instead of hanging it.
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=self.connect_timeout_s,
            application_name="memory-proxy-harness",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=30_000,  # ms
        )

    def sql(self, statement: str) -> str:
        # psycopg's placeholders are %s, and a literal % must be doubled.
        return statement.replace("%", "%%").replace("?", "%s")

    def ddl(self, statement: str) -> str:
        statement = re.sub(
            r"\bINTEGER PRIMARY KEY\b",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            statement,
        )
        # SQLite's INTEGER is 64-bit (rss_bytes needs it); its REAL is a double.
        statement = re.sub(r"\bINTEGER\b", "BIGINT", statement)
        return re.sub(r"\bREAL\b", "DOUBLE PRECISION", statement)

    def table_exists(self, conn: Any, table: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return row is not None and row[0] is not None

    def lock_for_migration(self, conn: Any) -> None:
        # Released at COMMIT/ROLLBACK: four proxies starting at once migrate one by one.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))

    def executemany(self, conn: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        # psycopg 3 pipelines executemany: one round trip per batch, not per row.
        with conn.cursor() as cursor:
            cursor.executemany(self.sql(statement), rows)

    def insert_id(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        row = conn.execute(self.sql(statement + " RETURNING id"), tuple(args)).fetchone()
        return int(row[0])

    def stream(self, conn: Any, statement: str, args: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor (it needs a transaction): the result stays on the server
        # and comes over in batches, so a report over millions of rows runs in bounded
        # memory.
        with conn.transaction(), conn.cursor(name="harness_stream") as cursor:
            cursor.itersize = 2000
            cursor.execute(self.sql(statement), tuple(args))
            yield from cursor

    def in_transaction(self, conn: Any) -> bool:
        from psycopg import pq

        return bool(conn.info.transaction_status != pq.TransactionStatus.IDLE)

    def rollback(self, conn: Any) -> None:
        if not conn.closed and self.in_transaction(conn):
            conn.execute("ROLLBACK")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
