"""The format-neutral view of a generation request that replies are planned from.

``anthropic_api`` and ``openai_api`` each read their wire format into a ``Prompt``; the
reply planner never sees JSON shapes. Everything here is pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Prompt",
    "ToolChoice",
    "ToolResult",
    "ToolSpec",
    "canonical_json",
    "content_pieces",
    "content_text",
    "count_input_tokens",
    "estimate_tokens",
    "request_digest",
]

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class ToolSpec:
    """A tool the caller offers: its name and JSON schema for the arguments."""

    name: str
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolChoice:
    """How the caller constrains tool use, in Anthropic's vocabulary.

    ``auto`` (may call), ``none`` (must not), ``any`` (must call some tool; OpenAI's
    ``required``), ``tool`` (must call ``name``).
    """

    mode: Literal["auto", "none", "any", "tool"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """The tool output the conversation ends with; ``name`` is resolved from the call."""

    name: str | None
    text: str


@dataclass(frozen=True)
class Prompt:
    """What the reply depends on: the digest, the last user words, tools and limits."""

    model: str
    digest: str
    last_user_text: str = ""
    tool_result: ToolResult | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    input_tokens: int = 1
    max_tokens: int | None = None


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: sorted keys, no spaces, unicode kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_digest(body: dict[str, Any]) -> str:
    """sha256 over the parts of a request that decide its reply's text and ids.

    Only model, messages, system and tools: fields such as ``metadata``, ``stream`` or
    ``temperature`` must not change the words, so a streamed and a non-streamed request
    get the same reply.
    """
    parts = {key: body.get(key) for key in ("model", "messages", "system", "tools")}
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def estimate_tokens(text: str) -> int:
    """About one token per four characters (rounded up), like tokenizer rules of thumb."""
    return -(-len(text) // CHARS_PER_TOKEN)


def count_input_tokens(pieces: Iterable[str], messages: int) -> int:
    """Tokens for the text pieces plus three per message for the role framing."""
    return max(1, estimate_tokens("\n".join(pieces)) + 3 * messages)


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` parts of a block list."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ]
    return "\n".join(texts)


def content_pieces(content: Any) -> list[str]:
    """Every part of a content value as text, for token counting (non-text as JSON)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return [canonical_json(content)]
    pieces: list[str] = []
    for block in content:
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            pieces.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            pieces.extend(content_pieces(block.get("content")))
        else:
            pieces.append(canonical_json(block))
    return pieces
