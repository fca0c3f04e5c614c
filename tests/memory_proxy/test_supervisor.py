"""``memory-proxy up``: the pure plan, then real runs of the command as a subprocess.

The real runs start the real processes on free ports, pointed at the test sandbox. Only
two of them run a LiteLLM server to readiness (~13 s each): ``both`` (then SIGTERM) and
the crash run in ``legacy`` mode; the Ctrl-C run interrupts one a second into its start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from harness.loopback import free_port
from harness.sandbox.client import SandboxControl
from memory_proxy.config import ProxyConfig, parse_config
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.stack_plan import (
    PlanError,
    Ports,
    ProcessSpec,
    StackPlan,
    default_run_dir,
    plan_stack,
    resolve_mode,
)
from memory_proxy.supervisor import Supervisor
from tests.conftest import MASTER_KEY

# -- planning (pure) -----------------------------------------------------------------------


def config(use_sdk: bool, path: str = "/etc/memory/config.yaml") -> ProxyConfig:
    raw = {
        "model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o"}}],
        "general_settings": {"use_sdk": use_sdk},
    }
    return parse_config(raw, path=Path(path), environ={})


def roles_and_ports(cfg: ProxyConfig, *args: Any, **kwargs: Any) -> list[tuple[str, int]]:
    return [(p.role, p.port) for p in plan_stack(cfg, *args, **kwargs).processes]


def test_use_sdk_picks_the_mode() -> None:
    assert resolve_mode(None, use_sdk=True) == "sdk"
    assert resolve_mode(None, use_sdk=False) == "legacy"
    assert resolve_mode("both", use_sdk=False) == "both"
    assert resolve_mode("legacy", use_sdk=True) == "legacy"


def test_use_sdk_false_plans_litellm_then_legacy_on_the_main_port() -> None:
    plan = plan_stack(config(use_sdk=False), python="/py")
    assert plan.mode == "legacy"
    assert [(p.role, p.port) for p in plan.processes] == [("litellm", 4000), ("legacy", 8764)]
    litellm, legacy = plan.processes
    assert litellm.argv == ()  # LiteLLMServer builds it on a derived config
    assert litellm.kind == "LiteLLM server"
    assert legacy.argv == (
        "/py",
        "-m",
        "memory_proxy.cli",
        "--log-level",
        "INFO",
        "legacy",
        "--config",
        "/etc/memory/config.yaml",
        "--host",
        "127.0.0.1",
        "--port",
        "8764",
        "--litellm-url",
        "http://127.0.0.1:4000",
    )
    assert legacy.url == "http://127.0.0.1:8764"
    assert legacy.ready_path == "/health/liveliness"
    assert legacy.log_name == "legacy.log"


def test_use_sdk_true_plans_only_the_sdk_proxy() -> None:
    plan = plan_stack(config(use_sdk=True), python="/py")
    assert plan.mode == "sdk"
    (sdk,) = plan.processes
    assert (sdk.role, sdk.port, sdk.kind) == ("sdk", 8764, "SDK proxy")
    assert sdk.argv[3:7] == ("--log-level", "INFO", "serve", "--config")


@pytest.mark.parametrize("use_sdk", [True, False])
def test_mode_overrides_use_sdk(use_sdk: bool) -> None:
    cfg = config(use_sdk)
    assert roles_and_ports(cfg, "sdk") == [("sdk", 8764)]
    assert roles_and_ports(cfg, "legacy") == [("litellm", 4000), ("legacy", 8764)]
    assert roles_and_ports(cfg, "both") == [("litellm", 4000), ("sdk", 8764), ("legacy", 8765)]


def test_port_overrides() -> None:
    cfg = config(use_sdk=False)
    ports = Ports(main=9001, legacy=9002, litellm=9003)
    assert roles_and_ports(cfg, "both", ports=ports) == [
        ("litellm", 9003),
        ("sdk", 9001),
        ("legacy", 9002),
    ]
    # An explicit legacy port wins in legacy mode too; the main port then goes unused.
    assert roles_and_ports(cfg, "legacy", ports=ports) == [("litellm", 9003), ("legacy", 9002)]
    assert roles_and_ports(cfg, "legacy", ports=Ports(main=9001)) == [
        ("litellm", 4000),
        ("legacy", 9001),
    ]
    plan = plan_stack(cfg, "both", ports=ports, host="::1", log_level="DEBUG")
    legacy = plan.spec("legacy")
    assert legacy is not None
    assert legacy.argv[-2:] == ("--litellm-url", "http://[::1]:9003")
    assert "DEBUG" in legacy.argv
    assert plan.spec("sdk") is not None and plan_stack(cfg, "legacy").spec("sdk") is None


def test_two_processes_on_one_port_are_refused() -> None:
    with pytest.raises(PlanError, match="LiteLLM server and the SDK proxy .* port 4000"):
        plan_stack(config(use_sdk=True), "both", ports=Ports(main=4000))
    with pytest.raises(PlanError, match="SDK proxy and the legacy proxy .* port 8764"):
        plan_stack(config(use_sdk=True), "both", ports=Ports(legacy=8764))


def test_default_run_dir_is_a_utc_timestamp() -> None:
    from datetime import UTC, datetime

    assert default_run_dir(datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)) == Path(
        "runs/20250304T050607Z"
    )


# -- real runs ---------------------------------------------------------------------------------


@dataclass
class UpRun:
    """One ``memory-proxy up`` subprocess and where it writes."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def manifest(self, timeout: float = 120.0) -> dict[str, Any]:
        """``processes.json``, written once everything is ready; fail fast if ``up`` exits."""
        path = self.run_dir / "processes.json"
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self.process.poll() is not None:
                pytest.fail(f"up exited with {self.process.returncode}:\n{self.stderr}")
            if time.monotonic() > deadline:
                pytest.fail(f"up not ready within {timeout} s:\n{self.stderr}")
            time.sleep(0.1)
        return dict(json.loads(path.read_text()))

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)


