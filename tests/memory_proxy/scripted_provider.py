"""A provider that answers with scripted bytes, for differential tests of translation.

The sandbox renders one text reply or one tool call; the translation must also hold for
what it never sends (parallel tool calls, cache tokens, thinking, a stream error after
the first event). Here each test sets the exact Anthropic or OpenAI reply (JSON, or SSE
events) and every request is kept, so the same reply can be fed to two paths (the
proxy's and litellm's own) and what each sent compared too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = [
    "ScriptedProvider",
    "Scripted",
    "anthropic_events",
    "openai_chunks",
    "sse",
]


@dataclass
class Scripted:
    """One reply: status, body (bytes) and whether it is an event stream."""

    body: bytes
    status: int = 200
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class ScriptedProvider:
    """An ASGI app: every POST gets ``reply``; ``requests`` holds (path, headers, body)."""

    def __init__(self) -> None:
        self.reply = Scripted(b"{}")
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.app = Starlette(
            routes=[Route("/{path:path}", self._answer, methods=["POST"])],
        )

    async def _answer(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append((request.url.path, dict(request.headers), json.loads(body or b"{}")))
        reply = self.reply
        media = "text/event-stream" if reply.stream else "application/json"
        return Response(
            reply.body, status_code=reply.status, media_type=media, headers=reply.headers
        )


def sse(events: Sequence[tuple[str | None, Any]]) -> bytes:
    """``(event name or None, data)`` pairs as SSE bytes; data is JSON unless a str."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {text}\n\n")
    return "".join(out).encode()


def anthropic_events(message: dict[str, Any], *, split: int = 7) -> list[tuple[str, Any]]:
    """A Messages ``message`` as the stream the API sends for it.

    Text and thinking arrive in pieces of ``split`` characters, tool input as
    ``input_json_delta`` pieces of the same size; usage as the API reports it
    (``message_start`` with the input side, ``message_delta`` with the output).
    """
    usage = dict(message["usage"])
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**usage, "output_tokens": 1}
    events: list[tuple[str, Any]] = [("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            shell: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], split)]
        elif kind == "thinking":
            shell = {"type": "thinking", "thinking": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], split)
            ]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:
            shell = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in _pieces(json.dumps(block["input"]), split)
            ]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": shell},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        ]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta_usage = {"output_tokens": usage["output_tokens"]}
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": message.get("stop_sequence"),
                },
                "usage": delta_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def openai_chunks(
    completion: dict[str, Any], *, split: int = 7, usage: bool = True
) -> list[tuple[None, Any]]:
    """A Chat Completions ``completion`` as its stream (``[DONE]`` last)."""
    base = {k: completion[k] for k in ("id", "object", "created", "model")}
    base["object"] = "chat.completion.chunk"
    base["system_fingerprint"] = completion.get("system_fingerprint")
    message = completion["choices"][0]["message"]
    chunks: list[dict[str, Any]] = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    for piece in _pieces(message.get("content") or "", split):
        chunks.append(
            {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        )
    for i, call in enumerate(message.get("tool_calls") or []):
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}],
            }
        )
        for piece in _pieces(call["function"]["arguments"], split):
            part = {"index": i, "function": {"arguments": piece}}
            chunks.append(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [part]}, "finish_reason": None}
                    ],
                }
            )
    finish = completion["choices"][0]["finish_reason"]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return [(None, c) for c in chunks] + [(None, "[DONE]")]


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []
