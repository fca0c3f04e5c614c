"""Request headers that belong to one connection, not to the request a proxy passes on."""

from __future__ import annotations

__all__ = ["HOP_BY_HOP_HEADERS"]

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
    }
)
