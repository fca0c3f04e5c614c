"""`harness show PAIR_ID`: one pair in full, redacted, the diff highlighted."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.store.capture_store import CaptureStore
from tests.harness.builders import make_pair, messages_observation, reply

SECRET = "sk-ant-api03-verysecretvalue-0000"


def test_show_prints_request_answers_diff_and_upstream_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "shadow.db"
    upstream = {
        target: [
            {
                "method": "POST",
                "path": "/v3/api.anthropic.com/v1/messages",
                "status": 200,
                "headers": {"x-sm-user-id": f"{target}-user", "x-api-key": SECRET},
            }
        ]
        for target in ("sdk", "legacy")
    }
    with CaptureStore(store_path) as store:
        store.put(
            make_pair(
                messages_observation(stream=True),
                messages_observation(reply(stop="max_tokens"), target="legacy", stream=True),
                endpoint="messages",
                stream=True,
                request_id="pair-1",
                headers={"x-api-key": SECRET, "user-agent": "claude-cli/2.1.332"},
                request_body={"model": "claude-sonnet-4.5", "api_key": SECRET, "stream": True},
                upstream=upstream,
            )
        )
    argv = ["show", "pair-1", "--store", str(store_path), "--config", str(tmp_path / "no.yaml")]
    assert main([*argv, "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "Pair pair-1: messages stream" in out
    assert "client request:" in out and "claude-cli/2.1.332" in out
    assert "assembled message:" in out and "event sequence:" in out
    assert "message_start" in out  # the stream's events, in order
    # The field-level diff, marked on each side.
    assert "path: body.stop_reason" in out
    assert "[-end_turn-]" in out and "{+max_tokens+}" in out
    # Each side's provider calls, with their memory headers.
    assert "x-sm-user-id=sdk-user" in out and "x-sm-user-id=legacy-user" in out
    assert SECRET not in out
    assert main([*argv, "--color", "always"]) == 0
    assert "\x1b[31mend_turn\x1b[0m" in capsys.readouterr().out
    assert main(["show", "missing", "--store", str(store_path)]) == 2
