"""The legacy proxy (the shadow's target) crashes mid-run and comes back.

Real processes: `harness shadow` (SDK primary + mirror sidecar) mirroring to the real
legacy proxy in front of the real LiteLLM server. The legacy proxy is SIGKILLed, the
circuit breaker opens, the proxy is restarted on the same port and mirroring resumes.
Clients see none of it, and every request is accounted for: mirrored (ok or failed,
stored either way) or skipped with a reason.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.stack import Stack
from harness.store.capture_store import CaptureStore
from memory_proxy.litellm_server import LiteLLMServer
from tests.conftest import MASTER_KEY

AUTH = {"x-api-key": MASTER_KEY}
COOLDOWN = 1.0


def _harness_yaml(path: Path) -> Path:
    path.write_text(
        "shadow:\n"
        "  aa_rate: 0\n"
        "  timeout_seconds: 20\n"
        f"  circuit_breaker: {{failures: 3, cooldown_seconds: {COOLDOWN}}}\n"
    )
    return path


def _stats(url: str) -> dict[str, Any]:
    return httpx.get(url + "/_shadow/stats", timeout=5).json()


def _settled(url: str, seen: int, timeout: float = 30.0) -> dict[str, Any]:
    """Stats once every request seen so far is stored or skipped."""
    deadline = time.monotonic() + timeout
    while True:
        stats = _stats(url)
        done = stats["completed"] + sum(stats["skipped"].values())
        if stats["seen"] == seen and done == seen and stats["in_flight"] == 0:
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.1)


@pytest.mark.slow
def test_the_shadow_target_crashes_and_restarts_during_a_run(
    litellm_server: LiteLLMServer, sandbox_config_path: Path, tmp_path: Path, sandbox: Any
) -> None:
    store = tmp_path / "shadow.db"
    body = {
        "model": "claude-sonnet-4.5",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "still there?"}],
    }
    with Stack(tmp_path / "run") as stack:
        legacy = stack.legacy_proxy(sandbox_config_path, litellm_server.url)
        shadow = stack.shadow(
            sandbox_config_path, _harness_yaml(tmp_path / "harness.yaml"), legacy.url, store
        )
        with httpx.Client(base_url=shadow.url, headers=AUTH, timeout=30) as client:

            def send(n: int) -> list[int]:
                return [client.post("/v1/messages", json=body).status_code for _ in range(n)]

            before = send(4)
            stats = _settled(shadow.url, 4)
            assert stats["completed"] == 4 and stats["shadow_failed"] == 0

            assert legacy.pid is not None
            os.kill(legacy.pid, signal.SIGKILL)  # a crash, not a clean stop
            during = send(8)
            stats = _settled(shadow.url, 12)
            assert stats["breaker"] == "open"
            # Three failures open the breaker; mirrors already queued by then fail too (a
            # sidecar short of CPU may take all eight at once); the rest are skipped.
            failed = stats["shadow_failed"]
            assert failed >= 3 and failed + stats["skipped"].get("breaker_open", 0) == 8

            port = legacy.port
            stack.legacy_proxy(sandbox_config_path, litellm_server.url, port=port)
            time.sleep(COOLDOWN + 0.2)  # the breaker lets one probe through ...
            after = send(1)
            _settled(shadow.url, 13)
            after += send(4)  # ... which closed it again
            stats = _settled(shadow.url, 17)
        assert stats["breaker"] == "closed"
    assert before + during + after == [200] * 17  # clients never noticed
    pairs = [p.pair for p in CaptureStore(store).iter_pairs()]
    outcomes = Counter(p.mirror_outcome for p in pairs)
    # 4 before, the failed tries kept as evidence, 5 after; the skipped ones are counted.
    assert outcomes["mirrored"] == 9 and sum(outcomes.values()) == 9 + failed, outcomes
    assert stats["completed"] == len(pairs) == 9 + failed
    assert all(p.primary.status == 200 for p in pairs)
    failures = [p for p in pairs if p.mirror_outcome != "mirrored"]
    # The first try may reuse a pooled connection the crash cut: a dropped connection
    # rather than a refused one. Both are transport failures, stored with the reason.
    assert len(failures) == failed
    assert all(p.mirror_outcome.startswith("failed:") for p in failures)
    assert all(p.shadow is not None and p.shadow.error for p in failures)
    # Which of the two each failure was depends on how many connections the mirror had
    # pooled when the target died (a cut one fails on read, a fresh one is refused): the
    # reason is always a transport failure's, never a made-up one.
    transport = {"failed:connect", "failed:ReadError", "failed:RemoteProtocolError"}
    assert {p.mirror_outcome for p in failures} <= transport, outcomes
