from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from memory_proxy.config import load_config
from memory_proxy.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
model_list:
  - model_name: claude-sonnet-4.5
    litellm_params:
      model: anthropic/claude-sonnet-4-5-20250929
      api_base: http://127.0.0.1:9/v3/api.anthropic.com
      api_key: os.environ/ANTHROPIC_API_KEY
      extra_headers:
        x-supermemory-api-key: os.environ/SUPERMEMORY_API_KEY
        x-trace: os.environ/TRACE_TAG
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_configs_load() -> None:
    env = {
        "ANTHROPIC_API_KEY": "a",
        "OPENAI_API_KEY": "o",
        "SUPERMEMORY_API_KEY": "s",
        "LITELLM_MASTER_KEY": "m",
    }
    real = load_config(REPO / "config" / "config.yaml", environ=env)
    sandbox = load_config(REPO / "config" / "sandbox.yaml", environ={})
    assert real.model_names == sandbox.model_names
    assert real.general.use_sdk is False
    assert real.deployments[0].extra_headers["x-supermemory-api-key"] == "s"
    assert {"a", "o", "s", "m"} <= real.secrets


def test_env_resolved_in_nested_headers_and_collected_as_secrets(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, MINIMAL),
        environ={"ANTHROPIC_API_KEY": "sk-1", "SUPERMEMORY_API_KEY": "sm-2", "TRACE_TAG": "t"},
    )
    deployment = config.deployments[0]
    assert deployment.api_key == "sk-1"
    assert deployment.extra_headers == {"x-supermemory-api-key": "sm-2", "x-trace": "t"}
    assert {"sk-1", "sm-2", "t"} <= config.secrets


def test_env_resolved_inside_lists(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
user_id_mappings:
  header_patterns:
    - header: user-agent
      pattern: os.environ/UA_PATTERN
      user_id: team
"""
    )
    config = load_config(
        write(tmp_path, text),
        environ={
            "ANTHROPIC_API_KEY": "k",
            "SUPERMEMORY_API_KEY": "s",
            "TRACE_TAG": "t",
            "UA_PATTERN": "^my-tool/",
        },
    )
    assert config.user_id_mappings.header_patterns[0].pattern.pattern == "^my-tool/"


def test_missing_required_env_names_key_path_and_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), environ={"SUPERMEMORY_API_KEY": "s"})
    message = str(info.value)
    assert "config.yaml" in message
    assert "model_list[0].litellm_params.api_key" in message
    assert "ANTHROPIC_API_KEY" in message


def test_missing_optional_env_drops_the_key(tmp_path: Path) -> None:
    text = MINIMAL + "general_settings:\n  master_key: os.environ/NO_SUCH_MASTER\n"
    config = load_config(
        write(tmp_path, text), environ={"ANTHROPIC_API_KEY": "k", "TRACE_TAG": "t"}
    )
    assert config.general.master_key is None
    assert "x-supermemory-api-key" not in config.deployments[0].extra_headers


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("model_list: [\n  - bad", ["invalid YAML", "line"]),
        ("model_list: {}\n", ["model_list", "expected a non-empty list"]),
        ("general_settings: {}\n", ["model_list", "expected a list of models"]),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: anthropic/x}\n"
            "  - model_name: a\n    litellm_params: {model: anthropic/y}\n",
            ["model_list[1].model_name", "not used by another entry", "a"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: foo/x}\n",
            ["model_list[0].litellm_params.model", "provider prefix", "foo"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: gpt-4o}\n",
            ["model_list[0].litellm_params.model", "<provider>/<model id>"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
            "litellm_settings: {num_retries: many}\n",
            ["litellm_settings.num_retries", "whole number", "many"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
            "general_settings: {use_sdk: 'yes'}\n",
            ["general_settings.use_sdk", "true or false"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: 3}\n",
            ["model_list[0].litellm_params.api_key", "a string"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
            "user_id_mappings:\n  header_patterns:\n    - {header: user-agent, pattern: '(',"
            " user_id: u}\n",
            ["user_id_mappings.header_patterns[0].pattern", "regular expression"],
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"
            "memory_proxy: {max_body_bytes: -1}\n",
            ["memory_proxy.max_body_bytes", "> 0"],
        ),
        ("- just\n- a list\n", ["<root>", "expected a mapping"]),
    ],
)
def test_bad_config_is_one_clear_message(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml", environ={})


def test_cli_prints_config_error_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from memory_proxy.cli import main

    path = tmp_path / "config.yaml"
    path.write_text("model_list: [\n")
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "invalid YAML" in err
    assert "Traceback" not in err
