"""``harness report --instance / --since``: which of a store's pairs the report reads.

``--since`` takes a UTC date or time (``2026-12-01``, ``2026-12-01T09:30``, a trailing
``Z`` or offset allowed) or an age (``90m``, ``24h``, ``7d``: that long before now).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from harness.errors import HarnessError
from harness.report.formatting import utc_text
from harness.store.capture_store import PairFilter

__all__ = ["BadFilter", "filter_text", "pair_filter", "parse_since"]

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class BadFilter(HarnessError, ValueError):
    """A report filter that does not parse."""


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds of ``--since``."""
    age = _AGE.match(text.strip())
    if age:
        now = time.time() if now is None else now
        return now - float(age.group(1)) * _SECONDS[age.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadFilter(
            f"--since: expected a UTC date/time (2026-12-01, 2026-12-01T09:30Z) or an age "
            f"(90m, 24h, 7d), got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def pair_filter(
    instance: str | None = None, since: str | None = None, now: float | None = None
) -> PairFilter:
    return PairFilter(instance=instance, since=None if since is None else parse_since(since, now))


def filter_text(where: PairFilter) -> str:
    """How the report names the filter (empty: every pair)."""
    parts = []
    if where.instance is not None:
        parts.append(f"instance {where.instance}")
    if where.since is not None:
        parts.append(f"received since {utc_text(where.since)}")
    return ", ".join(parts)
