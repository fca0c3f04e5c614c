"""The capture store: redacted pairs, load runs and process samples in SQLite or a team's
PostgreSQL database."""

from __future__ import annotations

from harness.store.capture_store import (
    DEFAULT_PATH,
    CaptureStore,
    ProcessSample,
    StoredPair,
    UnreadableRow,
)
from harness.store.dialect import StoreUnavailable
from harness.store.pair_json import (
    MalformedPair,
    loads,
    observation_from_dict,
    pair_from_dict,
    pair_to_dict,
)
from harness.store.runs import Scope
from harness.store.schema import (
    COMPARISON_CATEGORIES,
    MIGRATIONS,
    PAIR_COLUMNS,
    SCHEMA_VERSION,
    SchemaTooNew,
    migrate,
    schema_version,
)
from harness.store.writer import (
    BatchWriter,
    Row,
    StoreHealth,
)

__all__ = [
    "BatchWriter",
    "COMPARISON_CATEGORIES",
    "CaptureStore",
    "DEFAULT_PATH",
    "MIGRATIONS",
    "MalformedPair",
    "PAIR_COLUMNS",
    "ProcessSample",
    "Row",
    "SCHEMA_VERSION",
    "SchemaTooNew",
    "Scope",
    "StoreHealth",
    "StoreUnavailable",
    "StoredPair",
    "UnreadableRow",
    "loads",
    "migrate",
    "observation_from_dict",
    "pair_from_dict",
    "pair_to_dict",
    "schema_version",
]
