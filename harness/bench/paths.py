"""The five ways a request can travel, started side by side as processes on loopback.

::

    direct   loadgen -> sandbox                                    (the limit)
    sdk      loadgen -> SDK proxy -> sandbox
    litellm  loadgen -> LiteLLM server -> sandbox
    legacy   loadgen -> legacy proxy -> LiteLLM server -> sandbox  (two hops)
    shadow   loadgen -> SDK proxy in shadow mode -> sandbox
                                   \\-> mirror -> legacy proxy -> LiteLLM server
                                                                  -> mirror sandbox
    tap      loadgen -> SDK proxy, shadow mode's upstream tap recording every
                        request (records dropped) -> sandbox        (opt-in: its CPU
                        per request less the sdk path's is what the tap costs)

One sandbox serves every path's primary; the legacy proxy and LiteLLM server are shared
by the ``legacy`` and ``litellm`` paths (only one path carries load at a time). The
shadow's mirror target is a legacy proxy + LiteLLM server + sandbox of its own (in use
the provider is across the network: the mirror's calls must not queue in the process
that answers the primary's), lowered once ready (nice ``mirror_nice``, 19 by default,
and SCHED_IDLE unless ``mirror_idle`` is off): shadow mode must not take CPU from the
primary, and on a host they share, the kernel then gives the mirror only what the
primary leaves (the mirror's bounded queue and ``--mirror-rate`` cap shed the rest).
``--mirror-normal --mirror-nice 0`` shows the cost of not doing so. A path's
``processes`` are the servers whose CPU it is charged with; ``side`` are the ones it
makes work without answering the client: the shadow's mirror sidecar (which lowers its
own priority, ``shadow.mirror_nice``) and the mirror's target.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.bench.procstat import group_members
from harness.cpu_priority import yield_cpu
from harness.loopback import free_port
from harness.paths import HARNESS_CONFIG
from harness.sandbox.config_file import write_sandbox_config
from harness.stack import Stack
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.litellm_server import LiteLLMServer
from memory_proxy.processes import ChildProcess

__all__ = [
    "BENCH_SANDBOX_ARGS",
    "DEFAULT_PATHS",
    "PATH_NAMES",
    "BenchPath",
    "parse_paths",
    "start_paths",
]

PATH_NAMES = ("direct", "sdk", "litellm", "legacy", "shadow", "tap")
DEFAULT_PATHS = ("direct", "sdk", "litellm", "legacy", "shadow")
# A bounded capture list: the bench never reads it, and it should not grow the heap.
BENCH_SANDBOX_ARGS = ("--capture-limit", "100")


@dataclass(frozen=True)
class BenchPath:
    name: str
    url: str
    processes: dict[str, int]  # role -> pid (leader of its process group)
    startup_seconds: dict[str, float]  # role -> seconds to ready
    side: dict[str, int] = field(default_factory=dict)

    @property
    def is_direct(self) -> bool:
        return self.name == "direct"

    @property
    def ready_seconds(self) -> float:
        """Time to ready of the slowest part: the parts can be started together."""
        return max(self.startup_seconds.values())


def parse_paths(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PATH_NAMES]
    if unknown or not names:
        raise ValueError(
            f"unknown path(s) {unknown or text!r}; choose from {', '.join(PATH_NAMES)}"
        )
    return list(dict.fromkeys(names))


def start_mirror_target(
    stack: Stack,
    nice: int,
    idle: bool,
    cpus: Sequence[int] = (),
    sandbox_args: Sequence[str] = (),
) -> tuple[ChildProcess, LiteLLMServer, ChildProcess]:
    """A legacy proxy + LiteLLM server for the shadow to mirror to, lowered once ready.

    It calls a sandbox of its own: in use the provider is across the network, so the
    mirror's upstream calls must not queue on the event loop that answers the primary's.
    """
    sandbox = stack.sandbox(*BENCH_SANDBOX_ARGS, *sandbox_args, name="mirror-sandbox")
    config = write_sandbox_config(sandbox.url, stack.run_dir / "mirror-sandbox.yaml")
    server = stack.litellm_server(config, name="mirror-litellm-server")
    legacy = stack.legacy_proxy(config, server.url, name="mirror-legacy-proxy")
    for leader in (sandbox.pid, server.pid, legacy.pid):
        # Each leads its own process group: every worker it forked is lowered too.
        for pid in group_members(leader) if leader is not None else []:
            yield_cpu(pid, nice=nice, idle=idle, cpus=cpus)
    return legacy, server, sandbox


def start_paths(
    stack: Stack,
    names: Sequence[str],
    config: Path,
    sandbox: ChildProcess,
    *,
    mirror_nice: int = 19,
    mirror_idle: bool = True,
    mirror_cpus: Sequence[int] = (),
    mirror_rate: float = 0.0,
    sandbox_args: Sequence[str] = (),
) -> dict[str, BenchPath]:
    """Start what ``names`` need (each server once) and describe each path."""
    paths: dict[str, BenchPath] = {}
    assert sandbox.pid is not None and sandbox.startup_seconds is not None
    if "direct" in names:
        paths["direct"] = BenchPath(
            "direct",
            sandbox.url,
            {"sandbox": sandbox.pid},
            {"sandbox": sandbox.startup_seconds},
        )
    if "sdk" in names:
        sdk = stack.sdk_proxy(config)
        paths["sdk"] = BenchPath("sdk", sdk.url, _pids(sdk=sdk), _startups(sdk=sdk))
    if "tap" in names:
        port = free_port()
        tapped = stack.start(
            ChildProcess(
                "SDK proxy (upstream tap)",
                [
                    sys.executable,
                    "-m",
                    "harness.bench.tapped_proxy",
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                ],
                port=port,
                log_path=stack.run_dir / "tapped-sdk-proxy.log",
                env=LITELLM_OFFLINE_ENV,
                ready_timeout=90,
            )
        )
        paths["tap"] = BenchPath("tap", tapped.url, _pids(tap=tapped), _startups(tap=tapped))
    if {"legacy", "litellm"} & set(names):
        server = stack.litellm_server(config)
        if "litellm" in names:
            part = {"litellm": server}
            paths["litellm"] = BenchPath("litellm", server.url, _pids(**part), _startups(**part))
        if "legacy" in names:
            legacy = stack.legacy_proxy(config, server.url)
            two_hop = {"legacy": legacy, "litellm": server}
            paths["legacy"] = BenchPath(
                "legacy", legacy.url, _pids(**two_hop), _startups(**two_hop)
            )
    if "shadow" in names:
        mirror_legacy, mirror_server, mirror_sandbox = start_mirror_target(
            stack, mirror_nice, mirror_idle, mirror_cpus, sandbox_args
        )
        shadow = stack.shadow(
            config,
            HARNESS_CONFIG,
            mirror_legacy.url,
            stack.run_dir / "shadow.db",
            max_rate=mirror_rate,
        )
        side = _pids(
            mirror_legacy=mirror_legacy, mirror_litellm=mirror_server, mirror_sandbox=mirror_sandbox
        )
        sidecar = _sidecar_pid(shadow.url)
        if sidecar is not None:
            side = {"mirror_sidecar": sidecar, **side}
            if mirror_cpus:
                yield_cpu(sidecar, cpus=mirror_cpus)
        paths["shadow"] = BenchPath(
            "shadow", shadow.url, _pids(shadow=shadow), _startups(shadow=shadow), side=side
        )
    if mirror_cpus:
        # Both primaries (plain and shadow) on the other cores, alike: the mirror side's
        # caches then stay off the cores the primary runs on.
        others = set(range(os.cpu_count() or 1)) - set(mirror_cpus)
        for name in ("sdk", "shadow", "tap"):
            if name in paths and others:
                yield_cpu(paths[name].processes[name], cpus=others)
    return {name: paths[name] for name in names}


def _sidecar_pid(shadow_url: str) -> int | None:
    """The shadow's mirror sidecar (its own process group), when it runs one."""
    stats = httpx.get(shadow_url + "/_shadow/stats", timeout=10.0, trust_env=False).json()
    pid = stats.get("sidecar_pid")
    return int(pid) if isinstance(pid, int) else None


def _pids(**parts: object) -> dict[str, int]:
    pids = {}
    for role, part in parts.items():
        pid = getattr(part, "pid", None)
        if pid is None:
            raise RuntimeError(f"{role} has no pid: it is not running")
        pids[role] = int(pid)
    return pids


def _startups(**parts: object) -> dict[str, float]:
    return {
        role: float(getattr(part, "startup_seconds", 0.0) or 0.0) for role, part in parts.items()
    }
