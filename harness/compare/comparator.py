"""Comparing captured pairs (pure, off the request path).

``Comparator.compare(pair)`` normalizes the SDK's and legacy's answers (whichever
answered the client), diffs them and returns a frozen :class:`Verdict` (differences,
ignored differences, a flag per category). ``Comparator.compare_repeat(pair)`` compares
legacy with its ``legacy_repeat``: Diffy's A/A comparison, whose rates are the noise a
difference must exceed to count (:mod:`harness.compare.regression`).

The rates themselves are counted in one place, the report's mergeable tallies:
:mod:`harness.report.collect` folds each pair's verdict and A/A verdict into
``DiffTally`` counts per endpoint (``Evidence.diffs`` and ``Evidence.noise``), and the
report classifies their ``category_rates()`` and ``field_rates()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.compare.diff import CATEGORIES, Difference, diff, diff_ignored
from harness.compare.normalize import COMPARED_HEADERS, DEFAULT_IGNORE_RULES, normalize
from harness.compare.regression import Thresholds
from harness.compare.rules import IgnoreRules
from harness.compare.upstream import upstream_parity
from harness.observation import CapturedPair, Observation

__all__ = ["Comparator", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """The comparison of one pair. ``match``: compared, and no difference left."""

    pair_id: str  # the pair's request id
    endpoint: str
    stream: bool
    differences: tuple[Difference, ...] = ()
    ignored: tuple[Difference, ...] = ()
    skipped: str | None = None  # why nothing was compared (e.g. not mirrored)

    @property
    def match(self) -> bool:
        return self.skipped is None and not self.differences

    @property
    def categories(self) -> dict[str, bool]:
        """Category -> whether this pair differs in it (every category listed)."""
        flags = dict.fromkeys(CATEGORIES, False)
        for difference in self.differences:
            flags[difference.category] = True
        return flags

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "match": self.match,
            "skipped": self.skipped,
            "categories": self.categories,
            "differences": [d.to_dict() for d in self.differences],
            "ignored": [d.to_dict() for d in self.ignored],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            pair_id=data["pair_id"],
            endpoint=data["endpoint"],
            stream=data["stream"],
            differences=tuple(Difference(**d) for d in data.get("differences", ())),
            ignored=tuple(Difference(**d) for d in data.get("ignored", ())),
            skipped=data.get("skipped"),
        )


class Comparator:
    """Normalize + diff with the configured ignore rules and thresholds."""

    def __init__(
        self,
        rules: Iterable[str] | None = None,
        thresholds: Thresholds | None = None,
        *,
        model_aliases: Mapping[str, str] | None = None,
        compared_headers: tuple[str, ...] = COMPARED_HEADERS,
        check_upstream: bool = True,
    ) -> None:
        self.rules = IgnoreRules(
            DEFAULT_IGNORE_RULES if rules is None else rules, model_aliases=model_aliases
        )
        self.thresholds = thresholds or Thresholds()
        self.compared_headers = compared_headers
        self.check_upstream = check_upstream

    def compare(self, pair: CapturedPair) -> Verdict:
        """The SDK's answer against legacy's, whichever answered the client, plus upstream
        parity: each difference's ``primary`` value is the SDK's, ``candidate`` legacy's."""
        request = pair.request
        sdk, legacy = pair.sdk, pair.legacy
        if sdk is None or legacy is None:  # not mirrored
            return Verdict(
                request.request_id,
                request.endpoint,
                request.stream,
                skipped=f"not mirrored ({pair.mirror_outcome})",
            )
        extra = upstream_parity(pair) if self.check_upstream else []
        return self.compare_observations(
            request.request_id, request.endpoint, request.stream, sdk, legacy, extra
        )

    def compare_repeat(self, pair: CapturedPair) -> Verdict | None:
        """The A/A comparison: legacy against its repeat, whichever side legacy was.

        None without a repeat, or when the pair was not mirrored.
        """
        legacy, repeat = pair.legacy, pair.legacy_repeat
        if pair.shadow is None or legacy is None or repeat is None:
            return None
        request = pair.request
        return self.compare_observations(
            request.request_id, request.endpoint, request.stream, legacy, repeat
        )

    def compare_observations(
        self,
        pair_id: str,
        endpoint: str,
        stream: bool,
        primary: Observation,
        candidate: Observation,
        extra: Iterable[Difference] = (),
    ) -> Verdict:
        a = normalize(primary, endpoint, self.rules, self.compared_headers)
        b = normalize(candidate, endpoint, self.rules, self.compared_headers)
        found = diff(a.value, b.value, content_similarity=self.thresholds.content_similarity)
        found.extend(extra)
        ignored = diff_ignored(a.ignored, b.ignored, a.value, b.value)
        ignored.extend(d for d in found if d.ignored)
        return Verdict(
            pair_id,
            endpoint,
            stream,
            differences=tuple(d for d in found if not d.ignored),
            ignored=tuple(ignored),
        )
