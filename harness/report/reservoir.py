"""A bounded, seeded, mergeable uniform sample of a stream of values (pure).

The latency gates take percentiles and bootstrap intervals of every timing a store holds;
a team store holds millions. A :class:`Reservoir` keeps every value up to ``cap`` (a store
of the demo's size keeps all of them, so its report is exactly what the full lists gave),
then a uniform random sample of ``cap`` of them (Vitter's algorithm R), with ``seen`` the
true count. Its generator is seeded, so the same rows give the same sample.

Parts folded in separate processes merge into a uniform sample of the union: when both
fit, by concatenation (the same list one process builds); else each part's share of the
``cap`` slots is drawn in proportion to the values each *saw* (a hypergeometric split),
and that many are drawn from its sample. A uniform subset of a uniform sample is uniform.

No well-kept Python library offers a mergeable reservoir; a quantile sketch (t-digest,
DDSketch) would give percentiles but no sample to bootstrap the intervals from.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["RESERVOIR_SEED", "RESERVOIR_SIZE", "Reservoir"]

# Per latency slice and side. The demo's store (a few thousand pairs over seven slices)
# stays far below it; a million pairs keep ~20,000 timings per slice and side, enough for
# intervals a few milliseconds wide. ~0.7 MB per full reservoir.
RESERVOIR_SIZE = 20_000
RESERVOIR_SEED = 20_260_101

T = TypeVar("T")


class Reservoir(Generic[T]):
    """Every value added, up to ``cap``; beyond, a uniform sample of ``cap`` of them."""

    __slots__ = ("cap", "seen", "values", "_rng")

    def __init__(self, values: Iterable[T] = (), cap: int | None = None) -> None:
        cap = RESERVOIR_SIZE if cap is None else cap  # read here: tests shrink it
        if cap < 1:
            raise ValueError("a reservoir holds at least one value")
        self.cap = cap
        self.seen = 0  # every value added, kept or not
        self.values: list[T] = []
        self._rng: random.Random | None = None  # made at the first value not kept whole
        for value in values:
            self.add(value)

    def __iter__(self) -> Iterator[T]:
        return iter(self.values)

    def __len__(self) -> int:
        """The values kept (``seen`` counts every value added)."""
        return len(self.values)

    def __repr__(self) -> str:
        return f"Reservoir(seen={self.seen}, kept={len(self.values)}, cap={self.cap})"

    @property
    def complete(self) -> bool:
        """Every value seen is kept (the numbers are exact, not estimated)."""
        return self.seen == len(self.values)

    def _random(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(RESERVOIR_SEED)
        return self._rng

    def add(self, value: T) -> None:
        self.seen += 1
        if len(self.values) < self.cap:
            self.values.append(value)
            return
        slot = self._random().randrange(self.seen)
        if slot < self.cap:
            self.values[slot] = value

    def merge(self, other: Reservoir[T]) -> None:
        """Add ``other``'s values (folded after this one's)."""
        if other.cap != self.cap:
            raise ValueError("only reservoirs of the same size merge")
        seen = self.seen + other.seen
        if seen <= self.cap and self.complete and other.complete:
            self.values.extend(other.values)
            self.seen = seen
            return
        rng = self._random()
        size = min(self.cap, len(self.values) + len(other.values))
        # Draw ``size`` of the ``seen`` values without replacement, counting how many fall
        # in this part: each part's share in proportion to what it saw.
        mine_left, theirs_left, mine = self.seen, other.seen, 0
        for _ in range(size):
            if rng.random() * (mine_left + theirs_left) < mine_left:
                mine += 1
                mine_left -= 1
            else:
                theirs_left -= 1
        self.values = rng.sample(self.values, mine) + rng.sample(other.values, size - mine)
        self.seen = seen
