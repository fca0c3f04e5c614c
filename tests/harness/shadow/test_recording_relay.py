"""The recording relay in front of the provider (``--primary legacy`` under replay): it
forwards every call unchanged and records it for the client request it belongs to.

Real loopback servers: the sandbox is the provider; a test client stands in for the
LiteLLM server (it calls the relay as its derived config would)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from harness.loopback import LoopbackServer
from harness.sandbox.client import SandboxControl
from harness.shadow import upstream_tap
from harness.shadow.recording_relay import RecordingRelay


def _chat(text: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "stream": stream}


def test_calls_are_forwarded_unchanged_and_recorded_for_their_request(
    sandbox: SandboxControl,
) -> None:
    relay = RecordingRelay([sandbox.url + "/v1"], max_body_bytes=1 << 20)
    with LoopbackServer(relay) as server:

        async def client_request(text: str, stream: bool) -> tuple[Any, ...]:
            # As the Forwarder serves a mirrored request: a record is open for it.
            token = upstream_tap.begin()
            body = _chat(text, stream)
            with relay.recording(httpx.Request("POST", "/", json=body).content):
                async with httpx.AsyncClient(trust_env=False) as client:
                    reply = await client.post(
                        server.url + "/_relay/0/chat/completions",
                        json=body,
                        headers={"x-sm-user-id": "relay-user", "authorization": "Bearer sk-x"},
                    )
            return reply.status_code, reply.content, upstream_tap.finish(token)

        async def both() -> list[tuple[Any, ...]]:
            return list(
                await asyncio.gather(client_request("one", False), client_request("two", True))
            )

        results = asyncio.run(both())
        # A call no open request claims (not mirrored) still goes through, counted.
        stray = httpx.post(
            server.url + "/_relay/0/chat/completions",
            json=_chat("stray"),
            headers={"authorization": "Bearer sk-x"},
        )
        unknown = httpx.post(server.url + "/_relay/7/chat/completions", json=_chat("x"))
    assert stray.status_code == 200 and relay.unclaimed == 1
    assert unknown.status_code == 404
    for (status, content, calls), stream in zip(results, (False, True), strict=True):
        assert status == 200
        (call,) = calls
        started, method, url, headers, body, code, answer, headers_at, chunks, ended, error = call
        assert (method, url, code, error) == (
            "POST",
            sandbox.url + "/v1/chat/completions",
            200,
            None,
        )
        assert ("x-sm-user-id", "relay-user") in headers  # as the legacy stack sent it
        assert b"".join(data for _, data in chunks) == content  # what the client got
        assert started <= headers_at <= ended
        assert (b"data: [DONE]" in content) == stream
    captured = [r for r in sandbox.api_requests() if r["method"] == "POST"]
    assert len(captured) == 3  # each call reached the provider once
