"""A client for the sandbox provider's control endpoints (``/_sandbox/...``)."""

from __future__ import annotations

import time
from typing import Any

import httpx

__all__ = ["SandboxControl"]


class SandboxControl:
    """Read what reached the sandbox, reset it, and set its faults."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        reply = self._http.get("/_sandbox/requests", params={"since": since})
        reply.raise_for_status()
        return list(reply.json()["requests"])

    def api_requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Captured requests to the provider APIs (control calls excluded)."""
        return [r for r in self.requests(since) if r.get("endpoint")]

    def settled_api_requests(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """``api_requests`` once each has its outcome. The sandbox marks a stream over
        after its last write, and a client that read the final event can ask before
        that; a stream still open at ``timeout`` is returned as it is."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.api_requests()
            if all(r.get("completed") is not None for r in found):
                return found
            if time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def latest_seq(self) -> int:
        captured = self.requests()
        return max((int(r["seq"]) for r in captured), default=0)

    def reset(self) -> None:
        self._http.post("/_sandbox/reset").raise_for_status()

    def set_faults(self, **faults: Any) -> None:
        self._http.put("/_sandbox/faults", json=faults).raise_for_status()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
