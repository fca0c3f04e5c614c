"""How the report writes numbers and times: one spelling for every gate and renderer (pure)."""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime

__all__ = ["MISSING", "interval_text", "ms", "pct", "utc_text", "word_diff"]

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


_WORDS = re.compile(r"\s+|\w+|[^\w\s]")
Pieces = list[tuple[str, bool]]  # (text, differs from the other side)


def word_diff(a: str, b: str) -> tuple[Pieces, Pieces]:
    """Two values cut into pieces, each marked when it differs from the other side.

    Word by word, so ids and sentences read whole; values with little in common are
    marked whole rather than as a confetti of matching letters. One diff for every place
    that highlights one (the HTML report, ``harness show``).
    """
    a_words, b_words = _WORDS.findall(a), _WORDS.findall(b)
    matcher = difflib.SequenceMatcher(None, a_words, b_words, autojunk=False)
    if matcher.ratio() < 0.5:
        return [(a, bool(a))], [(b, bool(b))]
    left: Pieces = []
    right: Pieces = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        one, other = "".join(a_words[i1:i2]), "".join(b_words[j1:j2])
        if one:
            left.append((one, tag != "equal"))
        if other:
            right.append((other, tag != "equal"))
    return left, right
