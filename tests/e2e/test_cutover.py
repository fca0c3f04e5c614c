"""Cutover and rollback through the real supervisor, LiteLLM server and both proxies."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.cutover.stack_control import find_running, stop_stack
from harness.cutover.switch import SwitchOptions, cutover, rollback
from harness.loopback import LoopbackServer, free_port
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config


def report(tmp: Path, verdict: str) -> Path:
    folder = tmp / f"report-{verdict}"
    folder.mkdir(exist_ok=True)
    (folder / "report.json").write_text(
        json.dumps({"schema": "harness-readiness-report/1", "decision": verdict})
    )
    return folder


@pytest.fixture
def options(tmp_path: Path, sandbox_server: LoopbackServer) -> Iterator[SwitchOptions]:
    config = write_sandbox_config(sandbox_server.url, tmp_path / "config.yaml")
    opts = SwitchOptions(
        config=config,
        run_root=tmp_path / "runs",
        records=tmp_path / "records",
        ports={"sdk": free_port(), "litellm": free_port()},
        ready_timeout=120,
    )
    yield opts
    running = find_running(opts.run_root)
    if running is not None:
        stop_stack(running)


def service(options: SwitchOptions) -> str:
    return str(httpx.get(options.main_url + "/health", timeout=10).json()["service"])


def records(options: SwitchOptions) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(options.records.glob("*.json"))]


@pytest.mark.slow
def test_cutover_and_rollback(
    options: SwitchOptions,
    sandbox: SandboxControl,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original = options.config.read_text()
    assert "use_sdk: false" in original
    # The stack starts as before the migration: LiteLLM server + legacy proxy.
    assert rollback(options) == 0
    assert service(options) == "memory-proxy-legacy"

    # NO-GO (or no report at all) is refused, and nothing changes.
    assert cutover(options, report(tmp_path, "NO-GO")) == 1
    assert cutover(options, tmp_path / "missing") == 1
    assert options.config.read_text() == original
    assert "refused" in capsys.readouterr().out

    # A failing canary on the SDK side rolls back by itself.
    with _failing_until_canary(sandbox):
        assert cutover(options, report(tmp_path, "GO")) == 1
    assert options.config.read_text() == original
    assert service(options) == "memory-proxy-legacy"
    assert records(options)[-1]["result"] == "rolled_back"

    # GO: the config flips in place (comments kept) and the SDK proxy serves.
    assert cutover(options, report(tmp_path, "GO")) == 0
    flipped = options.config.read_text()
    assert flipped == original.replace("use_sdk: false", "use_sdk: true")
    assert service(options) == "memory-proxy-sdk"
    record = records(options)[-1]
    assert record["result"] == "done" and record["verdict"] == "GO"
    # Idempotent.
    capsys.readouterr()
    assert cutover(options, report(tmp_path, "GO")) == 0
    assert "nothing to change" in capsys.readouterr().out

    # Forced cutover needs a reason, and records it (here: already cut over, so no-op).
    assert rollback(options) == 0
    assert service(options) == "memory-proxy-legacy"
    assert options.config.read_text() == original
    assert rollback(options) == 0
    assert "nothing to change" in capsys.readouterr().out


@contextlib.contextmanager
def _failing_until_canary(sandbox: SandboxControl) -> Iterator[None]:
    """Every upstream call fails until the SDK's canary has failed; then the sandbox heals,
    so the automatic rollback to the legacy stack can pass its own canary."""
    sandbox.set_faults(error_rate_500=1.0)
    start = sandbox.latest_seq()
    done = threading.Event()

    def heal() -> None:
        deadline = time.monotonic() + 150
        while not done.is_set() and time.monotonic() < deadline:
            with SandboxControl(sandbox.url) as control:
                if any(r.get("status") == 500 for r in control.api_requests(start)):
                    control.set_faults()
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=heal, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(timeout=5)
        sandbox.set_faults()
