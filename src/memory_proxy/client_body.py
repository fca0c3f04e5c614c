"""The client's request body twice over: parsed (to check and route it) and as it came.

A pass-through sends the client's own bytes on when they need no change, which is the
usual case: Claude Code names models by their provider ids, and its bodies (system
prompt, tools, history) run to hundreds of kilobytes that ``json.dumps`` would otherwise
re-encode on every turn. Only when the model id differs, or the deployment adds default
parameters, is the body encoded again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import Message, Receive

from memory_proxy.request_body import read_json_body

__all__ = ["ClientBody", "read_client_body"]


class ClientBody:
    """``parsed``: the checked JSON object; ``raw``: the bytes it was parsed from."""

    def __init__(self, parsed: dict[str, Any], raw: bytes) -> None:
        self.parsed = parsed
        self.raw = raw

    def for_upstream(self, model_id: str, defaults: Mapping[str, Any] | None = None) -> bytes:
        """The body to send: ``model`` set to ``model_id``, ``defaults`` under the client's."""
        if self.parsed.get("model") == model_id and not defaults:
            return self.raw
        payload = {**(defaults or {}), **self.parsed, "model": model_id}
        return json.dumps(payload, ensure_ascii=False).encode()


class _Tee:
    """A ``receive`` that keeps a copy of the body parts it hands out."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.parts: list[bytes] = []

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.parts.append(message.get("body", b""))
        return message


async def read_client_body(request: Request, limit: int) -> ClientBody:
    """``read_json_body`` (size cap, JSON, refused parameters), keeping the raw bytes."""
    tee = _Tee(request.receive)
    parsed = await read_json_body(Request(request.scope, tee), limit)
    return ClientBody(parsed, b"".join(tee.parts))
