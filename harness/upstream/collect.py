"""Fetch the sandboxes' captures and record each pair's upstream calls in the store."""

from __future__ import annotations

from collections.abc import Mapping

from harness.redaction import Redactor
from harness.sandbox.client import SandboxControl
from harness.store.capture_store import CaptureStore
from harness.upstream.join import attach_upstream

__all__ = ["collect_upstream"]


def collect_upstream(
    store: CaptureStore,
    sandboxes: Mapping[str, str],
    redactor: Redactor,
    suffixes: Mapping[str, str] | None = None,
) -> int:
    """``sandboxes``: target name -> the URL of the sandbox that target called;
    ``suffixes``: target -> the memory-id suffix live mirroring gave its calls."""
    captures = {}
    for target, url in sandboxes.items():
        with SandboxControl(url) as control:
            captures[target] = [c for c in control.requests() if c.get("endpoint")]
    windows = []
    for stored in store.iter_pairs():
        request = stored.pair.request
        durations = [
            (o.total_ms or 0.0) / 1000
            for o in (stored.pair.primary, stored.pair.shadow, stored.pair.shadow_repeat)
            if o is not None
        ]
        windows.append((stored.id, request.correlation_key, request.received_at, max(durations)))
    assigned = attach_upstream(windows, captures, suffixes)
    redacted = {
        pair_id: {t: [redactor.redact_upstream(c) for c in calls] for t, calls in per.items()}
        for pair_id, per in assigned.items()
    }
    return store.set_upstream(redacted)
