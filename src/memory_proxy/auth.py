"""Client authentication against ``general_settings.master_key``."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from memory_proxy.errors import AuthenticationFailed

__all__ = ["client_key", "require_master_key"]


def client_key(headers: Mapping[str, str]) -> str | None:
    """The key a client presented: ``x-api-key`` or ``Authorization: Bearer``."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def require_master_key(headers: Mapping[str, str], master_key: str | None) -> None:
    """Raise :class:`AuthenticationFailed` unless the request carries the master key."""
    if not master_key:
        return
    presented = client_key(headers)
    if presented is None:
        raise AuthenticationFailed(
            "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
        )
    # Constant-time: the comparison must not reveal how much of a guess was right.
    if not hmac.compare_digest(presented.encode(), master_key.encode()):
        raise AuthenticationFailed("invalid API key")