@contextmanager
def memory_proxy_up(config_path: Path, tmp_path: Path, *args: str) -> Iterator[UpRun]:
    run_dir = tmp_path / "run"
    stdout_path, stderr_path = tmp_path / "up.stdout", tmp_path / "up.stderr"
    argv = [sys.executable, "-m", "memory_proxy.cli", "up", "--config", str(config_path)]
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [*argv, "--run-dir", str(run_dir), *args],
            stdout=out,
            stderr=err,
            env={**os.environ, **LITELLM_OFFLINE_ENV},
            start_new_session=True,
        )
    run = UpRun(process, run_dir, stdout_path, stderr_path)
    try:
        yield run
    finally:
        _leave_nothing_running(run)


def _leave_nothing_running(run: UpRun) -> None:
    """After a failed test: stop ``up`` as a user would, then kill what it left behind."""
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGTERM)
        try:
            run.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.process.kill()
            run.process.wait()
    manifest = run.run_dir / "processes.json"
    if manifest.exists():
        for child in json.loads(manifest.read_text())["processes"]:
            _kill_group(child["pid"])


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def ask(url: str, prompt: str) -> str:
    with openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0) as client:
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt}]
        )
    return reply.choices[0].message.content or ""


def report_startup(mode: str, manifest: dict[str, Any]) -> None:
    # Shown with -s: the measured start-up time of each mode and each process in it.
    parts = ", ".join(f"{p['role']} {p['startup_seconds']:.1f} s" for p in manifest["processes"])
    print(f"\nup --mode {mode}: ready in {manifest['startup_seconds']:.1f} s ({parts})")


@pytest.mark.slow
def test_up_sdk_serves_and_stops_on_sigterm(
    sandbox_config_path: Path, sandbox: SandboxControl, tmp_path: Path
) -> None:
    port = free_port()
    args = ["--mode", "sdk", "--sdk-port", str(port)]
    with memory_proxy_up(sandbox_config_path, tmp_path, *args) as run:
        manifest = run.manifest()
        report_startup("sdk", manifest)
        (sdk,) = manifest["processes"]
        assert (sdk["kind"], sdk["url"]) == ("SDK proxy", f"http://127.0.0.1:{port}")
        assert "Hello from up" in ask(sdk["url"], "Hello from up")
        assert len(sandbox.api_requests()) == 1

        run.process.send_signal(signal.SIGTERM)
        assert run.wait() == 0
    assert not listening(port)
    assert not group_alive(sdk["pid"])
    out = run.stdout
    assert f"SDK proxy       http://127.0.0.1:{port}" in out
    assert f"pid {sdk['pid']}" in out and str(run.run_dir / "sdk.log") in out
    assert "all 1 ready in" in out and "all stopped" in out
    assert (run.run_dir / "sdk.log").stat().st_size > 0


@pytest.mark.slow
def test_up_both_serves_the_same_request_on_both_ports_then_sigterm(
    sandbox_config_path: Path, sandbox: SandboxControl, tmp_path: Path
) -> None:
    ports = {"sdk": free_port(), "legacy": free_port(), "litellm": free_port()}
    args = ["--mode", "both"] + [f"--{role}-port={port}" for role, port in ports.items()]
    with memory_proxy_up(sandbox_config_path, tmp_path, *args) as run:
        manifest = run.manifest()
        report_startup("both", manifest)
        by_role = {p["role"]: p for p in manifest["processes"]}
        assert [p["role"] for p in manifest["processes"]] == ["litellm", "sdk", "legacy"]
        for role, port in ports.items():
            assert by_role[role]["url"] == f"http://127.0.0.1:{port}"
            assert Path(by_role[role]["log"]) == run.run_dir / f"{role}.log"

        # Measured: while starting, the LiteLLM server lists the openai deployment's models
        # (GET <api_base>/models, once); the SDK proxy calls nothing before a request.
        start_up = sandbox.api_requests()
        assert [(r["method"], r["path"]) for r in start_up] == [
            ("GET", "/v3/api.openai.com/v1/models")
        ]
        since = sandbox.latest_seq()

        prompt = "The same request through both architectures"
        sdk_text = ask(by_role["sdk"]["url"], prompt)
        legacy_text = ask(by_role["legacy"]["url"], prompt)
        # The sandbox's reply is a function of the request: both paths sent the same one.
        assert prompt in sdk_text and sdk_text == legacy_text
        captured = sandbox.api_requests(since)
        assert [r["path"] for r in captured] == ["/v3/api.openai.com/v1/chat/completions"] * 2
        assert {r["headers"]["x-sm-user-id"] for r in captured} == {"openai-sdk"}

        run.process.send_signal(signal.SIGTERM)
        assert run.wait() == 0
    # Children in reverse order, then itself: nothing is left listening or running.
    for role, port in ports.items():
        assert not listening(port), role
        assert not group_alive(by_role[role]["pid"]), role
    assert "all 3 ready in" in run.stdout and "all stopped" in run.stdout


