"""Cookie persistence judged call by call in bounded memory (pure).

The rule (:mod:`harness.report.upstream_facts` says why): once a proxy has been *given* a
cookie (an earlier call's answer, finished before this call started, set one) or has
shown it holds one (an earlier call carried one), every call that reaches the provider
more than ``RACE_SECONDS`` later must carry it. "Earlier" is the sandbox's arrival order
(``seq``), which is not the store's row order: a pair is stored when both sides answered.

A :class:`CookieTally` keeps the calls not yet judged in a heap ordered by ``seq``, at
most ``window`` of them; past that it judges the earliest, whose predecessors have all
arrived unless rows come more than ``window`` calls out of ``seq`` order. So the counts
are exactly what judging the whole sorted list gives for any store whose calls fit in the
window (the demo's, the tests'), and for larger ones stored in arrival order; the memory
does not grow with the store.

Parts folded in separate processes (each a range of rows) merge: their unjudged calls
join one heap, and so do the calls a later part judged before it had seen any cookie
(up to ``window`` of them), to be judged again after the earlier part's. A later part's
calls judged after its own first cookie keep that judgement: the earlier part's cookies
could only make them expected sooner, and its first cookie lies within its first calls.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

__all__ = ["COOKIE_WINDOW", "RACE_SECONDS", "CookieFacts", "CookieTally", "UpstreamCall"]

# Longer than building a request and opening a loopback or LAN connection takes, short
# against the seconds between a person's turns: a proxy that drops its cookie still misses.
RACE_SECONDS = 0.25
# Calls held unjudged per target: ~0.3 KB each, ~15 MB when full.
COOKIE_WINDOW = 50_000
MISSES_KEPT = 5


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """What the cookie gate needs of one captured upstream call."""

    seq: float  # the sandbox's sequence number (arrival order across both proxies)
    started: float | None  # unix seconds
    finished: float | None  # started + duration, when known
    issued: bool  # the sandbox handed out a cookie in its answer
    carried: bool  # the call brought a cookie back
    pair_id: str


@dataclass(frozen=True)
class CookieFacts:
    """One target's calls: how many should have carried the cookie, and how many did."""

    target: str
    calls: int
    expected: int
    carried: int
    misses: tuple[str, ...] = field(default_factory=tuple)  # pair ids, first few

    @property
    def missed(self) -> int:
        return self.expected - self.carried


# (seq, started, arrival index, call): the index keeps equal keys in the order added,
# as a stable sort of the whole list would.
_Entry = tuple[float, float, int, UpstreamCall]


@dataclass
class _Judgement:
    """The running state of judging calls in ``seq`` order, and its counts."""

    holds_from: float | None = None  # when the proxy is known to hold a cookie
    held_without_times: bool = False  # the same, for captures without timings
    expected: int = 0
    carried: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def unheld(self) -> bool:
        """No call so far showed a cookie: none is expected to carry one."""
        return self.holds_from is None and not self.held_without_times

    def judge(self, call: UpstreamCall) -> None:
        if call.started is not None and self.holds_from is not None:
            should_carry = call.started >= self.holds_from + RACE_SECONDS
        else:
            should_carry = self.held_without_times
        if should_carry:
            self.expected += 1
            if call.carried:
                self.carried += 1
            elif len(self.misses) < MISSES_KEPT:
                self.misses.append(call.pair_id)
        if call.carried or call.issued:
            self.held_without_times = True
            known = call.started if call.carried else call.finished
            if known is not None:
                self.holds_from = known if self.holds_from is None else min(self.holds_from, known)

    def copy(self) -> _Judgement:
        return _Judgement(
            self.holds_from, self.held_without_times, self.expected, self.carried, [*self.misses]
        )


@dataclass
class CookieTally:
    """One target's upstream calls, judged for cookie persistence as they allow."""

    window: int = field(default_factory=lambda: COOKIE_WINDOW)  # read here: tests shrink it
    calls: int = 0  # every call added
    _pending: list[_Entry] = field(default_factory=list)  # a heap
    _judged: _Judgement = field(default_factory=_Judgement)
    # Calls judged before any cookie was seen (none expected to carry one), up to
    # ``window``: a part folded after another is judged again from that part's cookies.
    _head: list[_Entry] = field(default_factory=list)

    def __len__(self) -> int:
        """Every call added (judged or not), as a list of them would say."""
        return self.calls

    @property
    def held(self) -> int:
        """Calls held unjudged (at most ``window``) or kept to be judged again at a merge."""
        return len(self._pending) + len(self._head)

    @classmethod
    def of(cls, calls: list[UpstreamCall]) -> CookieTally:
        tally = cls()
        for call in calls:
            tally.add(call)
        return tally

    def add(self, call: UpstreamCall) -> None:
        heapq.heappush(self._pending, (call.seq, call.started or 0.0, self.calls, call))
        self.calls += 1
        self._judge_overflow()

    def _judge_overflow(self) -> None:
        while len(self._pending) > self.window:
            entry = heapq.heappop(self._pending)
            if self._judged.unheld and len(self._head) < self.window:
                self._head.append(entry)
            self._judged.judge(entry[3])

    def facts(self, target: str) -> CookieFacts:
        """The counts with every call judged (the tally itself is left as it is)."""
        judgement = self._judged.copy()
        for entry in sorted(self._pending):
            judgement.judge(entry[3])
        return CookieFacts(
            target, self.calls, judgement.expected, judgement.carried, tuple(judgement.misses)
        )

    def merge(self, other: CookieTally) -> None:
        """Add ``other``'s calls (folded after this one's)."""
        for seq, started, index, call in (*other._head, *other._pending):
            heapq.heappush(self._pending, (seq, started, self.calls + index, call))
        mine, theirs = self._judged, other._judged
        mine.expected += theirs.expected
        mine.carried += theirs.carried
        mine.misses.extend(theirs.misses[: MISSES_KEPT - len(mine.misses)])
        mine.held_without_times = mine.held_without_times or theirs.held_without_times
        known = [t for t in (mine.holds_from, theirs.holds_from) if t is not None]
        mine.holds_from = min(known) if known else None
        self.calls += other.calls
        self._judge_overflow()
