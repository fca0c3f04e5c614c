"""`make demo` runs `harness demo`: the same code path, end to end, in the suite."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from harness.demo import run_demo


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(tmp_path) == 0
    out = capsys.readouterr().out
    for step in range(1, 8):
        assert f"[{step}]" in out
    assert "finish_reason=stop" in out
    assert "stop_reason=end_turn" in out
    assert "x-sm-user-id=anthropic-sdk  conversation=demo-session-1" in out
    (run_dir,) = (tmp_path / "demo").iterdir()
    log = (run_dir / "sdk-proxy.log").read_text()
    assert log.count('"event":"request"') >= 3
    # Every process it started is gone: their ports refuse connections.
    urls = re.findall(r"listening on (http://127\.0\.0\.1:\d+)", out)
    assert len(urls) == 2
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health/liveliness", timeout=2)
