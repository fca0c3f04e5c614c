"""The capture store's schema, as an ordered list of migrations (SQLite's spelling; the
:mod:`~harness.store.dialect` translates them for PostgreSQL).

``schema_version`` holds one row per applied migration. A database opened by a newer
harness gets the missing migrations, each in its own transaction; one written by a newer
harness than this one is refused rather than misread. Never edit a released migration:
append a new one (a new comparison category is an ``ALTER TABLE comparisons ADD COLUMN``).
"""

from __future__ import annotations

import time
from typing import Any

from harness.errors import HarnessError
from harness.store.dialect import Dialect, SqliteDialect

__all__ = [
    "COMPARISON_CATEGORIES",
    "MIGRATIONS",
    "PAIR_COLUMNS",
    "RUNS_VERSION",
    "SCHEMA_VERSION",
    "SchemaTooNew",
    "migrate",
    "schema_version",
]

# One 0/1 column per comparison category (harness.compare.diff.CATEGORIES at version 1).
COMPARISON_CATEGORIES = (
    "status",
    "error_type",
    "error_message",
    "schema",
    "type_change",
    "finish_reason",
    "tool_calls",
    "content",
    "usage",
    "model",
    "headers",
    "stream_sequence",
    "stream_ending",
    "upstream",
    "other",
)

# Insert order of a pairs row (the id is assigned by SQLite).
PAIR_COLUMNS = (
    "request_id",
    "received_at",
    "endpoint",
    "model",
    "stream",
    "user_id",
    "client_family",
    "mirror_outcome",
    "primary_status",
    "shadow_status",
    "request_json",
    "primary_json",
    "shadow_json",
    "shadow_repeat_json",
    "upstream_json",
    "upstream_mode",
    "twin_json",
    # last: CaptureStore appends its run and instance to the pair's row
    "run_id",
    "instance",
)

_V1 = (
    """CREATE TABLE pairs (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        received_at REAL NOT NULL,
        endpoint TEXT NOT NULL,
        model TEXT,
        stream INTEGER NOT NULL,
        user_id TEXT,
        client_family TEXT,
        mirror_outcome TEXT NOT NULL,
        primary_status INTEGER,
        shadow_status INTEGER,
        request_json TEXT NOT NULL,
        primary_json TEXT NOT NULL,
        shadow_json TEXT,
        shadow_repeat_json TEXT,
        upstream_json TEXT NOT NULL
    )""",
    "CREATE INDEX pairs_received_at ON pairs (received_at)",
    "CREATE INDEX pairs_request_id ON pairs (request_id)",
    "CREATE INDEX pairs_slice ON pairs (endpoint, model, stream)",
    f"""CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY,
        pair_id TEXT NOT NULL,
        compared_at REAL NOT NULL,
        match INTEGER NOT NULL,
        verdict_json TEXT NOT NULL,
        {", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in COMPARISON_CATEGORIES)}
    )""",
    "CREATE INDEX comparisons_pair_id ON comparisons (pair_id)",
    """CREATE TABLE load_runs (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        target TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        params_json TEXT NOT NULL DEFAULT '{}',
        results_json TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE process_samples (
        run_id INTEGER NOT NULL REFERENCES load_runs (id),
        target TEXT NOT NULL,
        t REAL NOT NULL,
        rss_bytes INTEGER,
        cpu_seconds REAL
    )""",
    "CREATE INDEX process_samples_run ON process_samples (run_id, target, t)",
)

# Whether the mirror's provider calls were replayed (the upstream held fixed) or live;
# rows written before replay existed were live.
_V2 = ("ALTER TABLE pairs ADD COLUMN upstream_mode TEXT NOT NULL DEFAULT 'live'",)

# Provider calls no client request claimed (a proxy's duplicate sent after its request
# was answered, a call the replay upstream had no recording for, a sandbox capture no
# pair's window holds): kept, never dropped, for the "provider calls accounted" gate.
_V3 = (
    """CREATE TABLE unattached_calls (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        time REAL,
        call_json TEXT NOT NULL
    )""",
    "CREATE INDEX unattached_calls_time ON unattached_calls (time)",
)

