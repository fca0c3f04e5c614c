from __future__ import annotations

import json
import time

import httpx
import pytest

from harness.sandbox import FaultSettings, SandboxSettings
from harness.sandbox.directives import Directives
from harness.sandbox.faults import FaultInjector, FaultPlan
from tests.harness.sandbox.bodies import anthropic_body, openai_body
from tests.harness.sandbox.sse_frames import read_frames


def test_fault_settings_validate() -> None:
    with pytest.raises(ValueError, match="error_rate_429"):
        FaultSettings(error_rate_429=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        FaultSettings(latency_ms=-1)
    with pytest.raises(ValueError, match="unknown fault setting"):
        FaultSettings.from_mapping({"latency": 5})
    assert FaultSettings.from_mapping({"ttft_ms": 5}).to_dict()["ttft_ms"] == 5


def _statuses(injector: FaultInjector, n: int) -> list[int | None]:
    return [injector.plan(Directives()).status for _ in range(n)]


def test_rates_follow_the_seed() -> None:
    faults = FaultSettings(error_rate_429=0.3)
    first = _statuses(FaultInjector(faults, seed=1), 1000)
    assert first == _statuses(FaultInjector(faults, seed=1), 1000)
    assert first != _statuses(FaultInjector(faults, seed=2), 1000)
    assert 230 <= first.count(429) <= 370
    assert set(first) == {None, 429}


def test_reset_replays_the_same_sequence() -> None:
    injector = FaultInjector(FaultSettings(error_rate_500=0.5), seed=9)
    first = _statuses(injector, 50)
    injector.reset(FaultSettings(error_rate_500=0.5))
    assert _statuses(injector, 50) == first


def test_rate_extremes_and_precedence() -> None:
    always = FaultInjector(
        FaultSettings(error_rate_429=1, error_rate_503=1, malformed_json_rate=1, stream_cut_rate=1)
    )
    plan = always.plan(Directives())
    assert (plan.status, plan.malformed, plan.cut_midway) == (429, True, True)
    assert _statuses(FaultInjector(FaultSettings()), 100) == [None] * 100


def test_latency_and_jitter() -> None:
    injector = FaultInjector(
        FaultSettings(latency_ms=100, latency_jitter_ms=50, ttft_ms=7, chunk_delay_ms=3)
    )
    delays = [injector.plan(Directives()).delay_s for _ in range(200)]
    assert all(0.1 <= d <= 0.15 for d in delays)
    assert len(set(delays)) > 100
    plan = injector.plan(Directives())
    assert (plan.ttft_s, plan.chunk_delay_s) == (0.007, 0.003)


def test_directives_override_and_configured_faults_skip_non_generation() -> None:
    injector = FaultInjector(FaultSettings(latency_ms=500, error_rate_429=1))
    plan = injector.plan(Directives(delay_ms=5, stream_delay_ms=2, status=500, cut_after=3))
    assert (plan.delay_s, plan.chunk_delay_s, plan.status, plan.cut_after) == (0.005, 0.002, 500, 3)
    assert "status=500 (directive)" in plan.reasons
    assert injector.plan(Directives(), generation=False) == FaultPlan()


def test_cut_point() -> None:
    assert FaultPlan(cut_after=2).cut_point(10) == 2
    assert FaultPlan(cut_after=10).cut_point(10) is None
    assert FaultPlan(cut_midway=True).cut_point(10) == 5
    assert FaultPlan().cut_point(10) is None


@pytest.mark.parametrize(
    ("status", "kind", "retry_after"),
    [
        (429, "rate_limit_error", "1"),
        (503, "overloaded_error", None),
        (500, "api_error", None),
        (529, "overloaded_error", None),
    ],
)
async def test_status_directive_anthropic(
    client: httpx.AsyncClient, status: int, kind: str, retry_after: str | None
) -> None:
    response = await client.post(
        "/v1/messages", json=anthropic_body(f"hi [sandbox:status={status}]")
    )
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind
    assert response.headers.get("retry-after") == retry_after


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (429, "requests", "rate_limit_exceeded"),
        (503, "server_error", None),
        (500, "server_error", None),
    ],
)
async def test_status_directive_openai(
    client: httpx.AsyncClient, status: int, kind: str, code: str | None
) -> None:
    body = openai_body(f"hi [sandbox:status={status}]", stream=True)
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (kind, code)
    assert ("retry-after" in response.headers) == (status == 429)


