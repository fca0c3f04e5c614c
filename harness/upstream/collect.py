"""Fetch the sandboxes' captures and record each pair's upstream calls in the store; the
calls no pair claimed are kept as unattached, never dropped."""

from __future__ import annotations

from collections.abc import Mapping

from harness.redaction import Redactor
from harness.sandbox.client import SandboxControl
from harness.store.capture_store import CaptureStore
from harness.upstream.join import REPEAT_SUFFIX, attach_upstream, split_repeat

__all__ = ["collect_upstream"]


def collect_upstream(store: CaptureStore, sandboxes: Mapping[str, str], redactor: Redactor) -> int:
    """``sandboxes``: target name -> the URL of the sandbox that target called."""
    captures = {}
    for target, url in sandboxes.items():
        with SandboxControl(url) as control:
            captures[target] = [c for c in control.requests() if c.get("endpoint")]
    windows = []
    repeated: dict[int, str] = {}  # pair id -> the target its A/A repeat went to
    for stored in store.iter_pairs():
        if stored.pair.shadow_repeat is not None:
            repeated[stored.id] = stored.pair.shadow_repeat.target
        request = stored.pair.request
        durations = [
            (o.total_ms or 0.0) / 1000
            for o in (stored.pair.primary, stored.pair.shadow, stored.pair.shadow_repeat)
            if o is not None
        ]
        windows.append((stored.id, request.correlation_key, request.received_at, max(durations)))
    attached = attach_upstream(windows, captures)
    for pair_id, target in repeated.items():
        per = attached.calls.get(pair_id, {})
        if target in per:
            per[target], repeat = split_repeat(per[target])
            per[target + REPEAT_SUFFIX] = repeat
    redacted = {
        pair_id: {t: [redactor.redact_upstream(c) for c in calls] for t, calls in per.items()}
        for pair_id, per in attached.calls.items()
    }
    for target, calls in attached.unattached.items():
        store.add_unattached(target, calls)
    return store.set_upstream(redacted)
