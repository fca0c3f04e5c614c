"""Provider calls as the store keeps them, whoever saw them: one record shape for all.

The sandbox captures what reaches it (:mod:`harness.sandbox.capture`); in replay mode the
primary's calls come from the tap on its upstream session and the mirror side's from the
replay upstream. All become the same dict (the sandbox's ``CaptureRecord``), secrets
masked the same way, so the report's upstream gates read one shape, with or without a
sandbox behind the proxies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.sandbox.capture import CaptureStore as _Masker
from harness.sandbox.endpoints import match_route

if TYPE_CHECKING:  # the shadow package imports this module: no import cycle at run time
    from harness.shadow.replay_upstream import ReceivedCall
    from harness.shadow.upstream_tap import CallRecord

__all__ = ["REPLAY_MISS", "miss_record", "received_record", "tapped_record"]

# Set on a call the replay upstream could not answer (no recorded call of the primary's
# to replay): it was answered 502 there and never forwarded, so it reached no provider.
REPLAY_MISS = "replay_miss"


def tapped_record(call: CallRecord, began: float | None, received_at: float) -> dict[str, Any]:
    """A primary's call; ``began``/``received_at``: the primary's clock and the wall clock
    when the client request arrived, to date the call."""
    started, method, url, headers, body, status, answer, _, _, ended_at, error = call
    parts = urlsplit(url)
    record = _record(method, parts.path, parts.query, headers, body, status, answer)
    record["time"] = received_at + (started - began if began is not None else 0.0)
    if ended_at is not None:
        record["duration_ms"] = round((ended_at - started) * 1000, 3)
    record["outcome"] = "completed" if error is None else error
    record["completed"] = error is None
    return record


def received_record(call: ReceivedCall) -> dict[str, Any]:
    """A call the mirror side sent the replay upstream."""
    record = _record(
        call.method,
        call.path,
        call.query,
        call.headers,
        call.body,
        call.status,
        call.answer_headers,
    )
    record["time"] = call.time
    record["duration_ms"] = round(call.duration_ms, 3)
    record["outcome"] = "completed"
    record["completed"] = True
    return record


def miss_record(call: ReceivedCall) -> dict[str, Any]:
    """A call of the mirror side that no mirrored request claimed: a replay miss."""
    record = received_record(call)
    record[REPLAY_MISS] = True
    return record


def _record(
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    status: int | None,
    answer: list[tuple[str, str]],
) -> dict[str, Any]:
    captured = _Masker(limit=1).record(
        method=method, path=path, query=query, headers=headers, body=body
    )
    parsed = captured.body
    captured.stream = isinstance(parsed, dict) and parsed.get("stream") is True
    captured.status = status
    captured.cookie_issued = any(k.lower() == "set-cookie" for k, _ in answer)
    # Named as the sandbox names what it serves, so the gates read the provider family
    # and the provider's request id the same way with or without a sandbox behind.
    route = match_route(path)
    captured.endpoint = route.name if route is not None else None
    answered = {k.lower(): v for k, v in answer}
    captured.request_id = answered.get("request-id") or answered.get("x-request-id")
    return captured.to_dict()
