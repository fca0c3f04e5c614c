"""The capture store: WAL, schema versions, batched background writes, failures, readers.

The tests that hold for any back end run twice: on a SQLite file and on a database of a
real PostgreSQL server (the ``postgres`` session fixture; skipped, with the reason, where
PostgreSQL is not installed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.compare import CATEGORIES
from harness.observation import CapturedPair
from harness.store.capture_store import CaptureStore, ProcessSample, Scope, StoredPair
from harness.store.pair_json import pair_from_dict
from harness.store.schema import (
    COMPARISON_CATEGORIES,
    MIGRATIONS,
    SCHEMA_VERSION,
    SchemaTooNew,
    migrate,
)
from tests.harness.builders import chat_observation, make_pair, messages_observation


def _pair(i: int = 0, *, stream: bool = False) -> CapturedPair:
    return make_pair(
        chat_observation(stream=stream),
        chat_observation(target="legacy", model="claude-sonnet-4.5", stream=stream),
        stream=stream,
        request_id=f"req-{i}",
        repeat=chat_observation(target="legacy", stream=stream) if i % 2 else None,
        upstream={"sdk": [{"path": "/v1/chat/completions", "body": {"n": i}}], "legacy": []},
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a store goes: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "s.db"
    return str(request.getfixturevalue("postgres_url"))


def _raw(at: str | Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` read past the store (what is really in the database)."""
    if isinstance(at, Path):
        conn = sqlite3.connect(at)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(at) as pg:
        return pg.execute(sql).fetchall()


