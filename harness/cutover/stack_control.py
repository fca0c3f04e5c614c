"""Find, stop and start the stack that `memory-proxy up` runs, and check what it serves.

A running stack is known by its run folder's ``processes.json`` (written by the
supervisor once every process is ready) and a live ``supervisor_pid``. A new stack is
started as a detached `memory-proxy up`, so it outlives the command that started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from memory_proxy.config import ProxyConfig
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV

__all__ = ["StackHandle", "find_running", "pid_alive", "start_stack", "stop_stack", "verify"]

SERVICES = {True: "memory-proxy-sdk", False: "memory-proxy-legacy"}


@dataclass
class StackHandle:
    run_dir: Path
    manifest: dict[str, Any]

    @property
    def supervisor_pid(self) -> int:
        return int(self.manifest["supervisor_pid"])

    @property
    def mode(self) -> str:
        return str(self.manifest.get("mode"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def find_running(run_root: Path) -> StackHandle | None:
    """The newest run folder under ``run_root`` whose supervisor is still alive."""
    manifests = sorted(run_root.glob("*/processes.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(manifests):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(int(manifest.get("supervisor_pid", 0))):
            return StackHandle(path.parent, manifest)
    return None


def stop_stack(handle: StackHandle, timeout: float = 60.0) -> None:
    """SIGTERM the supervisor (it stops its children first) and wait for it to go."""
    os.kill(handle.supervisor_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(handle.supervisor_pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"supervisor {handle.supervisor_pid} still running after {timeout}s")
        time.sleep(0.1)


def start_stack(
    config_path: Path, run_dir: Path, ports: dict[str, int], timeout: float = 180.0
) -> StackHandle:
    """Start `memory-proxy up` detached and wait until it reports every process ready."""
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "memory_proxy.cli",
        "up",
        "--config",
        str(config_path),
        "--run-dir",
        str(run_dir),
    ]
    for flag, port in ports.items():
        argv += [f"--{flag}-port", str(port)]
    env = {**os.environ, **LITELLM_OFFLINE_ENV}
    with (run_dir / "supervisor.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    manifest_path = run_dir / "processes.json"
    deadline = time.monotonic() + timeout
    while not manifest_path.exists():
        code = process.poll()
        if code is not None:
            tail = (run_dir / "supervisor.log").read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(
                f"memory-proxy up exited with {code} while starting:\n" + "\n".join(tail)
            )
        if time.monotonic() > deadline:
            process.terminate()
            raise TimeoutError(f"memory-proxy up not ready within {timeout:.0f}s")
        time.sleep(0.2)
    return StackHandle(run_dir, json.loads(manifest_path.read_text()))


def verify(url: str, use_sdk: bool, config: ProxyConfig) -> list[str]:
    """Health says the expected proxy answers, and a canary request succeeds."""
    problems: list[str] = []
    headers = {"x-api-key": config.general.master_key} if config.general.master_key else {}
    try:
        health = httpx.get(url + "/health", timeout=10).json()
        if health.get("service") != SERVICES[use_sdk]:
            problems.append(f"/health names {health.get('service')!r}, not {SERVICES[use_sdk]!r}")
        model = next(name for name in config.model_names if "*" not in name)
        reply = httpx.post(
            url + "/v1/chat/completions",
            json={
                "model": model,
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "cutover canary"}],
            },
            headers=headers,
            timeout=60,
        )
        if reply.status_code != 200:
            problems.append(f"canary chat request answered {reply.status_code}: {reply.text[:200]}")
        elif not reply.json().get("choices"):
            problems.append("canary reply has no choices")
    except (httpx.HTTPError, ValueError, StopIteration) as exc:
        problems.append(f"health/canary check failed: {type(exc).__name__}: {exc}")
    return problems
