from __future__ import annotations

import re

from starlette.datastructures import Headers

from memory_proxy.memory_router import (
    HeaderPattern,
    MemoryRouter,
    UserIdMappings,
    client_family,
    sanitize_header_value,
)

# Real User-Agents, as captured from each client and as the SDKs build them.
CLAUDE_CODE = "claude-cli/2.1.332 (external, cli)"
ANTHROPIC_SDK = "Anthropic/Python 0.40.0"
OPENAI_SDK = "OpenAI/Python 1.54.0"
ASYNC_OPENAI_SDK = "AsyncOpenAI/Python 2.54.0"
JETBRAINS = "OpenAIClientImpl/Java unknown"
CURL = "curl/8.5.0"


def headers(**values: str) -> Headers:
    return Headers({k.replace("_", "-"): v for k, v in values.items()})


def test_custom_header_first_case_insensitive_any_value() -> None:
    router = MemoryRouter()
    decision = router.detect_user_id(
        Headers({"X-Memory-User-Id": "Alice Smith", "user-agent": CURL})
    )
    assert decision.user_id == "Alice Smith"
    assert decision.rule == "custom_header"
    assert not decision.is_default


def test_configured_patterns_before_defaults_first_match_wins() -> None:
    mappings = UserIdMappings(
        header_patterns=(
            HeaderPattern("user-agent", re.compile("claude", re.I), "team-claude"),
            HeaderPattern("user-agent", re.compile("cli", re.I), "never"),
        )
    )
    decision = MemoryRouter(mappings).detect_user_id(headers(user_agent=CLAUDE_CODE))
    assert decision.user_id == "team-claude"
    assert decision.rule == "header_pattern"
    assert decision.matched_pattern == "claude"


def test_regex_is_search_not_match() -> None:
    mappings = UserIdMappings(
        header_patterns=(HeaderPattern("x-app", re.compile("li", re.I), "app-user"),),
        use_default_patterns=False,
    )
    assert MemoryRouter(mappings).detect_user_id(headers(x_app="cli")).user_id == "app-user"


def test_default_patterns_match_real_clients() -> None:
    router = MemoryRouter()
    expected = {
        CLAUDE_CODE: "claude-code",
        "claude-cli/2.1.332 (external, sdk-cli)": "claude-code",
        ANTHROPIC_SDK: "anthropic-sdk",
        OPENAI_SDK: "openai-sdk",
        ASYNC_OPENAI_SDK: "openai-sdk",
        JETBRAINS: "jetbrains",
        CURL: "curl",
    }
    for ua, user in expected.items():
        assert router.detect_user_id(headers(user_agent=ua)).user_id == user, ua
        assert client_family(ua) == user


def test_default_user_when_nothing_matches() -> None:
    router = MemoryRouter(UserIdMappings(default_user_id="someone"))
    decision = router.detect_user_id(headers(user_agent="Mozilla/5.0"))
    assert decision.user_id == "someone"
    assert decision.is_default
    assert client_family("Mozilla/5.0") == "other"


def test_defaults_can_be_turned_off() -> None:
    router = MemoryRouter(UserIdMappings(use_default_patterns=False))
    assert router.detect_user_id(headers(user_agent=CURL)).is_default


def test_conversation_id_from_claude_code_session_or_explicit_header() -> None:
    router = MemoryRouter()
    cc = router.detect_user_id(headers(user_agent=CLAUDE_CODE, x_claude_code_session_id="abc-1"))
    assert cc.upstream_headers() == {"x-sm-user-id": "claude-code", "x-sm-conversation-id": "abc-1"}
    explicit = router.detect_user_id(
        headers(x_sm_conversation_id="conv-9", x_claude_code_session_id="abc-1")
    )
    assert explicit.conversation_id == "conv-9"
    assert router.detect_user_id(headers()).upstream_headers() == {"x-sm-user-id": "default-dev"}


def test_unsafe_header_values_are_sanitized() -> None:
    assert sanitize_header_value("bob\r\nx-evil: 1") == "bobx-evil: 1"
    assert sanitize_header_value("zoë") == "zo"
    assert sanitize_header_value("x" * 500) == "x" * 128
    assert sanitize_header_value("\r\n") is None
    router = MemoryRouter()
    decision = router.detect_user_id({"x-memory-user-id": "eve\nInjected: yes"})
    assert "\n" not in decision.user_id


def test_subagent_conversation_follows_the_configured_format() -> None:
    from memory_proxy.memory_router import MemoryRouter

    headers = {"x-claude-code-session-id": "s1", "x-claude-code-agent-id": "a7"}
    assert (
        MemoryRouter(agent_format="{session}:{agent}").detect_user_id(headers).conversation_id
        == "s1:a7"
    )
    assert (
        MemoryRouter(agent_format="{agent}@{session}").detect_user_id(headers).conversation_id
        == "a7@s1"
    )
    # No format (the legacy proxy): the session's one conversation, as before.
    assert MemoryRouter().detect_user_id(headers).conversation_id == "s1"
    # A client's explicit x-sm-conversation-id is its own choice.
    explicit = {**headers, "x-sm-conversation-id": "mine"}
    assert (
        MemoryRouter(agent_format="{session}:{agent}").detect_user_id(explicit).conversation_id
        == "mine"
    )