@contextmanager
def _locked(at: str | Path) -> Iterator[None]:
    """Hold the database's write lock from another connection (a busy writer elsewhere)."""
    if isinstance(at, Path):
        conn = sqlite3.connect(at, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    import psycopg

    with psycopg.connect(at) as pg:  # one transaction, committed on exit
        pg.execute("LOCK TABLE pairs IN EXCLUSIVE MODE")  # blocks inserts, not reads
        yield


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    with CaptureStore(tmp_path / "reports" / "shadow.db") as store:
        assert store.journal_mode() == "wal"
        assert store.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "reports" / "shadow.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "pairs", "comparisons", "load_runs", "process_samples"} <= tables
    conn.close()


def test_migrations_are_idempotent_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    assert migrate(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaTooNew):
        migrate(conn)
    conn.close()


def test_comparison_columns_follow_the_taxonomy() -> None:
    assert COMPARISON_CATEGORIES == CATEGORIES


def test_round_trip_and_slicing_columns(store_at: str | Path) -> None:
    pair = _pair(1, stream=True)
    with CaptureStore(store_at, instance="laptop-7") as store:
        assert store.put(pair)
        assert store.put(make_pair(messages_observation(), None, endpoint="messages"))
    with CaptureStore(store_at) as reopened:
        [first, second] = list(reopened.iter_pairs())
        assert reopened.instances() == ["laptop-7"]
    assert first.pair == pair  # SSE events, repeat and upstream included
    assert first.instance == second.instance == "laptop-7"
    assert second.pair.shadow is None
    [row] = _raw(
        store_at,
        "SELECT request_id, endpoint, model, stream, user_id, client_family, mirror_outcome,"
        " primary_status, shadow_status, instance FROM pairs ORDER BY id LIMIT 1",
    )
    assert row == ("req-1", "chat", "claude-sonnet-4.5", 1, "claude-code", "claude-code",
                   "mirrored", 200, 200, "laptop-7")  # fmt: skip


def test_the_instance_defaults_to_the_host_name(store_at: str | Path) -> None:
    import socket

    with CaptureStore(store_at) as store:
        store.put(_pair())
    with CaptureStore(store_at, spill=False) as store:
        assert [s.instance for s in store.iter_pairs()] == [socket.gethostname()]


def test_rows_are_filtered_by_instance_and_time(store_at: str | Path) -> None:
    for name in ("alice", "bob"):
        with CaptureStore(store_at, instance=name) as store:
            for i in range(3):
                pair = _pair(i)
                request = dataclasses.replace(pair.request, received_at=1000.0 + i)
                store.put(dataclasses.replace(pair, request=request))
    with CaptureStore(store_at, spill=False) as store:
        bob = Scope(instance="bob")
        assert store.count(bob) == 3
        assert {s.instance for s in store.iter_pairs(scope=bob)} == {"bob"}
        recent = Scope(since=1001.0)
        assert store.count(recent) == 4
        ids = [(s.instance, s.pair.request.request_id) for s in store.iter_pairs(scope=recent)]
        assert ids == [("alice", "req-1"), ("alice", "req-2"), ("bob", "req-1"), ("bob", "req-2")]
        assert store.id_range(Scope(instance="bob", since=1002.0)) == (6, 6)
        assert store.instances() == ["alice", "bob"]


def test_put_5000_then_close_loses_nothing(store_at: str | Path) -> None:
    store = CaptureStore(store_at)
    pair = _pair()
    for _ in range(5000):
        assert store.put(pair)
    store.close()
    health = store.health()
    assert (health.accepted, health.written, health.dropped, health.lost) == (5000, 5000, 0, 0)
    assert health.ok
    assert store.count() == 5000


def test_writes_are_batched(store_at: str | Path) -> None:
    store = CaptureStore(store_at, batch_size=100)
    with _locked(store_at):
        for i in range(500):
            store.put(_pair(i))
        time.sleep(0.05)
    assert store.flush(10)
    health = store.health()
    assert health.written == 500
    assert health.batches <= 7  # 500 rows in transactions of up to 100 (+ the first one)
    store.close()


def test_queue_full_counts_drops_and_never_blocks(store_at: str | Path) -> None:
    store = CaptureStore(store_at, queue_size=10, batch_size=5)
    with _locked(store_at):
        started = time.monotonic()
        results = [store.put(_pair(i)) for i in range(100)]
        assert time.monotonic() - started < 1.0  # put never waits for the writer
    store.close()
    health = store.health()
    assert results.count(False) == store.dropped == health.dropped > 0
    assert health.accepted == results.count(True) == store.count()
    assert health.lost == 0


def test_put_after_close_is_dropped(store_at: str | Path) -> None:
    store = CaptureStore(store_at)
    store.close()
    assert store.put(_pair()) is False
    assert store.dropped == 1


def test_reopen_after_close_keeps_rows(store_at: str | Path) -> None:
    with CaptureStore(store_at) as store:
        for i in range(10):
            store.put(_pair(i))
    with CaptureStore(store_at) as store:
        assert store.count() == 10
        store.put(_pair(10))
    reopened = CaptureStore(store_at)
    ids = [s.pair.request.request_id for s in reopened.iter_pairs(after_id=8)]
    reopened.close()
    assert ids == ["req-8", "req-9", "req-10"]
    assert reopened.schema_version() == SCHEMA_VERSION


def test_export_jsonl(store_at: str | Path, tmp_path: Path) -> None:
    with CaptureStore(store_at) as store:
        for i in range(3):
            store.put(_pair(i, stream=bool(i)))
        store.flush()
        assert store.export_jsonl(tmp_path / "out.jsonl") == 3
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert pair_from_dict(rows[2]) == _pair(2, stream=True)


def test_read_only_database_reports_failures_and_put_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with CaptureStore(path) as store:
        store.put(_pair())
    os.chmod(path, 0o444)
    # As root chmod alone does not stop SQLite, so the connection is read-only as well.
    store = CaptureStore(f"file:{path}?mode=ro", spill_limit=3, spill_path=tmp_path / "spill.jsonl")
    for i in range(5):
        assert store.put(_pair(i)) is True  # accepted: the failure is the writer's
    assert store.flush(10)
    health = store.health()
    assert health.failed_writes >= 1
    assert "readonly" in (health.last_error or "")
    assert not health.ok
    assert health.spilled + health.spill_file_rows == 5  # the overflow already went to the file
    store.close()
    health = store.health()
    assert (health.spilled, health.spill_file_rows, health.lost) == (0, 5, 0)
    spilled = [json.loads(line) for line in (tmp_path / "spill.jsonl").read_text().splitlines()]
    assert sorted(r["request_id"] for r in spilled) == [f"req-{i}" for i in range(5)]
    assert store.count() == 1


def test_unopenable_database_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = CaptureStore(blocker / "s.db", spill=False)
    assert store.put(_pair()) is True
    store.close()
    health = store.health()
    assert health.failed_writes >= 1 and health.lost == 1 and health.last_error


def test_failed_rows_are_retried_when_the_database_comes_back(tmp_path: Path) -> None:
    store = CaptureStore(tmp_path / "s.db", busy_timeout_s=0.05)
    with _locked(tmp_path / "s.db"):
        store.put(_pair(0))
        assert store.flush(10)
        assert store.health().spilled == 1
    store.put(_pair(1))
    store.close()
    health = store.health()
    assert health.failed_writes == 1 and health.written == 2 and health.spilled == 0
    assert store.count() == 2


def test_load_runs_and_process_samples(store_at: str | Path) -> None:
    with CaptureStore(store_at) as store:
        run = store.add_load_run("chat-50u", target="sdk", params={"users": 50})
        assert store.add_load_run("chat-100u") == run + 1
        # 5 GB: SQLite's INTEGER is 64-bit, and so must PostgreSQL's column be.
        samples = [ProcessSample("sdk", 0.5, 100, 0.1), ProcessSample("sdk", 1.0, 5 << 30, 0.2)]
        assert store.add_process_samples(run, samples) == 2
        assert store.process_samples(run) == samples
        [first, _] = store.load_runs()
        assert (first.id, first.name, first.params) == (run, "chat-50u", {"users": 50})


def test_rows_are_read_by_id_range(store_at: str | Path) -> None:
    with CaptureStore(store_at) as store:
        assert store.id_range() is None
        for i in range(6):
            store.put(_pair(i))
    with CaptureStore(store_at, spill=False) as store:
        assert store.id_range() == (1, 6)
        assert [r.id for r in store.iter_rows(after_id=2, until_id=4)] == [3, 4]
        assert [r.id for r in store.iter_rows(after_id=4)] == [5, 6]


def test_the_upstream_mode_survives_the_store_and_old_rows_read_as_live(tmp_path: Path) -> None:
    replayed = dataclasses.replace(_pair(0), upstream_mode="replay")
    with CaptureStore(tmp_path / "s.db") as store:
        store.put(replayed)
        store.put(_pair(1))
    with CaptureStore(tmp_path / "s.db", spill=False) as store:
        assert [s.pair.upstream_mode for s in store.iter_pairs()] == ["replay", "live"]
    # A store written before the column existed: its rows were mirrored live.
    old = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    old.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
    for statement in MIGRATIONS[0]:
        old.execute(statement)
    old.execute("INSERT INTO schema_version VALUES (1, 0)")
    old.close()
    with CaptureStore(tmp_path / "old.db") as store:
        store.put(replayed)
    with CaptureStore(tmp_path / "old.db", spill=False) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert [s.pair.upstream_mode for s in store.iter_pairs()] == ["replay"]


def test_unattached_calls_are_kept_redacted(store_at: str | Path) -> None:
    from harness.redaction import Redactor

    store = CaptureStore(store_at, redactor=Redactor(("sk-secret-value",)))
    call = {
        "method": "POST",
        "path": "/v1/messages",
        "time": 12.5,
        "headers": {"x-api-key": "sk-secret-value", "x-sm-user-id": "u"},
    }
    assert store.add_unattached("legacy", [call, {**call, "time": 11.0}]) == 2
    kept = store.unattached()
    store.close()
    assert [(target, c["time"]) for target, c in kept] == [("legacy", 11.0), ("legacy", 12.5)]
    assert "sk-secret-value" not in json.dumps(kept)
    assert kept[0][1]["headers"]["x-sm-user-id"] == "u"


def test_rows_of_a_store_written_before_runs_belong_to_no_run(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    old.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version, statements in enumerate(MIGRATIONS[:2], 1):
        for statement in statements:
            old.execute(statement)
        old.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    old.close()
    with CaptureStore(tmp_path / "old.db") as store:
        store.put(_pair(0))
    with CaptureStore(tmp_path / "old.db", spill=False) as store:
        run_id = store.open_run(mode="live", primary_role="sdk", versions={}, configs={})
    with CaptureStore(tmp_path / "old.db", run_id=run_id) as store:
        store.put(_pair(1))
    with CaptureStore(tmp_path / "old.db", spill=False) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.legacy_pairs() == 1
        (run,) = store.runs()
        assert (run.id, run.pairs, run.open) == (run_id, 1, True)
        assert store.count() == 2 and store.count(Scope(run_id=run_id)) == 1
        scoped = [s.id for s in store.iter_rows(scope=Scope(run_id=run_id))]
        assert scoped == [2]


def test_runs_load_runs_and_samples_on_either_back_end(store_at: str | Path) -> None:
    """The runs' SQL (open, counters merged part by part, end, read back with their pair
    and load-run counts), load runs and samples of a run, and a pair found by its
    request id: the same on SQLite and PostgreSQL."""
    with CaptureStore(store_at, instance="alice") as store:
        store.put(_pair(0))  # of no run
    with CaptureStore(store_at, spill=False) as store:
        run_id = store.open_run(
            mode="replay", primary_role="sdk", versions={"sdk": "1.0"}, configs={}
        )
    for name in ("alice", "bob"):
        with CaptureStore(store_at, run_id=run_id, instance=name) as store:
            store.put(_pair(1 if name == "alice" else 2))
    with CaptureStore(store_at, spill=False) as store:
        store.record_run_counters(run_id, "tap", {"seen": 3})
        store.record_run_counters(run_id, "mirror", {"queued": 2})
        store.end_run(run_id, ended_at=2000.0)
        load = store.add_load_run("load", target="sdk", started_at=1500.0, run_id=run_id)
        store.add_load_run("other", target="sdk", started_at=1000.0)
        samples = [ProcessSample("sdk", 0.5, 100, 0.1, 10), ProcessSample("sdk", 1.0, 200, 0.2)]
        store.add_process_samples(load, samples)

        (run,) = store.runs()
        assert (run.id, run.pairs, run.load_runs, run.ended_at) == (run_id, 2, 1, 2000.0)
        assert run.counters == {"tap": {"seen": 3}, "mirror": {"queued": 2}}
        assert store.run(run_id) == run and store.run(run_id + 1) is None
        assert store.latest_run() == run
        assert store.legacy_pairs() == 1
        assert [r.id for r in store.load_runs(Scope(run_id=run_id))] == [load]
        # Load runs have no instance: --instance does not narrow them.
        assert [r.run_id for r in store.load_runs(Scope(instance="bob"))] == [run_id, None]
        assert store.process_samples(load) == samples
        assert store.count(Scope(run_id=run_id, instance="bob")) == 1
        bob = [s.instance for s in store.iter_pairs(scope=Scope(run_id=run_id, instance="bob"))]
        assert bob == ["bob"]
        found = store.find_row(_pair(2).request.request_id)
        assert isinstance(found, StoredPair) and found.instance == "bob"
        assert store.find_row("no-such-request") is None


def test_canary_state_and_history_on_either_back_end(store_at: str | Path) -> None:
    from harness.store.canary_store import CanaryState, CanaryStore

    with CaptureStore(store_at) as store:
        store.put(_pair(0))
    canary = CanaryStore(store_at)
    assert canary.state() is None and canary.percent() == 0.0
    first = CanaryState((5.0, 25.0, 100.0), 60.0, 60.0, 0, 5.0, "running", 1000.0, 1000.0)
    canary.save(first, "step", {"why": "start"})
    second = dataclasses.replace(first, step_index=1, percent=25.0, updated_at=1060.0)
    canary.save(second, "step")  # the one state row is replaced, the history grows
    assert canary.state() == second and canary.percent() == 25.0
    history = canary.history()
    assert [(e.step_index, e.percent, e.event) for e in history] == [
        (0, 5.0, "step"),
        (1, 25.0, "step"),
    ]
    assert history[0].evidence == {"why": "start"}
    since = _pair(0).request.received_at
    assert [r.id for r in canary.rows_since(since)] == [1]
    assert list(canary.rows_since(since + 1)) == []
