"""Find what each proxy sent upstream for each captured client request.

With the sandbox as the provider, each proxy's upstream calls are in that sandbox's
capture list (the SDK proxy and the LiteLLM server each get their own sandbox, so a
capture's target is never in doubt). A client request and its upstream calls share a
correlation key: the memory user id, the text of the last user turn and the stream
flag. It survives the translation between the OpenAI and Anthropic formats, and holds
no prompt text (it is a hash). Calls are claimed in time order, within the request's
own time window: the first call after the request arrived, plus the calls that retried
it after a 429/503, so identical requests sent one after another each get their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from harness.observation import correlation_key

__all__ = ["attach_upstream"]

# Upstream calls may start a little before the pair's recorded arrival (clock reads on
# two processes) and end after the slower side finished.
_SLACK_BEFORE_S = 1.0
_SLACK_AFTER_S = 5.0
_RETRIED = (429, 503, 529)


def capture_key(capture: Mapping[str, Any], suffix: str = "") -> str | None:
    """``suffix``: what live mirroring appended to this target's memory user id (its
    memories kept apart from the user's); taken off here, the one place the join sees it,
    so both sides' calls key to the client request's own user id."""
    headers = capture.get("headers") or {}
    body = capture.get("body")
    stream = bool(body.get("stream")) if isinstance(body, dict) else False
    user_id = headers.get("x-sm-user-id")
    if suffix and isinstance(user_id, str):
        user_id = user_id.removesuffix(suffix)
    return correlation_key(user_id, body, stream)


def attach_upstream(
    pairs: Iterable[tuple[int, str | None, float, float]],
    captures: Mapping[str, list[dict[str, Any]]],
    suffixes: Mapping[str, str] | None = None,
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Assign captured upstream calls to pairs. Pure.

    ``pairs``: ``(pair id, correlation key, received_at, duration seconds)``.
    ``captures``: target -> the sandbox's captured requests (with ``time`` and ``seq``).
    ``suffixes``: target -> the memory-id suffix live mirroring gave its calls.
    Returns pair id -> target -> its upstream calls.
    """
    suffixes = suffixes or {}
    pools: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for target, items in captures.items():
        pool: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for capture in sorted(items, key=lambda c: (c.get("time", 0.0), c.get("seq", 0))):
            key = capture_key(capture, suffixes.get(target, ""))
            if key is not None:
                pool[key].append(capture)
        pools[target] = pool
    result: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for pair_id, key, received_at, duration in sorted(pairs, key=lambda p: p[2]):
        if key is None:
            continue
        start = received_at - _SLACK_BEFORE_S
        end = received_at + duration + _SLACK_AFTER_S
        claimed: dict[str, list[dict[str, Any]]] = {}
        for target, pool in pools.items():
            waiting = pool.get(key, [])
            mine: list[dict[str, Any]] = []
            for capture in waiting:
                if not start <= capture.get("time", 0.0) <= end:
                    continue
                mine.append(capture)
                # A retryable answer means the proxy's retry is the next call: claim it too.
                if capture.get("status") not in _RETRIED:
                    break
            if mine:
                pool[key] = [c for c in waiting if not any(c is m for m in mine)]
            claimed[target] = mine
        result[pair_id] = claimed
    return result