# The gradual cutover (``harness cutover --canary``): one row of state (the step the
# front door serves, restart-safe) and the history of its steps, windows and decisions.
# Its number is whatever follows the migrations before it.
_CANARY = (
    """CREATE TABLE canary_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        steps_json TEXT NOT NULL,
        interval_s REAL NOT NULL,
        window_s REAL NOT NULL,
        step_index INTEGER NOT NULL,
        percent REAL NOT NULL,
        status TEXT NOT NULL,
        step_started_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE canary_history (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        step_index INTEGER NOT NULL,
        percent REAL NOT NULL,
        event TEXT NOT NULL,
        evidence_json TEXT NOT NULL DEFAULT '{}'
    )""",
)

# Runs: each `harness shadow` start opens one (its versions, config hashes, mode, start and
# end, and the mirror's counters); pairs and load runs carry its id, process samples belong
# to their load run. Rows written before runs existed have no run (NULL): a legacy run.
_RUNS = (
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at REAL NOT NULL,
        ended_at REAL,
        mode TEXT NOT NULL,
        primary_role TEXT,
        versions_json TEXT NOT NULL DEFAULT '{}',
        configs_json TEXT NOT NULL DEFAULT '{}',
        counters_json TEXT NOT NULL DEFAULT '{}'
    )""",
    "ALTER TABLE pairs ADD COLUMN run_id INTEGER REFERENCES runs (id)",
    "CREATE INDEX pairs_run ON pairs (run_id, id)",
    "ALTER TABLE load_runs ADD COLUMN run_id INTEGER REFERENCES runs (id)",
    # Requests the target had served when the sample was taken (the memory gate judges
    # growth per request served); NULL where the load generator did not say.
    "ALTER TABLE process_samples ADD COLUMN requests INTEGER",
)

# Which proxy (host or configured instance id) captured the pair: a team's proxies share
# one PostgreSQL store. Rows from before were captured by the store's own machine.
_INSTANCE = (
    "ALTER TABLE pairs ADD COLUMN instance TEXT",
    "CREATE INDEX pairs_instance ON pairs (instance, received_at)",
)


# The latency twin's answer (its timings stand for the primary's in the latency gates;
# harness.shadow.engine); NULL when there was none.
_TWIN = ("ALTER TABLE pairs ADD COLUMN twin_json TEXT",)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3, _CANARY, _RUNS, _INSTANCE, _TWIN)
SCHEMA_VERSION = len(MIGRATIONS)
# The version that added runs (a store below it has no runs table and no run ids).
RUNS_VERSION = MIGRATIONS.index(_RUNS) + 1


class SchemaTooNew(HarnessError, RuntimeError):
    """The database was written by a newer harness than this one."""


_SQLITE = SqliteDialect(":memory:")


def schema_version(conn: Any, dialect: Dialect = _SQLITE) -> int:
    """The applied version; 0 for an empty database."""
    if not dialect.table_exists(conn, "schema_version"):
        return 0
    row = dialect.execute(conn, "SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: Any, dialect: Dialect = _SQLITE) -> int:
    """Apply the missing migrations (``conn`` in autocommit mode); returns the version."""
    current = schema_version(conn, dialect)
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(f"database schema {current} is newer than {SCHEMA_VERSION}")
    if current == SCHEMA_VERSION:
        return current
    conn.execute(dialect.begin)
    try:
        dialect.lock_for_migration(conn)
        # Checked again under the lock: another process may have migrated meanwhile.
        current = schema_version(conn, dialect)
        conn.execute(
            dialect.ddl(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
        )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(dialect.ddl(statement))
            dialect.execute(
                conn,
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (version, time.time()),
            )
        conn.execute("COMMIT")
    except BaseException:
        dialect.rollback(conn)
        raise
    return SCHEMA_VERSION
