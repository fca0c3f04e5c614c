"""``memory-proxy serve`` off loopback needs a master key; nothing is served to find out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memory_proxy import cli

CONFIG = """\
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_base: http://127.0.0.1:1/v1
      api_key: sk-openai-test-000000000000
"""


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    return calls


def _config(tmp_path: Path, master_key: str | None) -> Path:
    text = CONFIG
    if master_key:
        text += f"general_settings:\n  master_key: {master_key}\n"
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["serve", "legacy"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_binding_off_loopback_without_a_key_is_refused(
    tmp_path: Path,
    served: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    command: str,
    host: str,
) -> None:
    config = _config(tmp_path, None)
    assert cli.main([command, "--config", str(config), "--host", host]) == 2
    assert served == []
    err = capsys.readouterr().err
    assert "master_key" in err and host in err and "loopback" in err


@pytest.mark.parametrize("command", ["serve", "legacy"])
def test_binding_off_loopback_with_a_key_is_allowed(
    tmp_path: Path, served: list[dict[str, Any]], command: str
) -> None:
    config = _config(tmp_path, "sk-proxy-test-7f3a9c0d1e2f")
    assert cli.main([command, "--config", str(config), "--host", "0.0.0.0", "--port", "9"]) == 0
    assert [(c["host"], c["port"]) for c in served] == [("0.0.0.0", 9)]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_without_a_key_is_allowed(
    tmp_path: Path, served: list[dict[str, Any]], host: str
) -> None:
    assert cli.main(["serve", "--config", str(_config(tmp_path, None)), "--host", host]) == 0
    assert [c["host"] for c in served] == [host]
