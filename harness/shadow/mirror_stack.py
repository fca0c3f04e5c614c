"""The mirror side, started by ``harness shadow`` itself in replay mode.

With no ``--mirror-to``, shadow mode starts the legacy stack (the LiteLLM server and the
legacy proxy, as ``memory-proxy up --mode legacy`` does) from the user's own
``config.yaml``, through a derived copy in the run folder whose provider base URLs point
at the replay upstream: every provider call the mirror makes is answered by replay and
none reaches the provider. The user's file is never edited.

A deployment's ``api_base`` keeps its path (``https://api.supermemory.ai/v3/api.anthropic.com``
becomes ``http://127.0.0.1:PORT/v3/api.anthropic.com``): a memory router or a gateway in the
path is replayed exactly as the primary called it. One without ``api_base`` gets the
provider's default base on the replay upstream: litellm appends ``/v1/messages`` to an
Anthropic base and ``/chat/completions`` to an OpenAI one, so the OpenAI base ends in ``/v1``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.stack import Stack
from memory_proxy.errors import ConfigError

__all__ = [
    "derive_relay_config",
    "derive_replay_config",
    "relay_bases",
    "start_mirror_stack",
]

# The base a provider's calls go to when a deployment names none.
_DEFAULT_BASES = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}


def _read(source: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: cannot derive the mirror's config: {exc}") from None
    return raw if isinstance(raw, dict) else {}


def _provider_bases(source: Path, raw: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Each deployment's ``litellm_params`` and the provider base URL its calls go to."""
    out = []
    for index, entry in enumerate(raw.get("model_list") or []):
        params: dict[str, Any] = entry.setdefault("litellm_params", {})
        provider = str(params.get("model", "")).split("/", 1)[0]
        base = params.get("api_base")
        if isinstance(base, str) and base.startswith("os.environ/"):
            base = os.environ.get(base.removeprefix("os.environ/"))
        if not (isinstance(base, str) and base):
            base = _DEFAULT_BASES.get(provider)
        if base is None:
            raise ConfigError(
                f"{source}: model_list[{index}]: no api_base to point at the harness's "
                f"upstream for provider {provider!r}"
            )
        out.append((params, base))
    return out


def derive_replay_config(source: Path, replay_origin: str, dest: Path) -> Path:
    """``source`` with every deployment's provider base URL on ``replay_origin``."""
    raw = _read(source)
    for params, base in _provider_bases(source, raw):
        params["api_base"] = replay_origin.rstrip("/") + urlsplit(base).path.rstrip("/")
    dest.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return dest


def relay_bases(source: Path) -> list[str]:
    """Deployment index -> the provider base URL it calls: where the recording relay
    sends what arrives on ``/_relay/<index>``."""
    return [base for _, base in _provider_bases(source, _read(source))]


def derive_relay_config(source: Path, relay_origin: str, dest: Path) -> Path:
    """``source`` with deployment ``i``'s provider base URL on the recording relay
    (``RELAY/_relay/<i>``), which forwards to the base it had: for the primary legacy
    stack's LiteLLM server under replay (:mod:`harness.shadow.recording_relay`)."""
    raw = _read(source)
    for index, (params, _) in enumerate(_provider_bases(source, raw)):
        params["api_base"] = f"{relay_origin.rstrip('/')}/_relay/{index}"
    dest.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return dest


def start_mirror_stack(stack: Stack, config_path: Path, replay_origin: str) -> str:
    """Start the LiteLLM server and the legacy proxy on the derived config; the legacy
    proxy's URL (the mirror target)."""
    derived = derive_replay_config(config_path, replay_origin, stack.run_dir / "mirror.yaml")
    server = stack.litellm_server(derived, name="mirror-litellm-server")
    legacy = stack.legacy_proxy(derived, server.url, name="mirror-legacy-proxy")
    return legacy.url
