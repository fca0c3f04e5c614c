"""Shadow mode end to end: sandbox -> LiteLLM server -> legacy proxy, and the SDK proxy in
shadow mode in front, both driven by the real SDKs; then the store, the upstream
correlation and the comparator, as `harness report` will use them."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from harness.compare import Comparator
from harness.loopback import LoopbackServer, free_port
from harness.redaction import Redactor
from harness.sandbox import SandboxSettings, create_app
from harness.sandbox.client import SandboxControl
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.server import build_shadow
from harness.store.capture_store import CaptureStore
from harness.upstream.collect import collect_upstream
from memory_proxy.config import load_config
from memory_proxy.legacy_proxy import create_legacy_app
from memory_proxy.litellm_server import LiteLLMServer
from tests.conftest import MASTER_KEY

CLAUDE_CODE = {
    "user-agent": "claude-cli/2.1.332 (external, cli)",
    "x-app": "cli",
    "x-claude-code-session-id": "e2e-session",
}


@dataclasses.dataclass
class Stacks:
    sdk_sandbox: str
    legacy_sandbox: str
    shadow_url: str
    store_path: Path
    secrets: frozenset[str]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    tmp = tmp_path_factory.mktemp("e2e")
    # Each proxy calls its own sandbox, so every upstream call's sender is certain.
    with (
        LoopbackServer(create_app(SandboxSettings())) as sdk_sb,
        LoopbackServer(create_app(SandboxSettings())) as legacy_sb,
    ):
        retries = "litellm_settings:\n  num_retries: 0\n  request_timeout: 30\n"
        sdk_cfg = write_sandbox_config(sdk_sb.url, tmp / "sdk.yaml", extra=retries)
        legacy_cfg = write_sandbox_config(legacy_sb.url, tmp / "legacy.yaml", extra=retries)
        with (
            LiteLLMServer(
                legacy_cfg, port=free_port(), log_path=tmp / "litellm.log", ready_timeout=180
            ) as llm,
            LoopbackServer(create_legacy_app(load_config(legacy_cfg), llm.url)) as legacy,
        ):
            config = load_config(sdk_cfg)
            settings = HarnessSettings(
                shadow=ShadowSettings(mirror_to=legacy.url, aa_rate=100.0, timeout_seconds=30.0),
                capture=CaptureSettings(store=tmp / "shadow.db", store_prompts="hash"),
            )
            run = build_shadow(config, settings)
            with LoopbackServer(run.app) as shadow:
                yield Stacks(
                    sdk_sb.url, legacy_sb.url, shadow.url, tmp / "shadow.db", config.secrets
                )
            run.close()


def drive(url: str) -> int:
    """A mixed set of requests; returns how many were sent."""
    sent = 0
    oai = openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
    ant = anthropic.Anthropic(base_url=url, api_key=MASTER_KEY, max_retries=0)
    oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "e2e one"}])
    list(
        oai.chat.completions.create(
            model="claude-sonnet-4.5",
            messages=[{"role": "user", "content": "e2e two"}],
            stream=True,
        )
    )
    ant.messages.create(
        model="claude-sonnet-4.5",
        max_tokens=100,
        messages=[{"role": "user", "content": "e2e three"}],
    )
    tools = [
        {
            "name": "Read",
            "description": "Read a file",
            "input_schema": {
                "type": "object",
                "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"],
            },
        }
    ]
    with ant.messages.stream(
        model="claude-opus-5-5",
        max_tokens=100,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "Read the README please"}],
        extra_headers=CLAUDE_CODE,
    ) as stream:
        stream.get_final_message()
    sent += 4
    with httpx.Client(base_url=url, headers={"x-api-key": MASTER_KEY}) as client:
        assert (
            client.post(
                "/v1/messages/count_tokens",
                json={
                    "model": "claude-sonnet-4.5",
                    "messages": [{"role": "user", "content": "count"}],
                },
            ).status_code
            == 200
        )
        assert client.get("/v1/models").status_code == 200
        assert (
            client.post(
                "/v1/chat/completions",
                json={
                    "model": "no-such-model",
                    "messages": [{"role": "user", "content": "x"}],
                },
            ).status_code
            == 404
        )
        assert (
            client.post(
                "/v1/messages",
                json={
                    "model": "claude-sonnet-4.5",
                    "max_tokens": 10,
                    "messages": [{"role": "user", "content": "[sandbox:status=400] bad"}],
                },
            ).status_code
            == 400
        )
        sent += 4
    return sent


@pytest.mark.slow
def test_every_request_captured_compared_and_a_difference_classified(stacks: Stacks) -> None:
    sent = drive(stacks.shadow_url)
    _wait_completed(stacks.shadow_url, sent)  # mirrors run later than the answers
    # A deliberate difference on the legacy side only: its sandbox fails the next call.
    with SandboxControl(stacks.legacy_sandbox) as legacy_sandbox:
        legacy_sandbox.set_faults(error_rate_500=1.0)
        reply = httpx.post(
            stacks.shadow_url + "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "injected"}],
            },
            headers={"x-api-key": MASTER_KEY},
        )
        assert reply.status_code == 200  # the client only ever sees the SDK proxy's answer
        sent += 1
        stats = _wait_completed(stacks.shadow_url, sent)
        legacy_sandbox.set_faults()
    assert stats["skipped"] == {}

    store = CaptureStore(stacks.store_path)
    store.flush()
    assert _wait_for_rows(store, sent) == sent  # one row per request
    collect_upstream(
        store,
        {"sdk": stacks.sdk_sandbox, "legacy": stacks.legacy_sandbox},
        Redactor(stacks.secrets, store_prompts="hash"),
    )
    pairs = [s.pair for s in store.iter_pairs()]
    comparator = Comparator()
    verdicts = {p.request.request_id: (p, comparator.compare(p)) for p in pairs}

    injected = [v for p, v in verdicts.values() if p.shadow and p.shadow.status == 500]
    assert len(injected) == 1
    assert "status" in injected[0].categories

    by_endpoint = Counter(p.request.endpoint for p in pairs)
    assert by_endpoint == {"chat": 4, "messages": 3, "count_tokens": 1, "models": 1}
    # Memory routing is proven upstream: both proxies sent the same user and conversation.
    claude_code = next(p for p in pairs if p.request.client_family == "claude-code")
    sdk_calls, legacy_calls = claude_code.upstream["sdk"], claude_code.upstream["legacy"]
    assert len(sdk_calls) == len(legacy_calls) == 1
    for call in (sdk_calls[0], legacy_calls[0]):
        assert call["headers"]["x-sm-user-id"] == "claude-code"
        assert call["headers"]["x-sm-conversation-id"] == "e2e-session"
        assert call["credentials"]["x-supermemory-api-key"]["present"]
    # A/A probes ran (aa_rate 100 %) and each compares legacy with its repeat.
    assert any(p.shadow_repeat is not None for p in pairs)
    assert all(comparator.compare_repeat(p) is not None for p in pairs if p.shadow_repeat)
    # Secrets never reach the database file.
    store.close()
    raw = b"".join(f.read_bytes() for f in stacks.store_path.parent.glob("shadow.db*"))
    for secret in stacks.secrets:
        assert secret.encode() not in raw
    _report_mismatches(verdicts)


def _report_mismatches(verdicts: dict[str, Any]) -> None:
    """Print what differed, for the closing note (visible with pytest -s)."""
    for pair, verdict in verdicts.values():
        if not verdict.match:
            print(
                pair.request.endpoint,
                pair.request.stream,
                sorted(verdict.categories),
                [(d.category, d.path) for d in verdict.differences][:6],
            )


def _wait_completed(url: str, sent: int) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 60
    while True:
        stats = httpx.get(url + "/_shadow/stats").json()
        if stats["completed"] >= sent or time.monotonic() > deadline:
            return dict(stats)
        time.sleep(0.1)


def _wait_for_rows(store: CaptureStore, expected: int) -> int:
    import time

    deadline = time.monotonic() + 30
    while store.count() < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return store.count()
