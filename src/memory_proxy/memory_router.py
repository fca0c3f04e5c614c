"""Pick the memory user id (and conversation id) for a request from its headers. Pure.

Rules, in order, as in the proxy being migrated:

1. the custom header (default ``x-memory-user-id``), any value taken as is;
2. ``user_id_mappings.header_patterns``, then the built-in patterns for real clients:
   regex *search*, case-insensitive, first match wins;
3. ``default_user_id`` (default ``default-dev``).

Upstream, ``x-sm-user-id`` is always set; a conversation id from
``x-sm-conversation-id`` or Claude Code's ``x-claude-code-session-id`` becomes
``x-sm-conversation-id`` so Supermemory keeps one conversation together. Claude Code's
subagents run in parallel with histories of their own under one session id, and say so
with ``x-claude-code-agent-id``: given an ``agent_format`` (the SDK proxy's
``"{session}:{agent}"`` by default), each subagent gets its own conversation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_PATTERNS",
    "HeaderPattern",
    "MemoryRouter",
    "RoutingDecision",
    "UserIdMappings",
    "client_family",
    "sanitize_header_value",
]

USER_ID_HEADER = "x-sm-user-id"
CONVERSATION_HEADER = "x-sm-conversation-id"
CONVERSATION_SOURCES = ("x-sm-conversation-id", "x-claude-code-session-id")
SESSION_HEADER = "x-claude-code-session-id"
AGENT_HEADER = "x-claude-code-agent-id"
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class HeaderPattern:
    header: str  # lower-case header name
    pattern: re.Pattern[str]
    user_id: str


def _p(header: str, pattern: str, user_id: str) -> HeaderPattern:
    return HeaderPattern(header, re.compile(pattern, re.IGNORECASE), user_id)


# Real clients' User-Agents, as captured from each client. The migrated system's sample
# `^Claude Code` never matched Claude Code, whose User-Agent is
# `claude-cli/<version> (external, cli)` (or `(external, sdk-cli)`).
DEFAULT_PATTERNS: tuple[HeaderPattern, ...] = (
    _p("user-agent", r"^claude-cli/", "claude-code"),
    _p("user-agent", r"^Anthropic/Python", "anthropic-sdk"),
    _p("user-agent", r"^(Async)?OpenAI/Python", "openai-sdk"),
    _p("user-agent", r"^OpenAIClientImpl/Java|^openai-java", "jetbrains"),
    _p("user-agent", r"^curl/", "curl"),
)

# Client families for reports; the same User-Agent rules, independent of configured ids.
_FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (p.pattern, p.user_id) for p in DEFAULT_PATTERNS
)


@dataclass(frozen=True)
class UserIdMappings:
    custom_header: str = "x-memory-user-id"
    header_patterns: tuple[HeaderPattern, ...] = ()
    default_user_id: str = "default-dev"
    use_default_patterns: bool = True


@dataclass(frozen=True)
class RoutingDecision:
    user_id: str
    rule: Literal["custom_header", "header_pattern", "default"]
    matched_header: str | None = None
    matched_pattern: str | None = None
    conversation_id: str | None = None

    @property
    def is_default(self) -> bool:
        return self.rule == "default"

    def upstream_headers(self) -> dict[str, str]:
        headers = {USER_ID_HEADER: self.user_id}
        if self.conversation_id:
            headers[CONVERSATION_HEADER] = self.conversation_id
        return headers

    def describe(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "rule": self.rule,
            "matched_header": self.matched_header,
            "matched_pattern": self.matched_pattern,
            "is_default": self.is_default,
            "conversation_id": self.conversation_id,
        }


class MemoryRouter:
    def __init__(
        self, mappings: UserIdMappings | None = None, *, agent_format: str | None = None
    ) -> None:
        self.mappings = mappings or UserIdMappings()
        self.agent_format = agent_format
        patterns = self.mappings.header_patterns
        if self.mappings.use_default_patterns:
            patterns = patterns + DEFAULT_PATTERNS
        self.patterns = patterns

    def detect_user_id(self, headers: Mapping[str, str]) -> RoutingDecision:
        """Decide from ``headers`` (a case-insensitive mapping, e.g. Starlette's Headers)."""
        conversation_id = self._conversation_id(headers)
        custom = sanitize_header_value(headers.get(self.mappings.custom_header))
        if custom:
            return RoutingDecision(
                custom, "custom_header", self.mappings.custom_header, None, conversation_id
            )
        for rule in self.patterns:
            value = headers.get(rule.header)
            if value and rule.pattern.search(value):
                return RoutingDecision(
                    rule.user_id,
                    "header_pattern",
                    rule.header,
                    rule.pattern.pattern,
                    conversation_id,
                )
        return RoutingDecision(
            self.mappings.default_user_id, "default", None, None, conversation_id
        )

    def _conversation_id(self, headers: Mapping[str, str]) -> str | None:
        for name in CONVERSATION_SOURCES:
            value = sanitize_header_value(headers.get(name))
            if value:
                break
        else:
            value = None
        agent = sanitize_header_value(headers.get(AGENT_HEADER))
        if self.agent_format is None or agent is None or headers.get(CONVERSATION_HEADER):
            # An explicit x-sm-conversation-id is the client's own choice: kept as is.
            return value
        if value is None:
            return agent
        return sanitize_header_value(self.agent_format.format(session=value, agent=agent))

    def summary(self) -> dict[str, object]:
        return {
            "custom_header": self.mappings.custom_header,
            "default_user_id": self.mappings.default_user_id,
            "patterns": [
                {"header": p.header, "pattern": p.pattern.pattern, "user_id": p.user_id}
                for p in self.patterns
            ],
        }


def sanitize_header_value(value: str | None) -> str | None:
    """Keep printable ASCII only, capped, so a client value is never forwarded raw.

    CR/LF would split headers upstream; non-ASCII cannot be sent as a header at all.
    """
    if not value:
        return None
    cleaned = "".join(ch for ch in value if 0x20 <= ord(ch) < 0x7F).strip()
    return cleaned[:MAX_ID_LENGTH] or None


def client_family(user_agent: str | None) -> str:
    """The client family a User-Agent belongs to (``other`` when none matches)."""
    if user_agent:
        for pattern, family in _FAMILIES:
            if pattern.search(user_agent):
                return family
    return "other"
