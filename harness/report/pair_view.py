"""One captured pair, drilled down for a reader (pure): :class:`~.model.PairView`.

The client's request (redacted), both answers (a stream as its assembled message and its
event sequence), the field-level differences (the accepted ones marked with their rule)
and each side's provider calls, one line each. Every value is redacted again with the
config's secrets and cut at ``VALUE_CHARS``: a report must stay readable and never carry
a key. ``harness show`` and the report's drill-down both lay out this view.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from harness.compare import Difference, Verdict
from harness.compare.normalize import ENDPOINTS
from harness.observation import CapturedPair, Observation
from harness.redaction import Redactor
from harness.report.model import PairDifference, PairSide, PairView
from harness.report.outcomes import outcome_label
from harness.sse import assemble, event_sequence

__all__ = ["VALUE_CHARS", "pair_view"]

VALUE_CHARS = 4000  # per shown value (a request body, an answer)
_DIFF_CHARS = 400  # per side of one difference
_ROUTING = ("x-sm-user-id", "x-sm-conversation-id")


def _text(value: Any, redactor: Redactor, limit: int) -> str:
    value = redactor.redact(value)
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status(observation: Observation) -> str:
    if observation.status is None or observation.error is not None:
        return outcome_label(observation)
    return str(observation.status)


def _answer(observation: Observation, endpoint: str, redactor: Redactor) -> tuple[str, str]:
    """(the answer, the event sequence): a stream is assembled as a client would."""
    if observation.events is None:
        return _text(observation.body, redactor, VALUE_CHARS), ""
    shape = ENDPOINTS.get(endpoint)
    fmt = (shape.stream_format if shape is not None else None) or "openai"
    events = list(observation.events)
    try:
        message: Any = assemble(events, fmt)
    except Exception as exc:  # a malformed stream is shown, not fatal
        message = f"<stream could not be assembled: {type(exc).__name__}>"
    sequence = " → ".join(event_sequence(events, fmt))
    return _text(message, redactor, VALUE_CHARS), sequence


def _call_line(call: Any, redactor: Redactor) -> str:
    if not isinstance(call, Mapping):
        return "<unreadable call>"
    headers = call.get("headers")
    lowered = (
        {str(k).lower(): v for k, v in headers.items()} if isinstance(headers, Mapping) else {}
    )
    routing = ", ".join(f"{name}={lowered.get(name, '<missing>')}" for name in _ROUTING)
    cookies = call.get("cookies")
    parts = [
        f"{call.get('method', '?')} {call.get('path', '?')}",
        f"-> {call.get('status', '?')}",
        routing,
        f"cookies {','.join(map(str, cookies)) if isinstance(cookies, list) and cookies else '-'}",
    ]
    if isinstance(call.get("duration_ms"), int | float):
        parts.append(f"{call['duration_ms']:.0f} ms")
    return _text("; ".join(parts), redactor, _DIFF_CHARS)


def _side(
    observation: Observation | None, pair: CapturedPair, redactor: Redactor
) -> PairSide | None:
    if observation is None:
        return None
    answer, events = _answer(observation, pair.request.endpoint, redactor)
    calls = pair.upstream.get(observation.target, [])
    return PairSide(
        target=observation.target,
        status=_status(observation),
        headers=_text(observation.headers, redactor, VALUE_CHARS),
        answer=answer,
        events=events,
        upstream=tuple(_call_line(c, redactor) for c in calls),
    )


def _difference(difference: Difference, note: str, redactor: Redactor) -> PairDifference:
    return PairDifference(
        difference.category,
        difference.path,
        _text(difference.primary, redactor, _DIFF_CHARS),
        _text(difference.candidate, redactor, _DIFF_CHARS),
        note,
    )


def pair_view(
    pair: CapturedPair,
    verdict: Verdict | None,
    redactor: Redactor,
    accepted: Iterable[tuple[str, Difference]] = (),
    note: str = "",
) -> PairView:
    """The pair as a reader sees it; ``verdict`` None when it was set apart, not compared;
    ``accepted``: (rule name, difference) the accept rules took out of the verdict."""
    request = pair.request
    shown = {
        "method": request.method,
        "path": request.path,
        "headers": request.headers,
        "body": request.body,
    }
    differences = (
        [_difference(d, d.detail, redactor) for d in verdict.differences or ()] if verdict else []
    )
    differences += [_difference(d, f"accepted: {rule}", redactor) for rule, d in accepted]
    if verdict is not None and verdict.skipped:
        note = note or verdict.skipped
    return PairView(
        pair_id=request.request_id,
        endpoint=request.endpoint,
        stream=request.stream,
        model=request.model,
        family=request.client_family,
        received_at=request.received_at,
        request=_text(shown, redactor, VALUE_CHARS),
        sdk=_side(pair.sdk, pair, redactor),
        legacy=_side(pair.legacy, pair, redactor),
        differences=tuple(differences),
        note=note,
    )
