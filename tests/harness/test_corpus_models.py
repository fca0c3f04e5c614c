"""Traffic that fits the user's proxy: corpus models mapped by hand or by provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.corpus import CORPUS_PATH, load_corpus
from harness.corpus.models import (
    ModelMapError,
    auto_model_map,
    corpus_models,
    fit_models,
    parse_model_map,
    provider_of,
)
from memory_proxy.config import Deployment


def _deployment(name: str, model: str) -> Deployment:
    return Deployment(model_name=name, litellm_params={"model": model})


USER_CONFIG = (
    _deployment("gpt-4o-mini", "openai/gpt-4o-mini"),
    _deployment("claude-*", "anthropic/claude-*"),
)


def test_parse_model_map() -> None:
    assert parse_model_map("gpt-4o=gpt-4o-mini, claude-sonnet-4.5=claude-haiku") == {
        "gpt-4o": "gpt-4o-mini",
        "claude-sonnet-4.5": "claude-haiku",
    }
    assert parse_model_map(None) == {}
    with pytest.raises(ModelMapError, match="expected CORPUS_MODEL=TARGET"):
        parse_model_map("gpt-4o")


def test_providers_by_name() -> None:
    assert provider_of("gpt-4o") == provider_of("o3-mini") == "openai"
    assert provider_of("claude-sonnet-4.5") == "anthropic"
    assert provider_of("openai/whatever") == "openai"
    assert provider_of("llama-3") is None


def test_unserved_models_are_mapped_by_provider_and_served_ones_kept() -> None:
    mapping, lines = auto_model_map(["gpt-4o", "claude-sonnet-4.5", "llama-3"], USER_CONFIG)
    assert mapping == {"gpt-4o": "gpt-4o-mini"}
    assert lines[0] == "gpt-4o -> gpt-4o-mini (same provider: openai)"
    assert lines[1] == "claude-sonnet-4.5: served as is"  # by the wildcard route
    assert "llama-3: not served" in lines[2]


def test_the_bundled_corpus_fitted_to_a_user_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-test-000000000000}\n"
        "  - model_name: claude-*\n"
        "    litellm_params: {model: anthropic/claude-*, api_key: sk-test-000000000000}\n",
        encoding="utf-8",
    )
    entries = load_corpus(CORPUS_PATH)
    assert "gpt-4o" in corpus_models(entries)
    fitted, lines = fit_models(entries, {}, config)
    assert "gpt-4o" not in corpus_models(fitted) and "gpt-4o-mini" in corpus_models(fitted)
    assert "models: gpt-4o -> gpt-4o-mini (same provider: openai)" in lines
    # The requests that ask for an unknown model on purpose keep it (they expect the 404).
    assert "gpt-5-nonexistent" in corpus_models(fitted)
    # An explicit map wins, and is said.
    fitted, lines = fit_models(entries, {"gpt-4o": "gpt-4.1"}, config)
    assert "gpt-4.1" in corpus_models(fitted) and "gpt-4o-mini" not in corpus_models(fitted)
    assert lines[-1] == "models: gpt-4o -> gpt-4.1 (--model-map)"
