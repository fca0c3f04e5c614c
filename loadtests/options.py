"""What a load run is told through the environment (``harness load`` sets these).

=========================== ===========================================================
``LOAD_API_KEY``            the target's client key (replaces the corpus's ``$KEY``)
``LOAD_SEED``               seed for every per-user random choice (default 1)
``LOAD_PROFILE``            ``criterion`` | ``ramp`` | ``soak`` (default criterion)
``LOAD_PEAK``               ramp: the users of the last stage (default 50)
``LOAD_DURATION_S``         ramp: the whole shape's length in seconds (default 60)
``LOAD_MAX_FAILURE_RATIO``  SLO: failed / sent requests above this fail the run
``LOAD_P95_MS``             SLO: p95 response time above this fails the run
``LOAD_SUMMARY``            where the quitting listener writes its JSON summary
``LOAD_CORPUS``             JSONL corpus the bodies come from (default: built-in)
``LOAD_WEIGHT_<USER>``      weight of ``CHAT``, ``CHAT_STREAM``, ``MESSAGES``,
                            ``MESSAGES_STREAM`` users (default 1 each; 0 leaves one out)
``LOAD_MEMORY_USERS``       distinct ``x-memory-user-id`` values (default 8)
``LOAD_WAIT_MS``            think time between a user's requests, 0..N ms (default 0)
``LOAD_WORKER_SUMMARY``     distributed worker: where it writes its own request counts
``LOAD_WORKER_INDEX``       distributed worker: its number, part of every user's seed
=========================== ===========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.corpus import CORPUS_PATH

__all__ = ["PROFILES", "LoadOptions", "weight"]

PROFILES = ("criterion", "ramp", "soak")


@dataclass(frozen=True)
class LoadOptions:
    api_key: str
    seed: int = 1
    profile: str = "criterion"
    peak: int = 50
    duration_s: float = 60.0
    max_failure_ratio: float = 0.0
    p95_ms: float = 5000.0
    summary_path: Path | None = None
    corpus: Path = CORPUS_PATH
    memory_users: int = 8
    wait_ms: float = 0.0
    worker_summary_path: Path | None = None
    worker_index: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoadOptions:
        env = os.environ if environ is None else environ
        profile = env.get("LOAD_PROFILE", "criterion")
        if profile not in PROFILES:
            raise ValueError(f"LOAD_PROFILE must be one of {', '.join(PROFILES)}, not {profile!r}")
        summary = env.get("LOAD_SUMMARY")
        return cls(
            api_key=env.get("LOAD_API_KEY", ""),
            seed=int(env.get("LOAD_SEED", "1")),
            profile=profile,
            peak=int(env.get("LOAD_PEAK", "50")),
            duration_s=float(env.get("LOAD_DURATION_S", "60")),
            max_failure_ratio=float(env.get("LOAD_MAX_FAILURE_RATIO", "0")),
            p95_ms=float(env.get("LOAD_P95_MS", "5000")),
            summary_path=Path(summary) if summary else None,
            corpus=Path(env.get("LOAD_CORPUS") or CORPUS_PATH),
            memory_users=int(env.get("LOAD_MEMORY_USERS", "8")),
            wait_ms=float(env.get("LOAD_WAIT_MS", "0")),
            worker_summary_path=(
                Path(env["LOAD_WORKER_SUMMARY"]) if env.get("LOAD_WORKER_SUMMARY") else None
            ),
            worker_index=env.get("LOAD_WORKER_INDEX", ""),
        )


def weight(user: str, default: int = 1, environ: Mapping[str, str] | None = None) -> int:
    """``LOAD_WEIGHT_<USER>`` as a non-negative int."""
    env = os.environ if environ is None else environ
    value = int(env.get(f"LOAD_WEIGHT_{user}", str(default)))
    if value < 0:
        raise ValueError(f"LOAD_WEIGHT_{user} must be >= 0, got {value}")
    return value
