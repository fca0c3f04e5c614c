"""Reading a warm-up as it goes (pure): a request the corpus expects to succeed that
fails for a setup reason stops the run before the load, and so does a target that fails
nearly everything from the start (a LiteLLM server in its cooldown cascade answers 429s,
then 60 s timeouts: waiting on it looked like a hang)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from harness.replay.sender import ReplayOutcome

__all__ = ["FIRST", "SETUP", "UNHEALTHY", "warmup_verdict"]

SETUP = "setup"
UNHEALTHY = "unhealthy"
# Judged unhealthy when the first this many answers all failed (not for a setup reason).
FIRST = 4


def _setup_reason(outcome: ReplayOutcome) -> str | None:
    """Why the request failed if it is the set-up's fault: the key, or the model name."""
    problem = outcome.problem or ""
    if outcome.status in (401, 403):
        return f"{outcome.status} (the key: --key, or --config's master_key)"
    if outcome.status in (400, 404) and "model" in problem.lower():
        detail = problem.partition(": ")[2][:160]
        return f"{outcome.status} {detail} (the model names: --model-map, or --config)"
    return None


def _failure(outcome: ReplayOutcome) -> str | None:
    if outcome.problem is None:
        return None
    if outcome.status is None:
        return "no answer (" + outcome.problem.split(":", 1)[0] + ")"
    return str(outcome.status)


def warmup_verdict(outcomes: Sequence[ReplayOutcome]) -> str | None:
    """``setup: ...`` or ``unhealthy: ...`` to stop the warm-up (and the run), else None."""
    for outcome in outcomes:
        reason = _setup_reason(outcome)
        if reason is not None:
            return f"{SETUP}: {outcome.endpoint} request {outcome.entry_id!r} answered {reason}"
    first = outcomes[:FIRST]
    failures = [f for f in (_failure(o) for o in first) if f is not None]
    if len(first) == FIRST and len(failures) == FIRST:
        counted = ", ".join(f"{f} x{n}" for f, n in Counter(failures).most_common())
        return f"{UNHEALTHY}: the first {FIRST} warm-up requests all failed: {counted}"
    return None
