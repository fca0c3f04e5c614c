"""The store's writer: a daemon thread draining a bounded queue into the database in batches.

::

    submit(item) --> bounded queue --thread--> to_row --> executemany, one transaction
      | full or closed: dropped (counted)        |  failure: counted, rows kept in a bounded
      v                                          v  spill and retried with the next batch;
    returns at once, never raises                   overflow and leftovers -> JSONL file

``flush`` waits until every item accepted so far is written or spilled; ``close`` also
writes the spill one last time and appends whatever is still unwritable to the file.
A database that is away (a full disk, a PostgreSQL server restarting, a dropped
connection) costs nothing but the retry: the next batch opens a fresh connection and
writes the spill first.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store.dialect import Dialect, SqliteDialect

__all__ = ["BatchWriter", "Row", "StoreHealth"]

Row = tuple[Any, ...]
_STOP = object()


@dataclass(frozen=True)
class StoreHealth:
    """The writer's counters; ``ok`` is False once a write failed or a row was lost."""

    accepted: int
    written: int
    dropped: int  # refused at the door: queue full, store closed, or not storable
    batches: int  # committed transactions
    failed_writes: int  # failed transactions (and failed attempts to open the database)
    last_error: str | None
    spilled: int  # rows held in memory for a retry
    spill_file_rows: int  # rows appended to the JSONL fallback file
    lost: int  # rows neither written nor in the fallback file
    queue_depth: int

    @property
    def ok(self) -> bool:
        return self.failed_writes == 0 and self.lost == 0 and self.last_error is None


class BatchWriter:
    """Writes submitted items with ``insert_sql`` from a thread of its own.

    ``connect`` returns a ready connection (autocommit mode, schema migrated) and is
    called again after a failure, so a database that comes back is used again.
    """

    def __init__(
        self,
        *,
        connect: Callable[[], Any],
        insert_sql: str,
        to_row: Callable[[Any], Row],
        columns: Sequence[str],
        queue_size: int = 10_000,
        batch_size: int = 256,
        spill_limit: int = 10_000,
        spill_path: Path | None = None,
        name: str = "capture-store",
        dialect: Dialect | None = None,
    ) -> None:
        self._connect = connect
        self._dialect = dialect or SqliteDialect(":memory:")
        self._insert_sql = insert_sql
        self._to_row = to_row
        self._columns = tuple(columns)
        self._batch_size = batch_size
        self._spill_limit = spill_limit
        self.spill_path = spill_path
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._cond = threading.Condition()
        self._closed = False
        self._accepted = self._processed = self._written = self._dropped = 0
        self._batches = self._failed_writes = self._spill_file_rows = self._lost = 0
        self._last_error: str | None = None
        self._spill: deque[Row] = deque()
        self._conn: Any = None
        self._connection()  # open (and migrate) now; a failure is recorded and retried
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        with self._cond:
            if self._closed:
                self._dropped += 1
                return False
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._dropped += 1
                return False
            self._accepted += 1
        return True

    def refuse(self, error: str) -> None:
        """Count an item the caller could not even prepare (e.g. redaction failed)."""
        with self._cond:
            self._dropped += 1
            self._last_error = error

    @property
    def dropped(self) -> int:
        return self._dropped

    def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._accepted
            while self._processed < target and self._thread.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
            return self._processed >= target

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)  # may wait for room: close is allowed to block
        self._thread.join()

    def health(self) -> StoreHealth:
        with self._cond:
            return StoreHealth(
                accepted=self._accepted,
                written=self._written,
                dropped=self._dropped,
                batches=self._batches,
                failed_writes=self._failed_writes,
                last_error=self._last_error,
                spilled=len(self._spill),
                spill_file_rows=self._spill_file_rows,
                lost=self._lost,
                queue_depth=self._queue.qsize(),
            )

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            items = [item for item in batch if item is not _STOP]
            rows: list[Row] = []
            for item in items:
                try:
                    rows.append(self._to_row(item))
                except Exception as exc:  # one unserializable item, not the whole batch
                    self._record_error(exc, lost=1)
            if rows or (stop and self._spill):
                self._write(rows)
            with self._cond:
                self._processed += len(items)
                self._cond.notify_all()
        self._append_to_file(list(self._spill))
        self._spill.clear()
        if self._conn is not None:
            self._conn.close()  # the last close checkpoints the WAL into the database
            self._conn = None

    def _write(self, rows: list[Row]) -> None:
        pending = [*self._spill, *rows]
        conn = self._connection()
        if conn is None:  # the failure to open is already counted
            self._keep(rows)
            return
        try:
            self._dialect.write(conn, self._insert_sql, pending)
        except Exception as exc:
            self._record_error(exc)
            self._discard(conn)
            self._keep(rows)
            return
        with self._cond:
            self._written += len(pending)
            self._batches += 1
        self._spill.clear()

    def _keep(self, rows: list[Row]) -> None:
        self._spill.extend(rows)
        overflow = max(0, len(self._spill) - self._spill_limit)
        self._append_to_file([self._spill.popleft() for _ in range(overflow)])

    def _append_to_file(self, rows: list[Row]) -> None:
        if not rows:
            return
        try:
            if self.spill_path is None:
                raise OSError("no spill file configured")
            with self.spill_path.open("a", encoding="utf-8") as out:
                for row in rows:
                    line = dict(zip(self._columns, row, strict=True))
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
        except Exception as exc:
            self._record_error(exc, lost=len(rows))
            return
        with self._cond:
            self._spill_file_rows += len(rows)

    def _record_error(self, exc: BaseException, *, lost: int = 0) -> None:
        with self._cond:
            self._last_error = f"{type(exc).__name__}: {exc}"
            if lost:
                self._lost += lost
            else:
                self._failed_writes += 1

    def _connection(self) -> Any:
        if self._conn is None:
            try:
                self._conn = self._connect()
            except Exception as exc:
                self._record_error(exc)
        return self._conn

    def _discard(self, conn: Any) -> None:
        # After a failure the connection may be unusable (I/O error, server gone): open a
        # fresh one for the next batch. It may have rolled back already, hence the check.
        if conn is None:
            return
        try:
            self._dialect.rollback(conn)
        except Exception:  # a broken connection: nothing more to save
            pass
        try:
            conn.close()
        except Exception:  # closing a broken connection: nothing more to save
            pass
        self._conn = None
