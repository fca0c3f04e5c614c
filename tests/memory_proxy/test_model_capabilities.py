"""The memo of litellm's model-map questions: the litellm internals it replaces are still
the ones litellm's call sites use, it answers as they do, a changed map is asked again,
and a translated request's build stops asking the map once it has been answered."""

from __future__ import annotations

from typing import Any

import litellm
import litellm.utils
import pytest
from litellm.llms.anthropic.chat.transformation import AnthropicConfig
from litellm.llms.anthropic.common_utils import AnthropicModelInfo

from memory_proxy import model_capabilities
from memory_proxy.claude_chat import build_claude_call
from memory_proxy.config import Deployment
from memory_proxy.model_table import Route

QUESTIONS = [
    ("claude-sonnet-4-5-20250929", "supports_adaptive_thinking", "anthropic"),
    ("claude-opus-4-7", "supports_adaptive_thinking", "anthropic"),
    ("claude-sonnet-4-5-20250929", "supports_output_config", "anthropic"),
    ("claude-3-haiku-20240307", "supports_reasoning", "anthropic"),
    ("claude-not-a-model-at-all", "thinking_always_on", "anthropic"),
]
FACTORY_QUESTIONS = [
    ("gpt-4o", "openai", "supports_reasoning"),
    ("o3-mini", "openai", "supports_reasoning"),
    ("claude-sonnet-4-5-20250929", "anthropic", "supports_mid_conversation_system"),
    ("no-such-model", "openai", "supports_reasoning"),
]


@pytest.fixture(autouse=True, scope="module")
def memo() -> None:
    model_capabilities.install()


def test_litellms_call_sites_go_through_the_memo() -> None:
    assert model_capabilities.installed()
    # litellm calls these by class name and by module-level name: the memo must be there.
    assert hasattr(AnthropicConfig._supports_model_capability, "__wrapped_by_memory_proxy__")
    assert hasattr(AnthropicModelInfo._supports_model_capability, "__wrapped_by_memory_proxy__")
    assert hasattr(litellm.utils.supports_factory, "__wrapped_by_memory_proxy__")
    model_capabilities.install()  # idempotent: no memo of a memo
    original = AnthropicModelInfo._supports_model_capability.__wrapped_by_memory_proxy__  # type: ignore[attr-defined]
    assert not hasattr(original, "__wrapped_by_memory_proxy__")


@pytest.mark.parametrize(("model", "key", "provider"), QUESTIONS)
def test_the_memo_answers_as_litellm_does(model: str, key: str, provider: str) -> None:
    memo: Any = AnthropicModelInfo._supports_model_capability
    original = memo.__wrapped_by_memory_proxy__
    expected = original(model, key, provider)
    assert memo(model, key, provider) is expected
    assert memo(model=model, key=key, custom_llm_provider=provider) is expected
    assert memo(model, key, custom_llm_provider=provider) is expected


@pytest.mark.parametrize(("model", "provider", "key"), FACTORY_QUESTIONS)
def test_the_factory_memo_answers_as_litellm_does(model: str, provider: str, key: str) -> None:
    memo: Any = litellm.utils.supports_factory
    expected = memo.__wrapped_by_memory_proxy__(model, provider, key)
    assert memo(model=model, custom_llm_provider=provider, key=key) is expected
    assert memo(model, provider, key) is expected


def test_an_unhashable_argument_is_asked_not_remembered() -> None:
    memo: Any = litellm.utils.supports_factory
    before = memo.cache_info().currsize
    assert memo(["gpt-4o"], "openai", "supports_reasoning") is False  # litellm's own answer
    assert memo.cache_info().currsize == before


def test_a_changed_model_map_is_asked_again() -> None:
    model = "memo-test-model-registered-late"
    assert litellm.supports_reasoning(model=model, custom_llm_provider="openai") is False
    litellm.register_model(
        {model: {"litellm_provider": "openai", "mode": "chat", "supports_reasoning": True}}
    )
    assert litellm.supports_reasoning(model=model, custom_llm_provider="openai") is True


def test_a_translated_build_asks_the_map_once_per_model() -> None:
    route = Route(
        Deployment(
            "claude-memo",
            {
                "model": "anthropic/claude-sonnet-4-5-20250929",
                "api_base": "http://127.0.0.1:9",
                "api_key": "sk-ant-memo",
            },
        ),
        "anthropic/claude-sonnet-4-5-20250929",
    )
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10}
    memos: list[Any] = [
        AnthropicModelInfo._supports_model_capability,
        litellm.utils.supports_factory,
    ]

    def build() -> bytes:
        call = build_claude_call(route, body, {}, defaults={}, drop_params=True)
        return call.request.body

    first = build()
    misses = [m.cache_info().misses for m in memos]
    hits = [m.cache_info().hits for m in memos]
    assert build() == first
    # The second build was answered from the memo alone, and it did ask.
    assert [m.cache_info().misses for m in memos] == misses
    assert sum(m.cache_info().hits for m in memos) > sum(hits)
