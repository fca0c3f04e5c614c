"""Find what each proxy sent upstream for each captured client request (live mode).

With the sandbox as the provider, each proxy's upstream calls are in that sandbox's
capture list (the SDK proxy and the LiteLLM server each get their own sandbox, so a
capture's target is never in doubt). A client request and its upstream calls share a
content key (:func:`~harness.observation.correlation_key`): the text of the last user
turn and the stream flag, hashed. It survives the translation between the OpenAI and
Anthropic formats, holds no prompt text, and nothing a proxy under test adds, drops or
changes (memory headers, cookies, the model id) is part of it: a proxy that loses
``x-sm-user-id`` still has its calls found, and the routing gate sees the loss.

Calls are claimed in time order. A request claims every call of its key that reached
the provider from its arrival to the end of its own window, and before the next request
with the same key arrived: retries, and duplicates a proxy should not have sent, stay
with the request that caused them (the per-request count gate judges them). Identical
requests sent one after another each get their own calls.

A pair whose request was also sent to legacy a second time (the A/A repeat) has the
repeat's calls set apart under their own key (:func:`split_repeat`, ``legacy:repeat``):
they are no duplicate of the mirror's.

A provider call no request claims is never dropped: it is returned as unattached, per
target, and the report's "provider calls accounted" gate counts it. Only generation
calls (``POST``) are accounted; a ``GET`` (a model list a server fetches on its own) is
no client request's call.

In replay mode nothing is joined here: the primary's calls are tapped per request and
the mirror side's are claimed by the replay upstream (:mod:`harness.shadow.replay_upstream`)
with the same content key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.compare.upstream import retryable
from harness.observation import correlation_key

__all__ = [
    "REPEAT_SUFFIX",
    "Attached",
    "attach_upstream",
    "call_key",
    "is_accounted",
    "split_repeat",
]

# The key under which a pair keeps its A/A repeat's calls (``"legacy:repeat"``): they are
# the repeat's, not the mirror's, and the per-request count compares the mirror's.
REPEAT_SUFFIX = ":repeat"

# A provider call reaches the provider after its client request reached the proxy (the
# same machine's clock): the slack only absorbs the two processes' clock reads.
_SLACK_BEFORE_S = 0.05
# ... and may end after the slower side finished answering the client.
_SLACK_AFTER_S = 5.0


@dataclass(frozen=True)
class Attached:
    """Pair id -> target -> its calls; and target -> the calls no request claimed."""

    calls: dict[int, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    unattached: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def call_key(body: Any) -> str | None:
    """The content key of a provider call's parsed body (None: no user turn)."""
    stream = bool(body.get("stream")) if isinstance(body, dict) else False
    return correlation_key(body, stream)


def is_accounted(method: Any) -> bool:
    """Whether a provider call must belong to a client request: a generation call."""
    return str(method or "POST").upper() == "POST"


def attach_upstream(
    pairs: Iterable[tuple[int, str | None, float, float]],
    captures: Mapping[str, list[dict[str, Any]]],
) -> Attached:
    """Assign captured upstream calls to pairs. Pure.

    ``pairs``: ``(pair id, correlation key, received_at, duration seconds)``.
    ``captures``: target -> the sandbox's captured requests (with ``time`` and ``seq``).
    """
    ordered = sorted(pairs, key=lambda p: p[2])
    # Per key, when the next request with that key arrived: its calls start there.
    next_arrival: dict[int, float] = {}
    last_of_key: dict[str, int] = {}
    for index, (_, key, received_at, _) in enumerate(ordered):
        if key is None:
            continue
        if key in last_of_key:
            next_arrival[last_of_key[key]] = received_at - _SLACK_BEFORE_S
        last_of_key[key] = index
    result: dict[int, dict[str, list[dict[str, Any]]]] = {}
    unattached: dict[str, list[dict[str, Any]]] = {}
    for target, items in captures.items():
        pool: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for capture in sorted(items, key=lambda c: (c.get("time", 0.0), c.get("seq", 0))):
            if is_accounted(capture.get("method")):
                pool[call_key(capture.get("body"))].append(capture)
        for index, (pair_id, key, received_at, duration) in enumerate(ordered):
            mine: list[dict[str, Any]] = []
            if key is not None:
                start = received_at - _SLACK_BEFORE_S
                end = min(
                    received_at + duration + _SLACK_AFTER_S,
                    next_arrival.get(index, float("inf")),
                )
                waiting = pool.get(key, [])
                mine = [c for c in waiting if start <= c.get("time", 0.0) < end]
                if mine:
                    pool[key] = [c for c in waiting if not any(c is m for m in mine)]
            result.setdefault(pair_id, {})[target] = mine
        left = [c for calls in pool.values() for c in calls]
        unattached[target] = sorted(left, key=lambda c: (c.get("time", 0.0), c.get("seq", 0)))
    for pair_id, *_ in ordered:
        result.setdefault(pair_id, {})
    return Attached(result, unattached)


def split_repeat(
    calls: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A target's calls for a pair that also sent it the A/A repeat: (the mirror's, the
    repeat's). The repeat is sent once the mirror was answered, so its calls come last:
    the last answered call and the retries before it. Pure."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for call in calls:
        current.append(call)
        if not retryable(call):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    if len(groups) < 2:
        return calls, []
    return [c for group in groups[:-1] for c in group], groups[-1]
