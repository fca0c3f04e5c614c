"""What each proxy sent the provider, fetched and attached to the captured pairs."""

from __future__ import annotations

from harness.upstream.collect import collect_upstream
from harness.upstream.join import attach_upstream

__all__ = ["attach_upstream", "collect_upstream"]
