"""One-sided defects of the SDK proxy, caught under replay with the right category.

``--primary legacy``: the legacy stack (the real LiteLLM server behind the legacy proxy)
answers clients, its provider calls recorded by the recording relay; the SDK proxy is the
mirror, its provider URL going through a small mutating relay (test code) in front of the
replay upstream. Each request carries a marker naming the defect the relay then seeds on
the SDK side only: a changed tool argument, a changed finish reason, a dropped final
stream event, a dropped memory header. A clean request is the control: under replay the
two proxies' answers agree exactly, so it must show none of these.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from harness.compare import Comparator, Verdict
from harness.loopback import LoopbackServer, free_port
from harness.observation import CapturedPair
from harness.report.upstream_facts import routing_difference
from harness.sandbox import SandboxSettings
from harness.sandbox import create_app as create_sandbox
from harness.sandbox.config_file import write_sandbox_config
from harness.settings import CaptureSettings, HarnessSettings, ShadowSettings
from harness.shadow.dispatch import LocalDispatch
from harness.shadow.engine import MirrorEngine
from harness.shadow.forwarder import Forwarder
from harness.shadow.mirror import ShadowMirror
from harness.shadow.mirror_stack import derive_relay_config, derive_replay_config, relay_bases
from harness.shadow.recording_relay import RecordingRelay
from harness.shadow.targets import MirrorTarget, MirrorTargets
from memory_proxy.app import create_app
from memory_proxy.config import load_config
from memory_proxy.legacy_proxy import create_legacy_app
from memory_proxy.litellm_server import LiteLLMServer
from tests.conftest import MASTER_KEY
from tests.harness.shadow.test_mirror import ListSink

pytestmark = pytest.mark.slow

EXACT = {"content", "tool_calls", "finish_reason", "usage", "stream_sequence", "stream_ending"}
READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}},
        "required": ["file_path"],
    },
}


def _tool_argument(data: bytes) -> bytes:
    message = json.loads(data)
    for block in message["content"]:
        if block["type"] == "tool_use":
            block["input"] = {k: f"{v}.changed" for k, v in block["input"].items()}
    return json.dumps(message).encode()


def _finish_reason(data: bytes) -> bytes:
    completion = json.loads(data)
    completion["choices"][0]["finish_reason"] = "length"
    return json.dumps(completion).encode()


def _final_event(data: bytes) -> bytes:
    events = data.split(b"\n\n")
    return b"\n\n".join(e for e in events if b"message_stop" not in e)


ANSWER_DEFECTS: dict[str, Callable[[bytes], bytes]] = {
    "tool-argument": _tool_argument,
    "finish-reason": _finish_reason,
    "final-event": _final_event,
}


class MutatingRelay:
    """Between the SDK proxy and the replay upstream: seeds the defect a request names."""

    def __init__(self, target: str) -> None:
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        parts, more = [], True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(parts)
        defect = next(
            (d for d in (*ANSWER_DEFECTS, "memory-header") if f"[{d}]".encode() in body), None
        )
        headers = [
            (k.decode(), v.decode())
            for k, v in scope["headers"]
            if k not in (b"host", b"content-length")
            and not (defect == "memory-header" and k == b"x-sm-user-id")
        ]
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            reply = await client.request(
                scope["method"], self.target + scope["path"], headers=headers, content=body
            )
        data = reply.content
        if defect in ANSWER_DEFECTS:
            data = ANSWER_DEFECTS[defect](data)
        kept = [
            (k.encode(), v.encode())
            for k, v in reply.headers.items()
            if k.lower() in ("content-type", "request-id")
        ]
        kept.append((b"content-length", str(len(data)).encode()))
        await send({"type": "http.response.start", "status": reply.status_code, "headers": kept})
        await send({"type": "http.response.body", "body": data})


def _requests() -> list[tuple[str, str, dict[str, Any]]]:
    """(defect, path, body)."""

    def chat(text: str) -> dict[str, Any]:
        return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}

    def messages(text: str, **extra: Any) -> dict[str, Any]:
        return {
            "model": "claude-sonnet-4.5",
            "max_tokens": 60,
            "messages": [{"role": "user", "content": text}],
            **extra,
        }

    return [
        ("none", "/v1/messages", messages("a clean turn")),
        (
            "tool-argument",
            "/v1/messages",
            messages("Read the README please [tool-argument]", tools=[READ_TOOL]),
        ),
        ("finish-reason", "/v1/chat/completions", chat("a turn [finish-reason]")),
        ("final-event", "/v1/messages", messages("a turn [final-event]", stream=True)),
        ("memory-header", "/v1/chat/completions", chat("a turn [memory-header]")),
    ]


def test_one_sided_sdk_defects_are_flagged_with_their_category(tmp_path: Path) -> None:
    replay_port = free_port()
    settings = HarnessSettings(
        shadow=ShadowSettings(
            primary="legacy",
            upstream="replay",
            replay_listen=f"127.0.0.1:{replay_port}",
            aa_rate=0,
            timeout_seconds=30,
        ),
        capture=CaptureSettings(store_prompts="full"),
    )
    sink = ListSink()
    with LoopbackServer(create_sandbox(SandboxSettings())) as provider:
        config_path = write_sandbox_config(
            provider.url, tmp_path / "config.yaml", extra="litellm_settings:\n  num_retries: 0\n"
        )
        config = load_config(config_path)
        relay = RecordingRelay(relay_bases(config_path), max_body_bytes=1 << 20)
        with (
            LoopbackServer(relay) as relay_server,
            LoopbackServer(MutatingRelay(f"http://127.0.0.1:{replay_port}")) as mutator,
        ):
            relay_config = derive_relay_config(config_path, relay_server.url, tmp_path / "r.yaml")
            sdk_config = derive_replay_config(config_path, mutator.url, tmp_path / "sdk.yaml")
            with (
                LiteLLMServer(
                    relay_config,
                    port=free_port(),
                    log_path=tmp_path / "litellm.log",
                    ready_timeout=180,
                ) as llm,
                LoopbackServer(create_legacy_app(config, llm.url)) as legacy,
                LoopbackServer(create_app(load_config(sdk_config))) as sdk,
            ):
                engine = MirrorEngine(
                    settings=settings,
                    sink=sink,
                    targets=MirrorTargets(
                        primary="legacy", shadow=MirrorTarget("sdk", sdk.url), repeat=None
                    ),
                )
                primary = Forwarder(legacy.url, relay=relay)
                mirror = ShadowMirror(
                    primary, settings=settings, dispatch=LocalDispatch(engine), tap_upstream=True
                )
                with (
                    LoopbackServer(mirror) as shadow,
                    httpx.Client(
                        base_url=shadow.url,
                        headers={"x-api-key": MASTER_KEY, "x-memory-user-id": "defect-user"},
                        timeout=60,
                    ) as client,
                ):
                    for _, path, body in _requests():
                        assert client.post(path, json=body).status_code == 200
                    _wait_for(lambda: len(sink.pairs) == len(_requests()))
                    misses = engine.snapshot()["replay"]["misses"]

    assert misses == 0
    by_defect = {_defect(pair): pair for pair in sink.pairs}
    comparator = Comparator()
    flagged = {defect: _differing(comparator.compare(pair)) for defect, pair in by_defect.items()}
    assert flagged["none"] == set()  # the control: nothing to flag under replay
    assert "tool_calls" in flagged["tool-argument"]
    assert "finish_reason" in flagged["finish-reason"]
    assert "stream_ending" in flagged["final-event"]
    # Each defect is flagged as itself, not as noise in every other field.
    assert flagged["tool-argument"] <= {"tool_calls", "usage"}
    assert flagged["finish-reason"] == {"finish_reason"}
    # The memory header is the memory-routing gate's: the SDK side's provider call lacks it.
    for defect, pair in by_defect.items():
        difference, missing_user = routing_difference(
            defect, pair.upstream["sdk"], pair.upstream["legacy"]
        )
        if defect == "memory-header":
            assert missing_user and difference is not None
            assert difference.path == "upstream[0].headers.x-sm-user-id"
            assert (difference.sdk, difference.legacy) == ("<missing>", "defect-user")
        else:
            assert (difference, missing_user) == (None, False), defect


def _defect(pair: CapturedPair) -> str:
    text = json.dumps(pair.request.body)
    return next((d for d in (*ANSWER_DEFECTS, "memory-header") if f"[{d}]" in text), "none")


def _differing(verdict: Verdict | None) -> set[str]:
    assert verdict is not None
    return {d.category for d in verdict.differences if not d.ignored} & EXACT


def _wait_for(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
