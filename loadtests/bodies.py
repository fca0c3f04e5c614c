"""Request bodies for load users, drawn from the replay corpus's expected successes.

Each pool holds the corpus entries one kind of user may send, already serialized for
its mode (stream or not), with ``$KEY`` replaced. :meth:`RequestPool.draw` picks a prompt
size class first (most prompts are short, some medium, a few long, as in real use),
then an entry of that class, so a run's mix does not depend on how many entries of each
size the corpus happens to hold.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.corpus import CorpusEntry

__all__ = ["PreparedRequest", "RequestPool", "build_pool"]

# (upper bound of the serialized body in bytes, share of requests) per size class.
SIZE_CLASSES: tuple[tuple[float, float], ...] = ((1024, 0.6), (3072, 0.3), (float("inf"), 0.1))
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class PreparedRequest:
    entry_id: str
    method: str
    path: str
    headers: dict[str, str]
    content: bytes
    user_agent: str


class RequestPool:
    """Prepared requests bucketed by size; ``draw`` is deterministic for a seeded rng."""

    def __init__(self, name: str, requests: Sequence[PreparedRequest]) -> None:
        if not requests:
            raise ValueError(f"load pool {name!r} is empty: the corpus has no such request")
        self.name = name
        self.requests = tuple(requests)
        self._buckets: list[tuple[float, list[PreparedRequest]]] = []
        lower = 0.0
        for upper, share in SIZE_CLASSES:
            members = [r for r in self.requests if lower <= len(r.content) < upper]
            if members:
                self._buckets.append((share, members))
            lower = upper

    def draw(self, rng: random.Random) -> PreparedRequest:
        shares = [share for share, _ in self._buckets]
        (_, members) = rng.choices(self._buckets, weights=shares)[0]
        return rng.choice(members)


def build_pool(
    name: str,
    entries: Sequence[CorpusEntry],
    *,
    key: str,
    include: Callable[[CorpusEntry], bool],
    stream: bool,
) -> RequestPool:
    """The pool of successful JSON entries ``include`` accepts, rewritten to ``stream``."""
    prepared = []
    for entry in entries:
        if not (entry.expects_success and isinstance(entry.body, dict) and include(entry)):
            continue
        body = dict(entry.body)
        body["stream"] = stream
        if not stream:
            body.pop("stream_options", None)
        headers = {
            k: v for k, v in entry.send_headers(key).items() if k.lower() not in _TRANSPORT_HEADERS
        }
        prepared.append(
            PreparedRequest(
                entry_id=entry.id,
                method=entry.method,
                path=entry.path,
                headers=headers,
                content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                user_agent=entry.user_agent or "",
            )
        )
    return RequestPool(name, prepared)
