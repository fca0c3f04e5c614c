"""The provider's response headers on litellm's paths, read off the shared HTTP client.

litellm keeps a provider's headers for some calls (``_hidden_params``) but not for
others: ``litellm.anthropic_messages`` translated to another provider returns a plain
dict, and its stream's hidden headers are empty. Every litellm call of this proxy goes
through one ``httpx.AsyncClient`` (see ``session.py``), so a response hook there sees
each provider answer's head, stream or not, before its body. The handler opens a
:func:`header_tap` around its litellm call; the hook writes into it. A tap is a mutable
holder in a context variable, so calls litellm makes in tasks of its own still reach it;
a retry's answer replaces the one before.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = ["HeaderTap", "header_tap", "record_response_headers"]


class HeaderTap:
    """The last provider answer's headers, as (name, value) pairs."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []


_CURRENT: contextvars.ContextVar[HeaderTap | None] = contextvars.ContextVar(
    "memory_proxy_header_tap", default=None
)


@contextmanager
def header_tap() -> Iterator[HeaderTap]:
    tap = HeaderTap()
    token = _CURRENT.set(tap)
    try:
        yield tap
    finally:
        _CURRENT.reset(token)


async def record_response_headers(response: httpx.Response) -> None:
    """httpx ``response`` hook: the answer's head, into the running request's tap."""
    tap = _CURRENT.get()
    if tap is not None:
        tap.headers = list(response.headers.items())
