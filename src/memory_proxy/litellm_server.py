"""Launch the real LiteLLM server (the "binary" of the legacy architecture) as a child process.

``LiteLLMServer`` is a :class:`ChildProcess` running ``litellm --config <derived> --host H
--port N``: its own process group, ready once ``GET /health/liveliness`` answers 200. The
user's config file is never edited: the server gets a derived copy in a private temporary
directory, removed on stop, that adds only what the legacy proxy needs from it:

- ``general_settings.forward_client_headers_to_llm_api: true``: without it the server drops
  the memory headers (``x-sm-user-id``, ``x-sm-conversation-id``) instead of sending them on.
  Observed with litellm 1.106.12: it then forwards every other client ``x-*`` header too
  (``x-forwarded-for``, ``x-amz-security-token``, ...) except ``x-stainless-*`` and litellm's
  own credential headers (``x-api-key``, ``x-litellm-api-key``, ``x-goog-api-key``,
  ``x-mcp-auth``), plus ``anthropic-beta`` (dropped on chat/completions to an anthropic
  model). ``Authorization``, ``Cookie`` and ``User-Agent`` are not forwarded. ``extra_headers``
  in the config still reach the upstream and win over a client header of the same name.
- relative ``include`` entries made absolute, since the copy no longer sits next to them.

A config whose ``general_settings.master_key`` is missing or the publicly known ``sk-1234``
makes the server refuse to start; this launcher refuses first, with a clear error, unless
the caller opts in with ``allow_weak_master_key=True``.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from memory_proxy.config import ProxyOptions
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.processes import ChildProcess, ProcessStartError, Spawn

__all__ = ["LiteLLMServer", "LiteLLMServerError", "WEAK_MASTER_KEYS"]

logger = logging.getLogger(__name__)

# The server refuses these (litellm/proxy/auth/master_key_boot_check.py compares a digest
# of the stripped key with the publicly known default).
WEAK_MASTER_KEYS = frozenset({"sk-1234"})

_PERMIT_WEAK_KEY_ENV = "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"
_KIND = "LiteLLM server"
_DERIVED_CONFIG_NAME = "config.yaml"


class LiteLLMServerError(ProcessStartError):
    """The LiteLLM server could not be configured, started or made ready."""


class _PlainDumper(yaml.SafeDumper):
    """Write repeated values out in full: anchors in a generated file only confuse readers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class LiteLLMServer(ChildProcess):
    """One LiteLLM server process, started from ``config_path`` and stopped with its group.

    A :class:`ChildProcess` whose argv, log and environment are settled at each start, from
    the config as it reads then. ``env`` is layered over ``os.environ`` for the child only.
    ``log_path`` receives the server's stdout and stderr (appended); without it the log
    lives in the private temporary directory and goes with it on stop (a failed start still
    quotes its last lines). A stopped server forgets its pid.
    """

    start_error = LiteLLMServerError

    def __init__(
        self,
        config_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 4000,
        log_path: Path | None = None,
        allow_weak_master_key: bool = False,
        ready_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        spawn: Spawn = subprocess.Popen,
    ) -> None:
        self.config_path = Path(config_path).resolve()
        self.allow_weak_master_key = allow_weak_master_key
        self._user_env: dict[str, str] = dict(env or {})
        self._requested_log_path = Path(log_path).resolve() if log_path is not None else None
        self._workdir: Path | None = None
        self._config: dict[str, Any] = {}  # the derived config the next spawn writes
        super().__init__(
            _KIND,
            (),
            host=host,
            port=port,
            log_path=self._idle_log_path(),
            env=self._user_env,
            # Relative paths in the config (custom callback modules, files) resolve as
            # they would if the server were run next to it.
            cwd=self.config_path.parent,
            ready_timeout=ready_timeout,
            spawn=spawn,
        )
        self.argv = self.command()

    # -- inspection -------------------------------------------------------------------------

    @property
    def derived_config_path(self) -> Path | None:
        """The derived config file the running server reads; None when not running."""
        return self._workdir / _DERIVED_CONFIG_NAME if self._workdir is not None else None

    def command(self, config_file: Path | None = None) -> list[str]:
        """The argv that starts the server on ``config_file``.

        By default: the running server's derived config, or a placeholder when not running.
        """
        config_file = config_file or self.derived_config_path
        config_arg = str(config_file) if config_file is not None else "<derived-config.yaml>"
        return [
            *_litellm_entry_point(),
            "--config",
            config_arg,
            "--host",
            self.host,
            "--port",
            str(self.port),
            # The legacy proxy's httpx pool keeps an idle connection 5 s, as long as
            # uvicorn's default here: the same close race the proxies' own default avoids.
            "--keepalive_timeout",
            str(int(ProxyOptions.keep_alive_timeout_seconds)),
        ]

    def derived_config(self) -> dict[str, Any]:
        """The user's config plus what the server needs here; the file itself is not touched."""
        config = copy.deepcopy(self._load_user_config())
        general = config.get("general_settings")
        if general is None:
            general = config["general_settings"] = {}
        if not isinstance(general, dict):
            raise LiteLLMServerError(f"{self.config_path}: general_settings must be a mapping")
        if general.get("forward_client_headers_to_llm_api") not in (None, True):
            logger.warning(
                "%s sets forward_client_headers_to_llm_api=%r; overriding to true so the "
                "memory headers reach the upstream",
                self.config_path,
                general["forward_client_headers_to_llm_api"],
            )
        general["forward_client_headers_to_llm_api"] = True
        includes = config.get("include")
        if isinstance(includes, list):
            config["include"] = [self._absolute_include(entry) for entry in includes]
        return config

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace`` seconds; clean up."""
        super().stop(grace)
        self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.log_path = self._idle_log_path()
        self.argv = self.command()

    # -- internals --------------------------------------------------------------------------

    def _prepare(self) -> None:
        # A config the server would refuse is refused here, before its port is even checked.
        self._config = self.derived_config()
        self.env = self._server_env(self._config)

    def _spawn(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="litellm-server-"))
        derived_path = self._workdir / _DERIVED_CONFIG_NAME
        derived_path.write_text(yaml.dump(self._config, Dumper=_PlainDumper, sort_keys=False))
        self.argv = self.command(derived_path)
        self.log_path = self._requested_log_path or self._workdir / "litellm.log"
        # The server names the derived copy it was given; say whose copy that is.
        self.context = (
            f"(config {self.config_path}, given to the server as a derived copy in {self._workdir})"
        )
        super()._spawn()

    def _idle_log_path(self) -> Path:
        # Until a start makes the private directory, the default log has no place yet.
        return self._requested_log_path or Path("<private-temporary-directory>") / "litellm.log"

    def _load_user_config(self) -> dict[str, Any]:
        try:
            raw = self.config_path.read_text()
        except OSError as error:
            raise LiteLLMServerError(
                f"cannot read LiteLLM config {self.config_path}: {error}"
            ) from error
        try:
            loaded = yaml.safe_load(raw)
        except yaml.YAMLError as error:
            raise LiteLLMServerError(
                f"LiteLLM config {self.config_path} is not valid YAML: {error}"
            ) from error
        if not isinstance(loaded, dict):
            raise LiteLLMServerError(
                f"LiteLLM config {self.config_path} must be a YAML mapping, "
                f"got {type(loaded).__name__}"
            )
        return loaded

    def _absolute_include(self, entry: Any) -> Any:
        if isinstance(entry, str) and not os.path.isabs(entry) and "://" not in entry:
            return str(self.config_path.parent / entry)
        return entry

    def _server_env(self, config: Mapping[str, Any]) -> dict[str, str | None]:
        """What the server's environment adds to ``os.environ`` (None unsets a variable)."""
        inherited = {**os.environ, **self._user_env}
        env: dict[str, str | None] = dict(self._user_env)
        # Without them the server fetches litellm's cost map and beta headers over the network.
        env.update(LITELLM_OFFLINE_ENV)
        # Custom callback modules named in the config are imported relative to its
        # directory; the derived copy lives elsewhere, so put that directory on the path.
        python_path = inherited.get("PYTHONPATH")
        config_dir = str(self.config_path.parent)
        env["PYTHONPATH"] = f"{config_dir}{os.pathsep}{python_path}" if python_path else config_dir

        weakness = _master_key_weakness(config.get("general_settings") or {}, inherited)
        if weakness is not None:
            if not self.allow_weak_master_key:
                raise LiteLLMServerError(
                    f"refusing to start the LiteLLM server: {weakness} in {self.config_path}. "
                    "Set general_settings.master_key to a strong key "
                    "(e.g. os.environ/LITELLM_MASTER_KEY), "
                    "or pass allow_weak_master_key=True for local development."
                )
            logger.warning(
                "starting the LiteLLM server with %s (allow_weak_master_key=True sets %s=true): "
                "local development only",
                weakness,
                _PERMIT_WEAK_KEY_ENV,
            )
            env[_PERMIT_WEAK_KEY_ENV] = "true"
        else:
            # An inherited opt-in would let an os.environ/ key resolve to a weak one unasked.
            env[_PERMIT_WEAK_KEY_ENV] = None
        return env


def _litellm_entry_point() -> list[str]:
    # sys.executable may be a symlink out of the venv: its own directory is the venv's bin,
    # which is where the console script lives, so do not resolve it.
    script = Path(sys.executable).parent / "litellm"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "litellm.proxy.proxy_cli"]


def _master_key_weakness(general_settings: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Why the server would refuse this master key, or None when it is acceptable."""
    key = general_settings.get("master_key")
    if key is None:
        # The server falls back to LITELLM_MASTER_KEY from its environment.
        key = env.get("LITELLM_MASTER_KEY")
        if key is None:
            return "no master key is set (general_settings.master_key or LITELLM_MASTER_KEY)"
    key = str(key).strip()
    if key.startswith("os.environ/"):
        return None  # resolved by the server itself, at load
    if not key:
        return "the master key is empty"
    if key in WEAK_MASTER_KEYS:
        return f"the master key is the publicly known {key!r}"
    return None
