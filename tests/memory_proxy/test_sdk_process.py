"""The SDK proxy as users run it: `memory-proxy serve` in its own process."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.loopback import LoopbackServer, free_port
from memory_proxy.litellm_env import LITELLM_OFFLINE_ENV
from memory_proxy.processes import ChildProcess
from tests.conftest import MASTER_KEY

AUTH = {"x-api-key": MASTER_KEY}


@pytest.fixture
def served(sandbox_config_path: Path, tmp_path: Path) -> Iterator[ChildProcess]:
    port = free_port()
    child = ChildProcess(
        "SDK proxy",
        [
            sys.executable,
            "-m",
            "memory_proxy.cli",
            "serve",
            "--config",
            str(sandbox_config_path),
            "--port",
            str(port),
        ],
        port=port,
        log_path=tmp_path / "sdk.log",
        env=LITELLM_OFFLINE_ENV,
        ready_timeout=90,
    )
    with child:
        yield child


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_stream_finish(served: ChildProcess, sandbox) -> None:  # type: ignore[no-untyped-def]
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 300,
        "stream": True,
        "messages": [{"role": "user", "content": "[sandbox:stream_delay_ms=60] a longer answer"}],
    }
    lines = []
    with httpx.stream(
        "POST", served.url + "/v1/messages", json=body, headers=AUTH, timeout=30
    ) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            lines.append(line)
            if line == "event: message_start":
                assert served.pid is not None
                os.kill(served.pid, signal.SIGTERM)
    assert "event: message_stop" in lines  # the stream was completed, not cut
    deadline = time.monotonic() + 30
    while served.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught (exit by signal).
    assert served.returncode == -signal.SIGTERM
    log = served.log_path.read_text()
    assert "Application shutdown complete" in log
    assert '"stream_outcome":"complete"' in log
    assert MASTER_KEY not in log and "sk-ant-sandbox" not in log


def test_one_structured_log_line_per_request(
    sdk_proxy: LoopbackServer,
    sandbox,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    caplog.set_level(logging.INFO, logger="memory_proxy.access")
    prompt = "a secret prompt that must not be logged"
    reply = httpx.post(
        sdk_proxy.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]},
        headers={**AUTH, "x-memory-user-id": "carol"},
    )
    request_id = reply.headers["x-request-id"]
    lines = [json.loads(r.getMessage()) for r in caplog.records if request_id in r.getMessage()]
    assert len(lines) == 1
    line = lines[0]
    assert line["status"] == 200 and line["model"] == "gpt-4o" and line["user_id"] == "carol"
    assert line["stream"] is False and line["attempts"] == 1 and line["latency_ms"] > 0
    text = caplog.text
    assert prompt not in text and MASTER_KEY not in text
