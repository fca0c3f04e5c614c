"""Reply planning: what the sandbox "model" says, decided without any I/O.

A reply is either text or one tool call. The words come from a small vocabulary drawn
with an RNG seeded by ``entropy``: the request digest by default (so the same request
always gets the same reply, ids and token counts) or fresh randomness per request in
nondeterministic mode. The text opens with an echo of the last user words (or of the
tool result), so a test can see that the reply relates to its input.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from harness.sandbox.directives import strip_directives
from harness.sandbox.prompt import Prompt, ToolSpec, canonical_json, estimate_tokens
from harness.sandbox.tool_args import arguments_from_schema

__all__ = ["Reply", "ToolCall", "choose_tool", "plan_reply", "reply_text"]

StopReason = Literal["end_turn", "tool_use", "max_tokens"]

_ECHO_WORDS = 8
_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# A fixed epoch plus a digest-derived offset: a plausible ``created`` that is still a
# pure function of the request.
_CREATED_BASE = 1_700_000_000
_CREATED_SPAN = 50_000_000

_VOCABULARY = (
    "the sandbox answers every request with a short reply built from plain words "
    "so that tests can compare proxies without calling a real model provider "
    "streams arrive in small pieces and each piece carries a few words of text "
    "latency faults rate limits and overloads can be injected on purpose "
    "memory context travels through the router before it reaches the provider "
    "tokens are estimated from characters and usage numbers stay consistent "
    "deterministic output keeps comparisons stable across repeated runs"
).split()


@dataclass(frozen=True)
class ToolCall:
    """One tool invocation: ``token`` becomes ``toolu_<token>`` / ``call_<token>``."""

    token: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return canonical_json(self.arguments)


@dataclass(frozen=True)
class Reply:
    """The planned assistant turn, rendered by each API format in its own shape."""

    token: str
    created: int
    text: str
    tool_call: ToolCall | None
    stop_reason: StopReason
    input_tokens: int
    output_tokens: int


def choose_tool(prompt: Prompt) -> ToolSpec | None:
    """The tool to call, or None for a text reply.

    A tool is called when tools are offered, the conversation does not end in a tool
    result, and either ``tool_choice`` forces one or the last user text names one (whole
    word, case-sensitive, so "read the file" does not trigger a tool called ``Read``).
    """
    choice = prompt.tool_choice
    if not prompt.tools or prompt.tool_result is not None or choice.mode == "none":
        return None
    if choice.mode == "tool":
        return next((t for t in prompt.tools if t.name == choice.name), None)
    text = strip_directives(prompt.last_user_text)
    for tool in prompt.tools:
        if re.search(rf"(?<![\w-]){re.escape(tool.name)}(?![\w-])", text):
            return tool
    return prompt.tools[0] if choice.mode == "any" else None


def plan_reply(prompt: Prompt, entropy: str | None = None, created: int | None = None) -> Reply:
    """The reply to ``prompt``.

    ``entropy`` (hex) seeds the words and ids and defaults to the prompt's digest;
    ``created`` defaults to a timestamp derived from it.
    """
    entropy = entropy or prompt.digest
    rng = random.Random(entropy)
    token = _token(rng, 24)
    if created is None:
        created = _CREATED_BASE + int(entropy[:8], 16) % _CREATED_SPAN
    tool = choose_tool(prompt)
    if tool is not None:
        call = ToolCall(_token(rng, 24), tool.name, arguments_from_schema(tool.schema))
        output = estimate_tokens(tool.name) + estimate_tokens(call.arguments_json)
        return Reply(token, created, "", call, "tool_use", prompt.input_tokens, max(1, output))
    text = reply_text(prompt, rng)
    stop: StopReason = "end_turn"
    output = estimate_tokens(text)
    if prompt.max_tokens is not None and output > prompt.max_tokens:
        text = _truncate(text, prompt.max_tokens)
        output = prompt.max_tokens
        stop = "max_tokens"
    return Reply(token, created, text, None, stop, prompt.input_tokens, max(1, output))


def reply_text(prompt: Prompt, rng: random.Random) -> str:
    """An echo sentence followed by two to four sentences of vocabulary words."""
    sentences: list[str] = []
    if prompt.tool_result is not None:
        name = prompt.tool_result.name or "tool"
        echo = _first_words(prompt.tool_result.text)
        sentences.append(f'The {name} tool returned: "{echo}".')
    else:
        echo = _first_words(strip_directives(prompt.last_user_text))
        if echo:
            sentences.append(f'You said: "{echo}".')
    for _ in range(rng.randint(2, 4)):
        words = [rng.choice(_VOCABULARY) for _ in range(rng.randint(6, 12))]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def _first_words(text: str) -> str:
    words = text.split()
    echo = " ".join(words[:_ECHO_WORDS])
    return echo + " ..." if len(words) > _ECHO_WORDS else echo


def _truncate(text: str, max_tokens: int) -> str:
    """The longest whole-word prefix within ``max_tokens`` (at least one character)."""
    limit = max(1, max_tokens * 4)
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > 0 else cut


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(length))
