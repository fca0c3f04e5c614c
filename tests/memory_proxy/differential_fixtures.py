"""Fixtures of the differential translation tests: one scripted provider, one SDK proxy
in front of it (a Claude and an OpenAI deployment), one event loop for the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.loopback import LoopbackServer
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from tests.memory_proxy.scripted_provider import ScriptedProvider
from tests.memory_proxy.translation_oracle import OracleLoop

__all__ = [
    "CLAUDE",
    "GPT",
    "MASTER_KEY",
    "OPENAI_KEY",
    "PROVIDER_KEY",
    "oracle",
    "provider",
    "proxy",
]

MASTER_KEY = "sk-differential-master"
CLAUDE = "claude-sonnet-4-5-20250929"
GPT = "gpt-4o"
PROVIDER_KEY = "sk-ant-differential"
OPENAI_KEY = "sk-openai-differential"


@pytest.fixture(scope="module")
def provider() -> Iterator[tuple[ScriptedProvider, str]]:
    scripted = ScriptedProvider()
    with LoopbackServer(scripted.app) as server:
        yield scripted, server.url


@pytest.fixture(scope="module")
def proxy(
    provider: tuple[ScriptedProvider, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    _, url = provider
    config = tmp_path_factory.mktemp("differential") / "config.yaml"
    config.write_text(
        f"""
model_list:
  - model_name: claude-sonnet-4.5
    litellm_params:
      model: anthropic/{CLAUDE}
      api_base: {url}
      api_key: {PROVIDER_KEY}
  - model_name: {GPT}
    litellm_params:
      model: openai/{GPT}
      api_base: {url}/v1
      api_key: {OPENAI_KEY}
general_settings:
  master_key: {MASTER_KEY}
litellm_settings:
  drop_params: true
memory_proxy:
  retry_backoff_seconds: 0.01
"""
    )
    with LoopbackServer(create_app(load_config(Path(config)))) as server:
        yield server.url


@pytest.fixture(scope="module")
def oracle() -> Iterator[OracleLoop]:
    loop = OracleLoop()
    yield loop
    loop.close()
