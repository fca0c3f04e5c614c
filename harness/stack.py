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
from memory_proxy.litellm_server import LiteLLMServer
from memory_proxy.processes import ChildProcess

__all__ = ["Stack"]

LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@dataclass
class Stack:
    """A set of started processes, stopped together."""

    run_dir: Path
    started: list[ChildProcess | LiteLLMServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def sandbox(self, port: int | None = None, *extra_args: str) -> ChildProcess:
        port = port or free_port()
        child = ChildProcess(
            "sandbox provider",
            [sys.executable, "-m", "harness.sandbox", "--port", str(port), *extra_args],
            port=port,
            log_path=self.run_dir / "sandbox.log",
            ready_path="/_sandbox/health",
            ready_timeout=60,
        )
        return self._start(child)

    def sdk_proxy(self, config: Path, port: int | None = None) -> ChildProcess:
        port = port or free_port()
        child = ChildProcess(
            "SDK proxy",
            [
                sys.executable,
                "-m",
                "memory_proxy.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
            ],
            port=port,
            log_path=self.run_dir / "sdk-proxy.log",
            env=LITELLM_ENV,
            ready_timeout=90,
        )
        return self._start(child)

    def legacy_proxy(self, config: Path, litellm_url: str, port: int | None = None) -> ChildProcess:
        port = port or free_port()
        child = ChildProcess(
            "legacy proxy",
            [
                sys.executable,
                "-m",
                "memory_proxy.cli",
                "legacy",
                "--config",
                str(config),
                "--port",
                str(port),
                "--litellm-url",
                litellm_url,
            ],
            port=port,
            log_path=self.run_dir / "legacy-proxy.log",
            env=LITELLM_ENV,
            ready_timeout=90,
        )
        return self._start(child)

    def shadow(
        self,
        config: Path,
        harness_config: Path,
        mirror_to: str,
        store: Path,
        port: int | None = None,
        primary: str = "sdk",
        max_rate: float = 0.0,
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
                "--mirror-to",
                mirror_to,
                "--store",
                str(store),
                *(["--max-rate", str(max_rate)] if max_rate else []),
            ],
            port=port,
            log_path=self.run_dir / "shadow.log",
            env=LITELLM_ENV,
            ready_timeout=90,
        )
        return self._start(child)

    def litellm_server(self, config: Path, port: int | None = None) -> LiteLLMServer:
        server = LiteLLMServer(
            config,
            port=port or free_port(),
            log_path=self.run_dir / "litellm-server.log",
            ready_timeout=120,
        )
        server.start()
        self.started.append(server)
        return server

    def _start(self, child: ChildProcess) -> ChildProcess:
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
