"""The Cloudflare edge in front of the real APIs: ``__cf_bm`` cookies and error 1200.

Both providers sit behind Cloudflare, which sets a ``__cf_bm`` bot-management cookie on
responses; a client that drops cookies can be refused at the edge. The issuer signs its
tokens (counter + MAC) instead of storing them, so validating costs no memory however
many are issued; ``reset`` starts a new epoch that invalidates every earlier token.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["CF_COOKIE", "CLOUDFLARE_1200_BODY", "CookieIssuer", "parse_cookie_header"]

CF_COOKIE = "__cf_bm"
CLOUDFLARE_1200_BODY = "error code: 1200"


class CookieIssuer:
    """Issues and checks ``__cf_bm`` tokens."""

    def __init__(self, seed: int = 0) -> None:
        self._key = hashlib.sha256(f"sandbox-cf:{seed}".encode()).digest()
        self._epoch = 0
        self.issued = 0

    def issue(self) -> str:
        self.issued += 1
        return f"sbx{self._epoch}.{self.issued}.{self._mac(self._epoch, self.issued)}"

    def is_valid(self, token: str | None) -> bool:
        if not token:
            return False
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].startswith("sbx"):
            return False
        epoch, number, mac = parts[0][3:], parts[1], parts[2]
        if not (epoch.isdigit() and number.isdigit()) or int(epoch) != self._epoch:
            return False
        return 0 < int(number) <= self.issued and hmac.compare_digest(
            mac, self._mac(int(epoch), int(number))
        )

    def set_cookie_header(self, token: str) -> str:
        # No Secure attribute: the sandbox speaks plain HTTP on loopback, and clients
        # would never send a Secure cookie back over it.
        return f"{CF_COOKIE}={token}; path=/; HttpOnly"

    def reset(self) -> None:
        self._epoch += 1
        self.issued = 0

    def _mac(self, epoch: int, number: int) -> str:
        return hmac.new(self._key, f"{epoch}.{number}".encode(), hashlib.sha256).hexdigest()[:32]


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """Cookie name → value from a ``Cookie`` header (pairs without ``=`` are skipped)."""
    cookies: dict[str, str] = {}
    for pair in (header or "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name:
            cookies[name.strip()] = value.strip().strip('"')
    return cookies
