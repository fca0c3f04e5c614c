"""What ``memory-proxy up`` starts, and in which order: pure, no I/O.

:func:`plan_stack` turns a config and a mode into a :class:`StackPlan`, the ordered list of
:class:`ProcessSpec` the supervisor starts (dependencies first). Modes
(``general_settings.use_sdk`` picks ``sdk`` or ``legacy``; ``--mode`` overrides)::

    sdk     SDK proxy :8764
    legacy  LiteLLM server :4000, legacy proxy :8764 (the main port)
    both    LiteLLM server :4000, SDK proxy :8764, legacy proxy :8765
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from memory_proxy.config import ProxyConfig
from memory_proxy.processes import DEFAULT_READY_PATH

__all__ = [
    "DEFAULT_LEGACY_PORT",
    "DEFAULT_LITELLM_PORT",
    "DEFAULT_MAIN_PORT",
    "MODES",
    "Mode",
    "PlanError",
    "Ports",
    "ProcessSpec",
    "Role",
    "StackPlan",
    "default_run_dir",
    "plan_stack",
    "proxy_argv",
    "resolve_mode",
]

Mode = Literal["sdk", "legacy", "both"]
MODES: tuple[Mode, ...] = get_args(Mode)
Role = Literal["litellm", "sdk", "legacy"]

DEFAULT_MAIN_PORT = 8764
DEFAULT_LEGACY_PORT = 8765  # the legacy proxy's port when it runs next to the SDK proxy
DEFAULT_LITELLM_PORT = 4000

_KINDS: Mapping[Role, str] = {
    "litellm": "LiteLLM server",
    "sdk": "SDK proxy",
    "legacy": "legacy proxy",
}


class PlanError(ValueError):
    """The requested processes cannot run together (e.g. two of them on one port)."""


@dataclass(frozen=True)
class Ports:
    """Where things listen. ``legacy=None``: the main port in legacy mode, 8765 in both."""

    main: int = DEFAULT_MAIN_PORT
    legacy: int | None = None
    litellm: int = DEFAULT_LITELLM_PORT


@dataclass(frozen=True)
class ProcessSpec:
    """One process to start. ``argv`` is empty for the LiteLLM server: its launcher builds
    the command line at start, on a derived copy of the config."""

    role: Role
    host: str
    port: int
    argv: tuple[str, ...] = ()
    ready_path: str = DEFAULT_READY_PATH

    @property
    def kind(self) -> str:
        return _KINDS[self.role]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def log_name(self) -> str:
        return f"{self.role}.log"


@dataclass(frozen=True)
class StackPlan:
    mode: Mode
    config_path: Path
    processes: tuple[ProcessSpec, ...]

    def spec(self, role: Role) -> ProcessSpec | None:
        return next((p for p in self.processes if p.role == role), None)


def resolve_mode(requested: Mode | None, use_sdk: bool) -> Mode:
    """``--mode`` wins; otherwise ``general_settings.use_sdk`` picks sdk or legacy."""
    if requested is not None:
        return requested
    return "sdk" if use_sdk else "legacy"


def proxy_argv(
    role: Role,
    config_path: str | Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    litellm_url: str | None = None,
    python: str = sys.executable,
    log_level: str = "INFO",
) -> tuple[str, ...]:
    """The command line that starts the SDK proxy (``sdk``) or the legacy proxy (``legacy``,
    forwarding to ``litellm_url``): ``memory-proxy up``, the demo and the bench all use it."""
    command = "serve" if role == "sdk" else "legacy"
    argv: tuple[str, ...] = (python, "-m", "memory_proxy.cli", "--log-level", log_level, command)
    argv += ("--config", str(config_path), "--host", host, "--port", str(port))
    if litellm_url is not None:
        argv += ("--litellm-url", litellm_url)
    return argv


def plan_stack(
    config: ProxyConfig,
    mode: Mode | None = None,
    *,
    ports: Ports = Ports(),
    host: str = "127.0.0.1",
    python: str = sys.executable,
    log_level: str = "INFO",
) -> StackPlan:
    """The processes to start for ``config`` in ``mode``, in start order (dependencies first)."""
    mode = resolve_mode(mode, config.general.use_sdk)
    if mode not in MODES:
        raise PlanError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    config_path = str(config.path)

    def proxy(role: Role, port: int, litellm_url: str | None = None) -> ProcessSpec:
        argv = proxy_argv(
            role,
            config_path,
            port,
            host=host,
            litellm_url=litellm_url,
            python=python,
            log_level=log_level,
        )
        return ProcessSpec(role, host, port, argv)

    processes: list[ProcessSpec] = []
    if mode in ("legacy", "both"):
        # The legacy proxy forwards to it, so it starts (and is ready) first.
        processes.append(ProcessSpec("litellm", host, ports.litellm))
    if mode in ("sdk", "both"):
        processes.append(proxy("sdk", ports.main))
    if mode in ("legacy", "both"):
        default_legacy = DEFAULT_LEGACY_PORT if mode == "both" else ports.main
        legacy_port = ports.legacy if ports.legacy is not None else default_legacy
        litellm_url = processes[0].url
        processes.append(proxy("legacy", legacy_port, litellm_url))

    taken: dict[int, ProcessSpec] = {}
    for spec in processes:
        other = taken.setdefault(spec.port, spec)
        if other is not spec:
            raise PlanError(
                f"the {other.kind} and the {spec.kind} cannot both listen on port {spec.port}"
            )
    return StackPlan(mode, Path(config_path), tuple(processes))


def default_run_dir(now: datetime | None = None) -> Path:
    """``runs/<UTC timestamp>``, relative to the working directory."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / stamp
