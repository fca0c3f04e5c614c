"""A run's mirror coverage: how many of the requests seen were mirrored, and why the rest
were not (pure).

The counters come in two parts, each written by the process that counted it
(:mod:`harness.store.runs`): ``tap`` (the serving process: requests seen, and those its
dispatch refused) and ``mirror`` (the mirror engine: requests queued, those it refused,
and those queued but stored primary-only at shutdown).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.shadow.metrics import SKIP_OUTCOMES

__all__ = ["Coverage", "coverage_of"]


@dataclass(frozen=True)
class Coverage:
    seen: int
    mirrored: int
    skipped: tuple[tuple[str, int], ...]  # reason as read ("breaker open") -> requests
    complete: bool  # both parts recorded; False while a run is open or after a crash

    @property
    def skipped_total(self) -> int:
        return sum(n for _, n in self.skipped)

    def line(self) -> str:
        """``1,840 of 2,000 requests mirrored; 160 skipped: breaker open 150, queue full 10``."""
        text = f"{self.mirrored:,} of {self.seen:,} requests mirrored"
        if self.skipped:
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in self.skipped)
            text += f"; {self.skipped_total:,} skipped: {reasons}"
        rest = self.seen - self.mirrored - self.skipped_total
        if rest > 0:
            text += f"; {rest:,} neither (a worker error, or still in flight)"
        if not self.complete:
            text += " (counters incomplete: the run is open, or ended without recording them)"
        return text


def _reason(name: str) -> str:
    return SKIP_OUTCOMES.get(name, name).replace("_", " ")


def _counts(value: Any) -> Counter[str]:
    found: Counter[str] = Counter()
    if isinstance(value, Mapping):
        for key, n in value.items():
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                found[str(key)] += n
    return found


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def coverage_of(counters: Mapping[str, Any]) -> Coverage | None:
    """The coverage a run's counters show; None when neither part was recorded."""
    tap = counters.get("tap")
    mirror = counters.get("mirror")
    tap = tap if isinstance(tap, Mapping) else None
    mirror = mirror if isinstance(mirror, Mapping) else None
    if tap is None and mirror is None:
        return None
    skipped: Counter[str] = Counter()
    for part in (tap, mirror):
        if part is not None:
            for name, n in _counts(part.get("skipped")).items():
                skipped[_reason(name)] += n
    shutdown = _counts(mirror.get("not_mirrored")) if mirror is not None else Counter()
    for name, n in shutdown.items():
        skipped[name.replace("_", " ")] += n
    queued = _int(mirror.get("queued")) if mirror is not None else 0
    return Coverage(
        seen=_int(tap.get("seen")) if tap is not None else 0,
        mirrored=max(0, queued - sum(shutdown.values())),
        skipped=tuple(sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
        complete=tap is not None and mirror is not None,
    )
