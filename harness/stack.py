"""Start the parts of the system as child processes on loopback, for the demo and runs.

Each part is a :class:`ChildProcess` with its own log file in a run folder; the stack
stops them all (last started first) however the run ends.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness.loopback import free_port
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.litellm_server import LiteLLMServer
from memory_proxy.processes import ChildProcess
from memory_proxy.stack_plan import Role, proxy_argv

__all__ = ["Stack"]


@dataclass
class Stack:
    """A set of started processes, stopped together."""

    run_dir: Path
    started: list[ChildProcess | LiteLLMServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def sandbox(self, *extra_args: str, name: str = "sandbox") -> ChildProcess:
        """A sandbox provider via ``harness sandbox`` (uvicorn without a log line per
        request: ``python -m harness.sandbox`` logs each one, work no provider does)."""
        port = free_port()
        child = ChildProcess(
            f"{name} provider",
            [sys.executable, "-m", "harness.cli", "sandbox", "--port", str(port), *extra_args],
            port=port,
            log_path=self.run_dir / f"{name}.log",
            ready_path="/_sandbox/health",
            ready_timeout=60,
        )
        return self.start(child)

    def sdk_proxy(self, config: Path, port: int | None = None) -> ChildProcess:
        return self._proxy("sdk", "SDK proxy", config, port)

    def legacy_proxy(
        self,
        config: Path,
        litellm_url: str,
        port: int | None = None,
        *,
        name: str = "legacy-proxy",
    ) -> ChildProcess:
        return self._proxy("legacy", name.replace("-", " "), config, port, litellm_url, name)

    def _proxy(
        self,
        role: Role,
        title: str,
        config: Path,
        port: int | None,
        litellm_url: str | None = None,
        name: str | None = None,
    ) -> ChildProcess:
        port = port or free_port()
        child = ChildProcess(
            title,
            list(proxy_argv(role, config, port, litellm_url=litellm_url)),
            port=port,
            log_path=self.run_dir / f"{name or title.replace(' ', '-').lower()}.log",
            env=LITELLM_OFFLINE_ENV,
            ready_timeout=90,
        )
        return self.start(child)

    def shadow(
        self,
        config: Path,
        harness_config: Path,
        mirror_to: str | None,
        store: Path,
        port: int | None = None,
        primary: str = "sdk",
        max_rate: float = 0.0,
        replay_listen: str | None = None,
        health_rate: float | None = None,
    ) -> ChildProcess:
        port = port or free_port()
        child = ChildProcess(
            f"{primary} proxy (shadow mode)",
            [
                sys.executable,
                "-m",
                "harness.cli",
                "shadow",
                "--config",
                str(config),
                "--harness-config",
                str(harness_config),
                "--port",
                str(port),
                "--primary",
                primary,
                *(["--mirror-to", mirror_to] if mirror_to else []),
                "--store",
                str(store),
                *(["--max-rate", str(max_rate)] if max_rate else []),
                *(["--replay-listen", replay_listen] if replay_listen else []),
                *(["--health-rate", str(health_rate)] if health_rate is not None else []),
            ],
            port=port,
            log_path=self.run_dir / "shadow.log",
            env=LITELLM_OFFLINE_ENV,
            ready_timeout=180,  # it may start the mirror stack first
        )
        return self.start(child)

    def litellm_server(
        self, config: Path, port: int | None = None, *, name: str = "litellm-server"
    ) -> LiteLLMServer:
        server = LiteLLMServer(
            config,
            port=port or free_port(),
            log_path=self.run_dir / f"{name}.log",
            ready_timeout=120,
        )
        server.start()
        self.started.append(server)
        return server

    def start(self, child: ChildProcess) -> ChildProcess:
        """Start ``child`` and stop it with the rest of the stack."""
        child.start()
        self.started.append(child)
        return child

    def stop(self) -> float:
        began = time.perf_counter()
        while self.started:
            part = self.started.pop()
            with contextlib.suppress(Exception):
                part.stop()
        return time.perf_counter() - began

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
