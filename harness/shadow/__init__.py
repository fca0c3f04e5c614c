"""Shadow mode: serve clients from the primary proxy, mirror each request to the other.

``ShadowMirror`` is ASGI middleware around the primary app (the in-process SDK proxy, or
a forwarder to the legacy proxy's URL). The client's answer is the primary's, untouched;
mirroring runs on bounded background workers and writes both answers to the store.
"""

from __future__ import annotations

from harness.shadow.mirror import MirrorStats, ShadowMirror

__all__ = ["MirrorStats", "ShadowMirror"]
