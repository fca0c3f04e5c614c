"""`make demo` runs `harness demo`: the same code path, end to end, with a shorter load."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from harness.demo import run_demo
from tests.conftest import MASTER_KEY


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(tmp_path, load_seconds=4, users=50) == 0
    out = capsys.readouterr().out
    for step in range(1, 9):
        assert f"[{step}/8]" in out
    replay = out[out.index("[4/8]") : out.index("[5/8]")]
    assert "mismatches: 0" in replay, replay  # the corpus replayed through shadow mode
    assert re.search(r"Cutover readiness: (GO|NO-GO|INCONCLUSIVE)", out)
    (run_dir,) = (tmp_path / "demo").iterdir()
    # The report exists, and `latest` points at it.
    latest = tmp_path / "latest"
    report = json.loads((latest / "report.json").read_text())
    assert report["decision"] in ("GO", "NO-GO", "INCONCLUSIVE")
    # Every process it started is gone: their ports refuse connections.
    for url in set(re.findall(r"(http://127\.0\.0\.1:\d+)", out)):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/health/liveliness", timeout=2)
    # No secret reached a log, the store, the load output or the report.
    secrets = [
        MASTER_KEY,
        "sk-ant-sandbox-0000000000000000",
        "sm-sandbox-0000000000000000",
        "sk-openai-sandbox-000000000000",
    ]
    scanned = 0
    for path in [*run_dir.rglob("*"), *latest.resolve().rglob("*")]:
        if path.is_file() and path.suffix in {
            ".log",
            ".db",
            ".db-wal",
            ".csv",
            ".html",
            ".json",
            ".md",
            ".jsonl",
        }:
            data = path.read_bytes()
            scanned += 1
            for secret in secrets:
                assert secret.encode() not in data, f"{secret} in {path}"
    assert scanned > 10
