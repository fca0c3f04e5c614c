"""The mirror's derived config: every provider base URL on the replay upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.paths import SANDBOX_CONFIG
from harness.shadow.mirror_stack import derive_relay_config, derive_replay_config, relay_bases
from memory_proxy.config import load_config
from memory_proxy.errors import ConfigError

REPLAY = "http://127.0.0.1:9555"


def _bases(path: Path) -> list[str]:
    raw = yaml.safe_load(path.read_text())
    return [entry["litellm_params"]["api_base"] for entry in raw["model_list"]]


def test_every_base_points_at_the_replay_upstream_keeping_its_path(tmp_path: Path) -> None:
    derived = derive_replay_config(SANDBOX_CONFIG, REPLAY, tmp_path / "mirror.yaml")
    assert _bases(derived) == [
        f"{REPLAY}/v3/api.anthropic.com",
        f"{REPLAY}/v3/api.openai.com/v1",
        f"{REPLAY}/v3/api.anthropic.com",
    ]
    # Everything else is the user's config, loadable as it was.
    assert len(load_config(derived).deployments) == len(load_config(SANDBOX_CONFIG).deployments)
    assert SANDBOX_CONFIG.read_text().count("9100") > 0  # the user's file is untouched


def test_provider_defaults_and_bases_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTER_BASE", "https://api.supermemory.ai/v3/api.anthropic.com")
    source = tmp_path / "config.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {"model_name": "c", "litellm_params": {"model": "anthropic/claude-x"}},
                    {"model_name": "g", "litellm_params": {"model": "openai/gpt-4o"}},
                    {
                        "model_name": "r",
                        "litellm_params": {
                            "model": "anthropic/claude-y",
                            "api_base": "os.environ/ROUTER_BASE",
                        },
                    },
                ]
            }
        )
    )
    derived = derive_replay_config(source, REPLAY, tmp_path / "mirror.yaml")
    assert _bases(derived) == [REPLAY, f"{REPLAY}/v1", f"{REPLAY}/v3/api.anthropic.com"]


def test_a_provider_without_a_known_base_is_refused_by_name(tmp_path: Path) -> None:
    source = tmp_path / "config.yaml"
    source.write_text(
        yaml.safe_dump({"model_list": [{"model_name": "m", "litellm_params": {"model": "x/y"}}]})
    )
    with pytest.raises(ConfigError, match=r"model_list\[0\]: no api_base"):
        derive_replay_config(source, REPLAY, tmp_path / "mirror.yaml")


def test_the_relay_config_sends_each_deployment_through_its_own_relay_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--primary legacy`` under replay: the legacy stack's LiteLLM server calls the
    provider through the recording relay, which forwards deployment i to its own base."""
    monkeypatch.setenv("ROUTER_BASE", "https://api.supermemory.ai/v3/api.anthropic.com")
    source = tmp_path / "config.yaml"
    source.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {"model_name": "c", "litellm_params": {"model": "anthropic/claude-x"}},
                    {"model_name": "g", "litellm_params": {"model": "openai/gpt-4o"}},
                    {
                        "model_name": "r",
                        "litellm_params": {
                            "model": "anthropic/claude-y",
                            "api_base": "os.environ/ROUTER_BASE",
                        },
                    },
                ]
            }
        )
    )
    relay = "http://127.0.0.1:9556"
    derived = derive_relay_config(source, relay, tmp_path / "relay.yaml")
    assert _bases(derived) == [f"{relay}/_relay/0", f"{relay}/_relay/1", f"{relay}/_relay/2"]
    assert relay_bases(source) == [
        "https://api.anthropic.com",
        "https://api.openai.com/v1",
        "https://api.supermemory.ai/v3/api.anthropic.com",
    ]
