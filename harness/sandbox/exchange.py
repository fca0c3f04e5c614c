"""One request/response on an API path: its capture record, request id, cookie, headers.

Every response the API side sends is built here, so each one carries the format's
request-id header and, when the client came without a valid ``__cf_bm``, a fresh
``Set-Cookie``, and each one reports back to the capture record when it is over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from harness.sandbox.capture import CaptureRecord
from harness.sandbox.cloudflare import CF_COOKIE, CLOUDFLARE_1200_BODY, parse_cookie_header
from harness.sandbox.errors import ApiError
from harness.sandbox.faults import FaultPlan
from harness.sandbox.formats import ProviderFormat
from harness.sandbox.sse import SseEvent
from harness.sandbox.state import SandboxState
from harness.sandbox.streaming import EventStreamResponse, FinishedResponse

__all__ = ["ApiExchange"]


class ApiExchange:
    """Builds the responses for one API request and records how it was answered."""

    def __init__(
        self,
        state: SandboxState,
        record: CaptureRecord,
        api_format: ProviderFormat,
        cookie_header: str | None,
    ) -> None:
        self.record = record
        self.format = api_format
        self.request_id = state.next_request_id()
        record.request_id = self.request_id
        issuer = state.cookies
        valid = issuer.is_valid(parse_cookie_header(cookie_header).get(CF_COOKIE))
        # The edge can only insist on a cookie once it has handed one out.
        self.blocked = state.settings.require_cookie and issuer.issued > 0 and not valid
        self._set_cookie = None if valid else issuer.set_cookie_header(issuer.issue())
        record.cookie_valid = valid
        record.cookie_issued = self._set_cookie is not None

    def headers(self, extra: Mapping[str, str] | None = None, status: int = 200) -> dict[str, str]:
        headers = {
            self.format.request_id_header: self.request_id,
            **self.format.rate_limit_headers(status),
        }
        if self._set_cookie is not None:
            headers["set-cookie"] = self._set_cookie
        headers.update(extra or {})
        return headers

    def json(
        self,
        payload: Any,
        *,
        status: int = 200,
        malformed: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        if malformed:
            body = body[: max(1, len(body) // 2)]
        return self._whole(body, status, "application/json", headers)

    def error(self, error: ApiError) -> Response:
        body = self.format.error_body(error, self.request_id)
        return self.json(body, status=error.status, headers=self.format.error_headers(error))

    def cloudflare(self) -> Response:
        """Cloudflare's edge refusal: plain text, not the API's JSON envelope."""
        extra = {"server": "cloudflare", "cf-ray": f"{self.request_id[4:20]}-SBX"}
        self.record.status = 503
        # The edge's answer: not the provider's rate-limit headers.
        headers = {self.format.request_id_header: self.request_id, **extra}
        if self._set_cookie is not None:
            headers["set-cookie"] = self._set_cookie
        return FinishedResponse(
            CLOUDFLARE_1200_BODY.encode(),
            status_code=503,
            headers=headers,
            media_type="text/plain",
            on_finish=self.record.finish,
        )

    def stream(self, events: Sequence[SseEvent], plan: FaultPlan) -> Response:
        if plan.malformed:
            # Corrupt the first content delta; later events stay intact, like a bad frame.
            index = next((i for i, e in enumerate(events) if e.opens_content), 0)
            events = [*events[:index], events[index].truncated(), *events[index + 1 :]]
        if plan.stream_error_after is not None and plan.stream_error_after < len(events):
            events = [*events[: plan.stream_error_after], self.format.stream_error_event()]
        self.record.status = 200
        return EventStreamResponse(
            events,
            headers=self.headers(),
            on_finish=self.record.finish,
            ttft_s=plan.ttft_s,
            chunk_delay_s=plan.chunk_delay_s,
            cut_after=plan.cut_point(len(events)),
            stall_after=plan.stall_after,
            silence_s=plan.silence_s,
            silence_after=plan.silence_after,
        )

    def _whole(
        self, body: bytes, status: int, media_type: str, extra: Mapping[str, str] | None
    ) -> Response:
        self.record.status = status
        return FinishedResponse(
            body,
            status_code=status,
            headers=self.headers(extra, status),
            media_type=media_type,
            on_finish=self.record.finish,
        )
