from __future__ import annotations

from memory_proxy.config import Deployment
from memory_proxy.model_table import ModelTable


def table(*entries: tuple[str, str]) -> ModelTable:
    return ModelTable(Deployment(name, {"model": model}) for name, model in entries)


def test_exact_name_wins_over_an_earlier_wildcard() -> None:
    models = table(("claude-*", "anthropic/claude-*"), ("claude-sonnet-4.5", "anthropic/sonnet-x"))
    route = models.resolve("claude-sonnet-4.5")
    assert route is not None and route.upstream_model == "anthropic/sonnet-x"


def test_wildcard_fills_the_litellm_model_like_litellm() -> None:
    models = table(("claude-*", "anthropic/claude-*"), ("anthropic/*", "anthropic/*"))
    route = models.resolve("claude-opus-5-5")
    assert route is not None
    assert route.upstream_model == "anthropic/claude-opus-5-5"
    assert route.upstream_model_id == "claude-opus-5-5"
    route = models.resolve("anthropic/claude-haiku-4-5")
    assert route is not None and route.upstream_model == "anthropic/claude-haiku-4-5"


def test_first_matching_wildcard_in_file_order() -> None:
    models = table(("claude-opus-*", "anthropic/claude-opus-*"), ("claude-*", "openai/*"))
    first = models.resolve("claude-opus-5-5")
    second = models.resolve("claude-sonnet-4-5")
    assert first is not None and first.deployment.model_name == "claude-opus-*"
    assert second is not None and second.upstream_model == "openai/sonnet-4-5"


def test_no_match_and_names() -> None:
    models = table(("gpt-4o", "openai/gpt-4o"), ("claude-*", "anthropic/claude-*"))
    assert models.resolve("gemini-pro") is None
    assert models.resolve("xclaude-1") is None  # a wildcard matches the whole id
    assert models.names == ["gpt-4o", "claude-*"]
