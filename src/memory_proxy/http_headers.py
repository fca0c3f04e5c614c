"""Which headers a proxy passes on, each way, and which it must not (with the reason).

Request side: the client's ``anthropic-*`` and ``openai-*`` headers describe the call to
the provider (API version, betas, organization, project) and reach it unchanged, the few
in :data:`REQUEST_HEADERS_NOT_FORWARDED` excepted.

Response side: what the provider answered reaches the client, stream or not, on every
path: rate-limit state (``anthropic-ratelimit-unified-*``, which Claude Code reads on
every response for its usage display and, on a 429, to tell a plan limit from
throttling; OpenAI's ``x-ratelimit-*``), ``request-id`` / ``x-request-id``,
``x-should-retry``, ``openai-processing-ms``. Only :data:`RESPONSE_HEADERS_NOT_RELAYED`
stay behind. ``retry-after`` goes out in whole seconds: Claude Code reads it as a number
(and stops retrying above 60), so an HTTP-date is converted. Pure: no I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from types import MappingProxyType

__all__ = [
    "FORWARDED_REQUEST_PREFIXES",
    "HOP_BY_HOP_HEADERS",
    "REQUEST_HEADERS_NOT_FORWARDED",
    "RESPONSE_HEADERS_NOT_RELAYED",
    "forwarded_request_headers",
    "relayed_response_headers",
    "retry_after_seconds",
]

# RFC 9110's hop-by-hop fields, plus those the sender's HTTP client writes for the body and
# connection it actually sends (host, content-length, accept-encoding): a forwarder that
# copied them would describe the client's connection on its own. Lower case.
HOP_BY_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "accept-encoding",
        "proxy-authenticate",
        "proxy-authorization",
    }
)

# The client's headers with these prefixes are the provider's business: passed on to a
# provider of that family (an OpenAI deployment has no use for ``anthropic-beta``).
FORWARDED_REQUEST_PREFIXES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"anthropic": ("anthropic-",), "openai": ("openai-",)}
)

# ... except these, each for a reason. Lower case.
REQUEST_HEADERS_NOT_FORWARDED: Mapping[str, str] = MappingProxyType(
    {
        "anthropic-dangerous-direct-browser-access": (
            "tells the provider the key sits in a browser; the provider's key is the "
            "proxy's own, held server-side"
        ),
        "openai-organization": (
            "selects the billing organization of the caller's own OpenAI key; the "
            "deployment's key belongs to another account"
        ),
        "openai-project": "the same, for the caller's project",
    }
)

# Provider response headers the client does not get, and why. Lower case.
RESPONSE_HEADERS_NOT_RELAYED: Mapping[str, str] = MappingProxyType(
    {
        **{
            name: "hop-by-hop: describes the proxy's upstream connection"
            for name in (
                "connection",
                "keep-alive",
                "proxy-authenticate",
                "te",
                "trailer",
                "transfer-encoding",
                "upgrade",
            )
        },
        "set-cookie": "the cookie belongs to the proxy's upstream session (its one jar)",
        "content-length": "the body is re-framed: the proxy's server writes its own",
        "content-encoding": "the proxy's HTTP client has already decoded the body",
        "content-type": "the proxy sets the type of the body it sends",
        "date": "the proxy's server writes its own",
        "server": "the proxy's server writes its own",
    }
)

_RETRY_AFTER = "retry-after"


def forwarded_request_headers(headers: Mapping[str, str], provider: str) -> dict[str, str]:
    """The client's headers of ``provider``'s family (``anthropic-*``, ``openai-*``) that go
    on to it, every one but :data:`REQUEST_HEADERS_NOT_FORWARDED`."""
    prefixes = FORWARDED_REQUEST_PREFIXES.get(provider, ())
    forwarded: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(prefixes) and lower not in REQUEST_HEADERS_NOT_FORWARDED:
            forwarded[lower] = value
    return forwarded


def relayed_response_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], *, now: float | None = None
) -> dict[str, str]:
    """The provider's response headers as the client gets them (lower-case names).

    A header sent twice keeps its last value (none of the relayed ones repeats).
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    relayed: dict[str, str] = {}
    for name, value in pairs:
        lower = name.lower()
        if lower in RESPONSE_HEADERS_NOT_RELAYED:
            continue
        if lower == _RETRY_AFTER:
            seconds = retry_after_seconds(value, now=now)
            if seconds is None:
                continue  # unreadable: a client would misread it too
            value = str(seconds)
        relayed[lower] = value
    return relayed


def retry_after_seconds(value: str | None, *, now: float | None = None) -> int | None:
    """``Retry-After`` (delay-seconds or an HTTP-date) as whole seconds, rounded up."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0, math.ceil(float(text)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0, math.ceil(when.timestamp() - current))
