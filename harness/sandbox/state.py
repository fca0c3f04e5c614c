"""The sandbox's mutable state, owned by one app: captures, cookies, faults, RNGs."""

from __future__ import annotations

import hashlib
import random
import time

from harness.sandbox.capture import CaptureStore
from harness.sandbox.cloudflare import CookieIssuer
from harness.sandbox.faults import FaultInjector
from harness.sandbox.settings import SandboxSettings

__all__ = ["SandboxState"]


class SandboxState:
    """Everything ``POST /_sandbox/reset`` puts back to how the settings started it."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.captures = CaptureStore(settings.capture_limit)
        self.cookies = CookieIssuer(settings.seed)
        self.faults = FaultInjector(settings.faults, settings.seed)
        self._reply_rng = random.Random(f"replies:{settings.seed}")
        self._exchanges = 0

    def next_request_id(self) -> str:
        """A per-exchange id (``req_...``); unlike reply ids it differs on every request."""
        self._exchanges += 1
        seed = f"sandbox-request:{self.settings.seed}:{self._exchanges}"
        return "req_" + hashlib.sha256(seed.encode()).hexdigest()[:24]

    def reply_entropy(self) -> tuple[str | None, int | None]:
        """(entropy, created) for the next reply: None, None means "derive from the request"."""
        if not self.settings.nondeterministic:
            return None, None
        return f"{self._reply_rng.getrandbits(128):032x}", int(time.time())

    def reset(self) -> None:
        """Clear captures, invalidate issued cookies, restore faults and RNGs."""
        self.captures.clear()
        self.cookies.reset()
        self.faults.reset(self.settings.faults)
        self._reply_rng = random.Random(f"replies:{self.settings.seed}")
