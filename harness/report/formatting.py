"""How the report writes numbers and times: one spelling for every gate and renderer (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["MISSING", "interval_text", "ms", "pct", "utc_text"]

MISSING = "-"  # no value to show, in every gate and format


def pct(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def ms(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f} ms"


def interval_text(bounds: tuple[float, float] | None) -> str:
    """A difference's confidence interval, signed so its side of zero shows: ``[-2.0, +0.3]``."""
    return MISSING if bounds is None else f"[{bounds[0]:+.1f}, {bounds[1]:+.1f}]"


def utc_text(timestamp: float | None) -> str:
    if timestamp is None:
        return MISSING
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
