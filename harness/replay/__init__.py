"""``harness replay`` and ``harness record``: send a corpus to a proxy; turn captures into one."""

from __future__ import annotations

from harness.replay.record import (
    RecordSummary,
    entry_for,
    record,
)
from harness.replay.sender import (
    Mismatch,
    ReplayOutcome,
    ReplayPlan,
    ReplaySummary,
    replay,
    replay_async,
)
from harness.replay.target_key import (
    KEY_ENV,
    add_key_arguments,
    resolve_key,
)

__all__ = [
    "KEY_ENV",
    "Mismatch",
    "RecordSummary",
    "ReplayOutcome",
    "ReplayPlan",
    "ReplaySummary",
    "add_key_arguments",
    "entry_for",
    "record",
    "replay",
    "replay_async",
    "resolve_key",
]
