"""``harness replay`` and ``harness record``: send a corpus to a proxy; turn captures into one."""

from __future__ import annotations

from harness.replay.record import (
    RecordSummary,
    add_record_arguments,
    entry_for,
    record,
    record_command,
)
from harness.replay.sender import (
    Mismatch,
    ReplayOutcome,
    ReplaySummary,
    add_replay_arguments,
    replay,
    replay_async,
    replay_command,
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
    "ReplaySummary",
    "add_key_arguments",
    "add_record_arguments",
    "add_replay_arguments",
    "entry_for",
    "record",
    "record_command",
    "replay",
    "replay_async",
    "replay_command",
    "resolve_key",
]