def test_port_in_use_stops_up_before_anything_starts(
    sandbox_config_path: Path, tmp_path: Path
) -> None:
    litellm_port, sdk_port = free_port(), free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        args = [
            "--mode=both",
            f"--litellm-port={litellm_port}",
            f"--sdk-port={sdk_port}",
            f"--legacy-port={busy_port}",
        ]
        with memory_proxy_up(sandbox_config_path, tmp_path, *args) as run:
            assert run.wait(timeout=30) == 1
    # The legacy proxy is the last to start: refusing it means every port was checked first.
    assert f"port {busy_port} on 127.0.0.1 is already in use" in run.stderr
    assert "cannot start the legacy proxy there" in run.stderr
    assert not run.run_dir.exists()  # no log folder, no log: nothing was started
    assert not listening(litellm_port) and not listening(sdk_port)


@pytest.mark.slow
def test_a_crashed_child_is_reported_and_the_others_stopped(
    sandbox_config_path: Path, tmp_path: Path
) -> None:
    main_port, litellm_port = free_port(), free_port()
    # No --mode: the config's use_sdk: false asks for the legacy architecture.
    args = [f"--sdk-port={main_port}", f"--litellm-port={litellm_port}"]
    with memory_proxy_up(sandbox_config_path, tmp_path, *args) as run:
        manifest = run.manifest()
        report_startup("legacy", manifest)
        assert manifest["mode"] == "legacy"
        litellm, legacy = manifest["processes"]
        assert (litellm["role"], legacy["role"]) == ("litellm", "legacy")
        assert legacy["url"] == f"http://127.0.0.1:{main_port}"
        assert "crash test" in ask(legacy["url"], "crash test")

        os.kill(legacy["pid"], signal.SIGKILL)
        assert run.wait(timeout=60) == 1
    err = run.stderr
    assert f"the legacy proxy (pid {legacy['pid']}, {legacy['url']}) exited unexpectedly" in err
    assert "exit code -9 (killed by SIGKILL)" in err
    assert re.search(rf"last \d+ lines of {re.escape(str(run.run_dir / 'legacy.log'))}", err)
    assert not listening(litellm_port) and not listening(main_port)
    assert not group_alive(litellm["pid"])
    assert "all stopped" in run.stdout


def test_ctrl_c_while_starting_leaves_nothing_behind(
    sandbox_config_path: Path, tmp_path: Path
) -> None:
    main_port, litellm_port = free_port(), free_port()
    args = ["--mode=legacy", f"--sdk-port={main_port}", f"--litellm-port={litellm_port}"]
    with memory_proxy_up(sandbox_config_path, tmp_path, *args) as run:
        log = run.run_dir / "litellm.log"
        deadline = time.monotonic() + 30
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.exists(), run.stderr
        time.sleep(1.0)  # the LiteLLM server is importing, far from ready
        # A terminal's Ctrl-C reaches the whole foreground group; the children have their own.
        os.killpg(run.process.pid, signal.SIGINT)
        assert run.wait(timeout=30) == 0
    assert not (run.run_dir / "processes.json").exists()
    assert not (run.run_dir / "legacy.log").exists()  # the next process never started
    assert not listening(litellm_port) and not listening(main_port)
    assert "interrupted while starting the LiteLLM server" in run.stdout
    (pid,) = re.findall(r"started LiteLLM server \(pid (\d+)\)", run.stderr)
    assert not group_alive(int(pid))


def test_a_process_failing_to_start_stops_those_started_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process, with stand-ins: a static file server, then a "proxy" that exits at once.
    first_port, second_port = free_port(), free_port()
    http_server = (sys.executable, "-m", "http.server", str(first_port), "--bind", "127.0.0.1")
    crasher = (sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)")
    plan = StackPlan(
        "both",
        tmp_path / "config.yaml",
        (
            ProcessSpec("sdk", "127.0.0.1", first_port, http_server, ready_path="/"),
            ProcessSpec("legacy", "127.0.0.1", second_port, crasher),
        ),
    )
    supervisor = Supervisor(plan, tmp_path / "run", grace=5.0)
    assert supervisor.run() == 1
    out, err = capsys.readouterr()
    assert f"SDK proxy       http://127.0.0.1:{first_port}" in out  # it was up
    assert "legacy proxy exited during start-up with exit code 3" in err
    assert "boom: bad config" in err  # the child's own last words
    assert "stopped SDK proxy" in out
    assert not listening(first_port)
