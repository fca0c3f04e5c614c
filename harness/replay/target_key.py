"""The key ``harness replay`` and ``harness load`` send to a target proxy.

In order: ``--key``, the ``HARNESS_API_KEY`` environment variable, then the
``general_settings.master_key`` of the proxy config given by ``--config``. The key is
only ever sent to the target: never printed, stored or written to a report.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from memory_proxy.config import load_config
from memory_proxy.errors import ConfigError

__all__ = ["KEY_ENV", "add_key_arguments", "resolve_key"]

KEY_ENV = "HARNESS_API_KEY"


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key", help=f"the target's client key (default: ${KEY_ENV}, else --config's master_key)"
    )
    parser.add_argument(
        "--config",
        default="config/config.yaml",
        help="proxy config whose general_settings.master_key is the default key",
    )


def resolve_key(
    key: str | None, config_path: str | Path | None, environ: Mapping[str, str] | None = None
) -> str:
    """The key to send; :class:`ConfigError` when none can be found."""
    environ = os.environ if environ is None else environ
    if key:
        return key
    if environ.get(KEY_ENV):
        return environ[KEY_ENV]
    if config_path is not None and Path(config_path).is_file():
        master = load_config(config_path, environ).general.master_key
        if master:
            return master
    raise ConfigError(
        f"no client key: pass --key, set {KEY_ENV}, or point --config at a proxy config "
        "with general_settings.master_key"
    )