async def test_cloudflare_directive(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", json=openai_body("[sandbox:cloudflare=1200]")
    )
    assert response.status_code == 503
    assert response.text == "error code: 1200"


async def test_malformed_directive_truncates_the_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/messages", json=anthropic_body("[sandbox:malformed]"))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert response.text.startswith('{"id":"msg_')


async def test_malformed_directive_in_a_stream_corrupts_the_first_content_delta(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/messages", json=anthropic_body("[sandbox:malformed]", stream=True)
    )
    frames = read_frames(response.text)
    broken = []
    for frame in frames:
        try:
            json.loads(frame.data)
        except json.JSONDecodeError:
            broken.append(frame.event)
    assert broken == ["content_block_delta"]
    assert frames[-1].event == "message_stop"


async def test_directives_reach_count_tokens(client: httpx.AsyncClient) -> None:
    body = anthropic_body("[sandbox:status=429]")
    assert (await client.post("/v1/messages/count_tokens", json=body)).status_code == 429


async def test_delay_directive_holds_the_headers(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.post("/v1/messages", json=anthropic_body("[sandbox:delay_ms=150]"))
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.15


async def test_fault_control_endpoint(client: httpx.AsyncClient) -> None:
    assert (await client.get("/_sandbox/faults")).json() == FaultSettings().to_dict()
    put = await client.put("/_sandbox/faults", json={"error_rate_503": 1, "latency_ms": 1})
    assert put.json()["error_rate_503"] == 1
    assert (await client.post("/v1/messages", json=anthropic_body())).status_code == 503
    assert (
        await client.post("/v1/messages/count_tokens", json=anthropic_body())
    ).status_code == 200
    patched = (await client.patch("/_sandbox/faults", json={"ttft_ms": 3})).json()
    assert (patched["error_rate_503"], patched["ttft_ms"]) == (1, 3)
    replaced = (await client.put("/_sandbox/faults", json={"ttft_ms": 4})).json()
    assert (replaced["error_rate_503"], replaced["ttft_ms"]) == (0, 4)
    assert (await client.post("/v1/messages", json=anthropic_body())).status_code == 200


@pytest.mark.parametrize(
    "payload", [b'{"error_rate_429": 2}', b'{"nope": 1}', b"[1]", b"{", b'{"latency_ms": "5"}']
)
async def test_fault_control_rejects_bad_settings(
    client: httpx.AsyncClient, payload: bytes
) -> None:
    response = await client.put("/_sandbox/faults", content=payload)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    "settings", [SandboxSettings(seed=5, faults=FaultSettings(error_rate_429=0.5))]
)
async def test_configured_rate_over_http_is_reproducible(client: httpx.AsyncClient) -> None:
    async def run() -> list[int]:
        return [
            (await client.post("/v1/messages", json=anthropic_body())).status_code
            for _ in range(30)
        ]

    first = await run()
    assert set(first) == {200, 429}
    await client.post("/_sandbox/reset")
    assert await run() == first


async def test_stream_error_directive_anthropic(client: httpx.AsyncClient) -> None:
    body = anthropic_body("[sandbox:stream_error=2]", stream=True)
    response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200
    frames = read_frames(response.text)
    assert [f.event for f in frames] == ["message_start", "content_block_start", "error"]
    assert frames[-1].json == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


async def test_stream_error_directive_openai(client: httpx.AsyncClient) -> None:
    body = openai_body("[sandbox:stream_error=1]", stream=True)
    frames = read_frames((await client.post("/v1/chat/completions", json=body)).text)
    assert len(frames) == 2 and "[DONE]" not in frames[-1].data
    assert frames[-1].json["error"]["type"] == "server_error"
    captured = (await client.get("/_sandbox/requests")).json()["requests"][-1]
    assert captured["outcome"] == "completed"
    assert captured["faults"] == ["stream_error=1 (directive)"]
