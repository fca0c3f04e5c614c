"""The connection limits in the ``memory_proxy:`` section: defaults, validation, and the
uvicorn settings they become. The limits at work are in tests/hardening/."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx
import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from memory_proxy.config import ProxyOptions, load_config
from memory_proxy.connection_limits import uvicorn_settings
from memory_proxy.errors import ConfigError

MODELS = "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"

LIMITS = {
    "header_timeout_seconds": "a number > 0",
    "body_timeout_seconds": "a number > 0",
    "keep_alive_timeout_seconds": "a number > 0",
    "max_header_bytes": "a whole number > 0",
    "max_connections": "a whole number > 0",
}


def _load(tmp_path: Path, section: str = "") -> ProxyOptions:
    path = tmp_path / "config.yaml"
    path.write_text(MODELS + section)
    return load_config(path, environ={}).options


def test_defaults_when_the_section_is_absent(tmp_path: Path) -> None:
    options = _load(tmp_path)
    assert options.header_timeout_seconds == 10.0
    assert options.body_timeout_seconds == 60.0
    assert options.keep_alive_timeout_seconds == 75.0
    assert options.max_header_bytes == 65536
    assert options.max_connections == 1000


def test_an_idle_connection_outlives_the_sdks_pools() -> None:
    """A client's pool drops a connection idle for its expiry; a proxy closing it at about
    the same age resets the requests sent on it just then (uvicorn's 5 s default did,
    under the bench's load). Twice the longest, for a loaded event loop's lag."""
    pools = {
        "httpx, under the openai and anthropic SDKs": httpx.Limits().keepalive_expiry,
        "undici, under Claude Code (Node's fetch)": 4.0,
        "aiohttp": 15.0,
    }
    assert ProxyOptions().keep_alive_timeout_seconds > 2 * max(pools.values())


def test_values_are_read(tmp_path: Path) -> None:
    options = _load(
        tmp_path,
        "memory_proxy:\n  header_timeout_seconds: 2.5\n  body_timeout_seconds: 30\n"
        "  keep_alive_timeout_seconds: 1\n  max_header_bytes: 8192\n  max_connections: 50\n",
    )
    assert (options.header_timeout_seconds, options.body_timeout_seconds) == (2.5, 30.0)
    assert options.keep_alive_timeout_seconds == 1.0
    assert (options.max_header_bytes, options.max_connections) == (8192, 50)


@pytest.mark.parametrize("value", ["0", "-1", "fast", "true", "null"])
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_a_limit_that_is_not_positive_is_one_clear_message(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"memory_proxy:\n  {name}: {value}\n")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "config.yaml"))
    assert f"memory_proxy.{name}: expected {LIMITS[name]}, got" in message


@pytest.mark.parametrize("name", ["max_header_bytes", "max_connections"])
def test_a_count_is_a_whole_number(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=f"memory_proxy.{name}: expected a whole number"):
        _load(tmp_path, f"memory_proxy:\n  {name}: 1.5\n")


@pytest.mark.parametrize(
    ("http", "base"),
    [("auto", HttpToolsProtocol), ("httptools", HttpToolsProtocol), ("h11", H11Protocol)],
)
def test_uvicorn_settings_carry_the_limits(
    http: Literal["auto", "h11", "httptools"], base: type
) -> None:
    options = ProxyOptions(
        keep_alive_timeout_seconds=3.0,
        max_connections=7,
        max_header_bytes=4096,
        shutdown_grace_seconds=9.0,
    )
    settings = uvicorn_settings(options, http=http)
    protocol = settings.pop("http")
    assert issubclass(protocol, base)
    assert protocol.options is options
    assert settings == {
        "timeout_keep_alive": 3.0,
        "limit_concurrency": 7,
        "h11_max_incomplete_event_size": 4096,
        "timeout_graceful_shutdown": 9,
    }


def test_the_start_up_heap_is_frozen_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """litellm's heap (~320,000 objects) costs ~170 ms a full collection: every request
    in flight would wait it out. Frozen before uvicorn serves, collections skip it."""
    import gc

    import uvicorn

    from memory_proxy.config import ProxyOptions
    from memory_proxy.connection_limits import serve_with_limits

    frozen_when_served: list[int] = []
    monkeypatch.setattr(
        uvicorn, "run", lambda *args, **kwargs: frozen_when_served.append(gc.get_freeze_count())
    )
    gc.unfreeze()
    try:
        serve_with_limits(object(), ProxyOptions(), host="127.0.0.1", port=0, log_level="info")
    finally:
        gc.unfreeze()
    assert len(frozen_when_served) == 1 and frozen_when_served[0] > 1000
